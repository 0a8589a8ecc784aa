#!/usr/bin/env node
/**
 * CGN's own cost per request, as CPU time, beside the relay way (bench/relay.mjs: CGN's process
 * layout doing none of CGN's work), echo only. On a machine shared with other work req/s and
 * latency move with the neighbours; the CPU time each process spends per answered request moves
 * far less, so this is what to compare before and after a change on the request path.
 *
 * Per round, interleaved: wrk against the relay, then against CGN; each process's CPU time
 * (utime + stime from /proc) over the measurement divided by the requests answered. Then the
 * added p50 at one connection (bench/alternate.mjs: direct, relay and CGN request by request).
 *
 *   node bench/request-cost.mjs [--rounds N] [--duration S] [--connections C] [--warmup S] [--light N]
 *                               [--workload echo|mediagen] [--profile DIR]
 *
 * Prints one JSON line per round and a summary (medians). With --profile DIR (absolute), one more
 * window each for the node and the miner under a CPU profile (bench/profile-on-signal.cjs preloaded):
 * DIR/node.cpuprofile and DIR/miner.cpuprofile, and the requests of each window in DIR/requests.json;
 * and (unless --light 0) both profiled over --light requests sent one at a time, where all they do
 * is on the request's path: DIR/node-light.cpuprofile and DIR/miner-light.cpuprofile
 * (`node bench/stages.mjs DIR/node-light.cpuprofile <light>` splits the node's by stage).
 */
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, children, freePort, luaScript as luaScriptIn, startDService, startRelay, waitHttp } from './lib/ways.mjs';

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    light: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '10' },
    workload: { type: 'string', default: 'echo' },
    profile: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  console.log('node bench/request-cost.mjs [--rounds N] [--duration S] [--connections C] [--warmup S] [--light N requests at 1 connection, 0: none] [--workload echo|mediagen] [--profile DIR]');
  process.exit(0);
}
const ROUNDS = Number(opt.rounds);
const DURATION = Number(opt.duration);
const CONNECTIONS = Number(opt.connections);
const LIGHT = Number(opt.light);
const WORK = join(ROOT, 'bench/.work/request-cost');
const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });

function cpuUs(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return 0;
  }
}

function descendants(pid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d), ...descendants(Number(d)));
    } catch { /* gone */ }
  }
  return out;
}

async function startCgn(dservice) {
  const dir = join(WORK, 'cgn');
  const c = spawn(process.execPath, [join(ROOT, 'packages/cli/dist/bin.js'), 'dev', '--quiet', '--dir', dir, '--miners', '1', '--work-port', '0', '--miner-port', '0', '--dservice', dservice, '--central-port', '0', '--no-chain', '--plaintext'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env, CGN_LOG_LEVEL: 'warn',
      ...(opt.profile !== undefined ? { CGN_NODE_ARGS: `--require ${join(ROOT, 'bench/profile-on-signal.cjs')}`, CGN_PROFILE_DIR: opt.profile } : {}),
    },
  });
  children.push(c);
  return new Promise((res, rej) => {
    createInterface({ input: c.stdout }).on('line', (l) => { try { const j = JSON.parse(l); if (j.event === 'ready') res(j); } catch { /* */ } });
    c.once('exit', (code) => rej(new Error(`cgn dev exited with ${code}`)));
  });
}

const luaScript = (name, bodyFile, headers) => luaScriptIn(WORK, name, { bodyFile, headers });

function wrk(url, script, duration) {
  const out = execFileSync('wrk', ['-t', CONNECTIONS > 1 ? '2' : '1', '-c', String(CONNECTIONS), '-d', `${duration}s`, '-s', script, url], { encoding: 'utf8' });
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  if (non2xx > 0) throw new Error(`${non2xx} non-2xx responses from ${url}`);
  return requests;
}

/** wrk for DURATION s; CPU µs per answered request of each named group of pids, and req/s. */
function measure(url, script, groups) {
  wrk(url, script, 1);
  const before = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, pids.reduce((s, p) => s + cpuUs(p), 0)]));
  const t0 = performance.now();
  const n = wrk(url, script, DURATION);
  const s = (performance.now() - t0) / 1000;
  const out = { rps: Math.round(n / s) };
  for (const [k, pids] of Object.entries(groups)) out[k] = Math.round((pids.reduce((s2, p) => s2 + cpuUs(p), 0) - before[k]) / n);
  return out;
}

/** wrk for DURATION s under a CPU profile of `pid` (bench/profile-on-signal.cjs); the profile and the requests answered. */
async function profiled(pid, url, script) {
  wrk(url, script, 1);
  process.kill(pid, 'SIGUSR2');
  const n = wrk(url, script, DURATION);
  process.kill(pid, 'SIGUSR2');
  const done = join(opt.profile, `${pid}.done`);
  for (let i = 0; i < 400 && !existsSync(done); i++) await new Promise((r) => setTimeout(r, 50));
  const profile = JSON.parse(readFileSync(join(opt.profile, `${pid}.cpuprofile`), 'utf8'));
  rmSync(join(opt.profile, `${pid}.cpuprofile`));
  rmSync(done);
  return { profile, requests: n };
}

/**
 * `n` requests one at a time over one keep-alive connection under a CPU profile of each of `pids`:
 * at one connection everything a process does is on the request's path, so the profile split by
 * stage (bench/stages.mjs) says where CGN's added latency goes. The profiles and the requests sent.
 */
async function profiledOneAtATime(pids, url, headers, body, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const once = () => new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  for (let i = 0; i < Math.ceil(n / 10); i++) await once();
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < n; i++) await once();
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
  agent.destroy();
  const profiles = [];
  for (const pid of pids) {
    const done = join(opt.profile, `${pid}.done`);
    for (let i = 0; i < 400 && !existsSync(done); i++) await new Promise((r) => setTimeout(r, 50));
    profiles.push(JSON.parse(readFileSync(join(opt.profile, `${pid}.cpuprofile`), 'utf8')));
    rmSync(join(opt.profile, `${pid}.cpuprofile`));
    rmSync(done);
  }
  return profiles;
}

/** The ledger writer's counters from the node's status (records acknowledged, commits). */
async function ledgerCounters(statusUrl) {
  const j = await (await fetch(statusUrl)).json();
  return j.counters.ledger;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  if (opt.profile !== undefined) mkdirSync(opt.profile, { recursive: true });
  const w = opt.workload === 'mediagen'
    ? { dservice: 'mediagen', path: '/transform?width=400&format=webp', body: join(ROOT, 'dservices/mediagen/examples/sample.jpg') }
    : { dservice: 'echo', path: '/', body: null };
  const info = await startCgn(w.dservice);
  await waitHttp(info.statusUrl);
  const minerPid = info.pids.miners[0];
  const port = await freePort();
  startDService(w.dservice, port);
  await waitHttp(`http://127.0.0.1:${port}/healthz`);
  const relayDsPort = await freePort();
  const link = join(WORK, 'link.sock');
  const relayDs = startDService(w.dservice, relayDsPort, link);
  await waitHttp(`http://127.0.0.1:${relayDsPort}/healthz`);
  const relay = await startRelay(link);
  const plain = luaScript('plain', w.body, {});
  const authed = luaScript('cgn', w.body, { Authorization: `Bearer ${info.apiKey}` });
  const cgnUrl = `${info.workUrl}${w.dservice}${w.path}`;
  const relayUrl = `http://127.0.0.1:${relay.port}${w.path}`;
  const minerDs = descendants(minerPid);
  // Start-up work (the miners' capability probes, JIT) is over before the first round.
  wrk(cgnUrl, authed, Number(opt.warmup));
  wrk(relayUrl, plain, Number(opt.warmup));
  const rows = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = measure(relayUrl, plain, { front: [relay.pids.front], back: [relay.pids.back], ds: [relayDs.pid] });
    const ledgerBefore = await ledgerCounters(info.statusUrl);
    const c = measure(cgnUrl, authed, { node: [info.pids.node], miner: [minerPid], ds: minerDs });
    const ledgerAfter = await ledgerCounters(info.statusUrl);
    c.recordsPerCommit = Math.round(((ledgerAfter.records - ledgerBefore.records) / Math.max(1, ledgerAfter.batches - ledgerBefore.batches)) * 10) / 10;
    const row = { round: i + 1, relay: r, cgn: c, rpsRatio: Math.round((c.rps / r.rps) * 1000) / 1000 };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  const summary = {
    rpsRatio: median(rows.map((r) => r.rpsRatio)),
    nodeUsPerReq: median(rows.map((r) => r.cgn.node)),
    minerUsPerReq: median(rows.map((r) => r.cgn.miner)),
    dserviceUsPerReq: median(rows.map((r) => r.cgn.ds)),
    recordsPerCommit: median(rows.map((r) => r.cgn.recordsPerCommit)),
    frontUsPerReq: median(rows.map((r) => r.relay.front)),
    backUsPerReq: median(rows.map((r) => r.relay.back)),
    relayDserviceUsPerReq: median(rows.map((r) => r.relay.ds)),
  };
  if (LIGHT > 0) {
    const spec = {
      ways: [
        { way: 'direct', url: `http://127.0.0.1:${port}${w.path}`, headers: {} },
        { way: 'relay', url: relayUrl, headers: {} },
        { way: 'cgn', url: cgnUrl, headers: { authorization: `Bearer ${info.apiKey}` } },
      ],
      ...(w.body ? { bodyFile: w.body } : {}),
      requests: LIGHT,
      warmup: Math.ceil(LIGHT / 10),
    };
    const l = JSON.parse(execFileSync(process.execPath, [join(ROOT, 'bench/alternate.mjs'), JSON.stringify(spec)], { encoding: 'utf8' }));
    summary.light = { directP50Ms: l.direct.p50Ms, relayP50Ms: l.relay.p50Ms, cgnP50Ms: l.cgn.p50Ms, cgnOverRelayMs: Math.round((l.cgn.p50Ms - l.relay.p50Ms) * 1000) / 1000 };
  }
  console.log(JSON.stringify({ summary }));
  if (opt.profile !== undefined) {
    const requests = {};
    for (const [name, pid] of [['node', info.pids.node], ['miner', minerPid]]) {
      const p = await profiled(pid, cgnUrl, authed);
      writeFileSync(join(opt.profile, `${name}.cpuprofile`), JSON.stringify(p.profile));
      requests[name] = p.requests;
    }
    if (LIGHT > 0) {
      const body = w.body ? readFileSync(w.body) : Buffer.from('hello, cgn');
      const [node, miner] = await profiledOneAtATime([info.pids.node, minerPid], cgnUrl, { authorization: `Bearer ${info.apiKey}` }, body, LIGHT);
      writeFileSync(join(opt.profile, 'node-light.cpuprofile'), JSON.stringify(node));
      writeFileSync(join(opt.profile, 'miner-light.cpuprofile'), JSON.stringify(miner));
      requests.light = LIGHT;
    }
    writeFileSync(join(opt.profile, 'requests.json'), JSON.stringify(requests) + '\n');
    console.log(`profiles in ${opt.profile}: ${JSON.stringify(requests)}`);
  }
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
