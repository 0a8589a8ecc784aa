/**
 * Preloaded into a CGN process (CGN_NODE_ARGS="--require bench/profile-on-signal.cjs", as
 * bench/request-cost.mjs --profile does): SIGUSR2 starts a CPU profile, the next SIGUSR2 writes it to
 * $CGN_PROFILE_DIR/<pid>.cpuprofile and then <pid>.done. Only the window between the two signals is
 * profiled (no start-up, no idle).
 */
'use strict';
const { Session } = require('node:inspector');
const { writeFileSync, renameSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.env.CGN_PROFILE_DIR;
let session = null;
process.on('SIGUSR2', () => {
  if (session === null) {
    session = new Session();
    session.connect();
    session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 200 }, () => session.post('Profiler.start')));
    return;
  }
  const s = session;
  session = null;
  s.post('Profiler.stop', (err, r) => {
    const file = join(dir, `${process.pid}.cpuprofile`);
    if (err === null) writeFileSync(`${file}.tmp`, JSON.stringify(r.profile));
    if (err === null) renameSync(`${file}.tmp`, file);
    writeFileSync(join(dir, `${process.pid}.done`), err === null ? 'ok' : String(err));
    s.disconnect();
  });
});
