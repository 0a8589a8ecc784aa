/**
 * A DService instance on its own: start, failed start, health-check restarts, stop with SIGKILL
 * after the grace period. Throwaway DServices run in bubblewrap.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DServiceInstance, type InstanceOptions, type InstanceState } from './dservice-instance.js';
import { loadDServicePackage } from './dservice-package.js';
import { createLog, type LogEntry } from './log.js';
import { runWork } from './proxy.js';
import { waitEvent } from '../test/node-peer.js';
import { tempDir, writeDService } from '../test/fixtures.js';

const tmp = tempDir();
const runDir = join(tmp.path, 'run');
const instances: DServiceInstance[] = [];
afterEach(async () => {
  await Promise.all(instances.splice(0).map((i) => i.stop()));
});
afterAll(() => tmp.cleanup());

function instance(pkgDir: string, over: Partial<InstanceOptions> = {}, logs: LogEntry[] = []): DServiceInstance {
  const pkg = loadDServicePackage(pkgDir);
  const inst = new DServiceInstance({
    pkg,
    socketPath: join(runDir, pkg.descriptor.name, 'http.sock'),
    runDir,
    sandbox: 'bwrap',
    hide: [],
    log: createLog(pino({ level: 'silent' }), (e) => logs.push(e)).child({ dservice: pkg.descriptor.name }),
    healthIntervalMs: 50,
    healthTimeoutMs: 500,
    healthFailures: 2,
    startTimeoutMs: 5000,
    stopGraceMs: 2000,
    restartBaseMs: 10,
    restartCapMs: 100,
    ...over,
  });
  instances.push(inst);
  return inst;
}

const states = (inst: DServiceInstance): InstanceState[] => {
  const seen: InstanceState[] = [];
  inst.on('state', (s) => seen.push(s));
  return seen;
};

describe('DServiceInstance', () => {
  it('starts, serves work over its socket, and stops on SIGTERM', async () => {
    const pkg = writeDService(tmp.path, 'hello', `return { status: 200, body: 'hi ' + body.toString() };`);
    const inst = instance(pkg);
    const seen = states(inst);
    await inst.start();
    expect(inst.ready).toBe(true);
    const o = await runWork(inst.http, { method: 'POST', path: '/', headers: [], body: Buffer.from('there') }, inst.limits);
    expect(Buffer.from(o.body).toString()).toBe('hi there');
    await inst.stop();
    expect(seen).toEqual(['starting', 'ready', 'stopping', 'stopped']);
    expect(inst.status().lastExit).toMatchObject({ code: 0, signal: null });
  });

  it('a DService that exits at start: start fails with its exit and last stderr lines', async () => {
    const pkg = writeDService(tmp.path, 'broken', `return { status: 200 };`);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(pkg, 'server.mjs'), `process.stderr.write('cannot load the model\\n'); process.exit(7);`);
    const logs: LogEntry[] = [];
    const inst = instance(pkg, {}, logs);
    await expect(inst.start()).rejects.toThrow(/broken did not start: the process exited \(exit code 7\)[\s\S]*cannot load the model/);
    expect(inst.state).toBe('failed');
    expect(logs.some((e) => e.msg === 'cannot load the model' && e.fields['dservice'] === 'broken' && e.fields['stream'] === 'stderr')).toBe(true);
  });

  it('a DService that never answers /healthz: start fails after startTimeoutMs', async () => {
    const pkg = writeDService(tmp.path, 'mute', `return { status: 200 };`);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(pkg, 'server.mjs'), `setInterval(() => {}, 1000);`);
    const inst = instance(pkg, { startTimeoutMs: 300 });
    await expect(inst.start()).rejects.toThrow(/no answer to GET \/healthz .* within 300 ms/);
  });

  it('failing health checks restart the process', async () => {
    const pkg = writeDService(
      tmp.path,
      'sickly',
      `return { status: 200 };`,
    );
    const { readFileSync, writeFileSync } = await import('node:fs');
    // POST /sick makes /healthz answer 503 from then on.
    const src = readFileSync(join(pkg, 'server.mjs'), 'utf8')
      .replace("if (req.url === '/healthz') {", "if (req.url === '/sick') { globalThis.sick = true; res.end('ok'); return; }\n  if (req.url === '/healthz') { if (globalThis.sick) { res.writeHead(503); res.end(); return; }");
    writeFileSync(join(pkg, 'server.mjs'), src);
    const inst = instance(pkg);
    await inst.start();
    const pid = inst.status().dservicePid;
    const restarting = waitEvent(inst, 'state', (s) => s === 'restarting');
    await runWork(inst.http, { method: 'POST', path: '/sick', headers: [], body: new Uint8Array(0) }, inst.limits);
    await restarting;
    await waitEvent(inst, 'state', (s) => s === 'ready');
    expect(inst.status().restarts).toBe(1);
    // SIGKILL goes to the DService inside bwrap and to bwrap itself. Under load bwrap sometimes sees
    // its child die first and exits with 128 + 9 before its own SIGKILL lands: both mean killed.
    const exit = inst.status().lastExit!;
    expect(exit.signal === 'SIGKILL' || exit.code === 137, `killed by SIGKILL: ${JSON.stringify(exit)}`).toBe(true);
    expect(inst.status().dservicePid).not.toBe(pid);
  });

  it('a DService that ignores SIGTERM is killed after the grace period', async () => {
    const pkg = writeDService(tmp.path, 'stubborn', `return { status: 200 };`);
    const { readFileSync, writeFileSync } = await import('node:fs');
    writeFileSync(
      join(pkg, 'server.mjs'),
      readFileSync(join(pkg, 'server.mjs'), 'utf8').replace("process.on('SIGTERM', () => server.close(() => process.exit(0)));", "process.on('SIGTERM', () => {});"),
    );
    const inst = instance(pkg, { stopGraceMs: 200, sandbox: 'none' });
    await inst.start();
    const pid = inst.status().pid!;
    await inst.stop();
    expect(inst.status().lastExit).toMatchObject({ signal: 'SIGKILL' });
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
