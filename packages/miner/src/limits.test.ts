/**
 * The descriptor's limits, enforced for real: a DService that allocates past its memoryMb is
 * killed by the kernel (137), its work fails cleanly (retryable, so the node runs it elsewhere),
 * it is restarted, and the miner keeps serving; a fork bomb stops at the pids limit; the process
 * runs in its own cgroup with the CPU quota, removed when it goes. Needs bubblewrap and a
 * writable cgroup (root); skipped, saying why, where either is missing.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { frame, type ErrorFrame, type Frame, type ResultFrame, type WorkFrame } from '@cgn/protocol';
import { detectCgroups } from './cgroup.js';
import { startMiner, type Miner } from './miner.js';
import { bwrapProblem } from './sandbox.js';
import { NodePeer, waitEvent, type PeerConn } from '../test/node-peer.js';
import { ECHO, ensureEchoBuilt, silent, tempDir, writeDService } from '../test/fixtures.js';

const bwrap = await bwrapProblem();
const cgroups = detectCgroups();
const skip = bwrap !== null ? `bubblewrap does not work here: ${bwrap}` : cgroups.missing.length > 0 ? (cgroups.warning ?? 'no cgroups') : null;
if (skip !== null) console.warn(`limits.test.ts skipped: ${skip}`);

const tmp = tempDir();
const miners: Miner[] = [];
let peer: NodePeer;
let hog: string;
let seq = 0;

const HOG = `
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/alloc') {
    const keep = [];
    for (let i = 0; i < Number(url.searchParams.get('mb')); i++) keep.push(Buffer.alloc(1024 * 1024, 1));
    return { status: 200, body: 'survived ' + keep.length + ' MiB' };
  }
  if (url.pathname === '/forkbomb') {
    const { spawn } = await import('node:child_process');
    const children = [];
    const codes = [];
    for (let i = 0; i < 64; i++) {
      const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
      if (c.pid === undefined) { c.on('error', () => {}); codes.push('failed'); } else children.push(c);
      c.on('error', (e) => codes.push(e.code));
    }
    await new Promise((r) => setImmediate(r));
    const exited = children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r))));
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(exited);
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ spawned: children.length, codes: [...new Set(codes)] }) };
  }
  return { status: 200, body: 'ok ' + process.pid };
`;

beforeAll(async () => {
  ensureEchoBuilt();
  peer = new NodePeer({ heartbeatMs: 1000 });
  await peer.start();
  if (skip !== null) return;
  // Start libuv's thread pool (lazily made on first use) before a fork bomb can use up the pids.
  hog = writeDService(tmp.path, 'hog', HOG, { resources: { cpus: 1, memoryMb: 64, pids: 32 } });
  const server = join(hog, 'server.mjs');
  writeFileSync(server, `await (await import('node:fs/promises')).stat('/');\n${readFileSync(server, 'utf8')}`);
});

afterEach(async () => {
  await Promise.all(miners.splice(0).map((m) => m.stop()));
});

afterAll(async () => {
  await peer?.stop();
  tmp.cleanup();
});

async function start(): Promise<{ miner: Miner; conn: PeerConn }> {
  const connP = peer.next();
  const miner = await startMiner({
    nodeUrl: peer.url, keyFile: join(tmp.path, `key-${++seq}.pem`), dservices: [hog, ECHO], sandbox: 'bwrap', limits: 'cgroup',
    logger: silent(), healthIntervalMs: 200, restartBaseMs: 20,
  });
  miners.push(miner);
  const conn = await connP;
  await conn.advertised();
  return { miner, conn };
}

function work(dservice: string, path: string, body = ''): WorkFrame {
  return frame({ t: 'work', id: `l${++seq}`, dservice, method: 'POST', path, headers: [], body: Buffer.from(body), timeoutMs: 30_000 }) as WorkFrame;
}

const answerTo = (id: string) => (f: Frame): boolean => (f.t === 'result' || f.t === 'error') && 'id' in f && f.id === id;

async function run(conn: PeerConn, w: WorkFrame): Promise<ResultFrame | ErrorFrame> {
  conn.send(w);
  return conn.waitFrame<ResultFrame | ErrorFrame>(answerTo(w.id));
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const hogStatus = (m: Miner) => m.status().dservices.find((d) => d.name === 'hog')!.instance!;

describe.skipIf(skip !== null)('DService limits (cgroups)', () => {
  it('runs each DService in its own cgroup with its memory, pids and CPU limits', async () => {
    const { miner } = await start();
    expect(miner.status()).toMatchObject({ sandbox: 'bwrap', limits: `cgroup-${cgroups.version!}`, isolationWarnings: [] });
    const st = hogStatus(miner);
    expect(st.limits).toMatchObject({ cpus: 1, memoryMb: 64, pids: 32, enforcedBy: `cgroup-${cgroups.version!}` });
    const file = (name: string): string => readFileSync(st.limits.cgroups.map((d) => join(d, name)).find((f) => existsSync(f))!, 'utf8').trim();
    if (cgroups.version === 'v1') {
      expect(file('memory.limit_in_bytes')).toBe(String(64 * 1024 * 1024));
      expect(file('cpu.cfs_quota_us')).toBe('100000');
    } else {
      expect(file('memory.max')).toBe(String(64 * 1024 * 1024));
      expect(file('cpu.max')).toBe('100000 100000');
    }
    expect(file('pids.max')).toBe('32');
    // The DService itself (not just the bwrap that started it) is in the group.
    for (const dir of st.limits.cgroups) expect(readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(st.dservicePid));
    const paths = st.limits.cgroups;
    await miner.stop();
    for (const dir of paths) expect(existsSync(dir)).toBe(false);
  });

  it('past its memoryMb it is killed (137), its work fails retryable, it restarts, and the miner keeps serving', async () => {
    const { miner, conn } = await start();
    const before = hogStatus(miner);
    const restarted = waitEvent(miner, 'instance', (i: { name: string; state: string }) => i.name === 'hog' && i.state === 'ready');
    const alloc = await run(conn, work('hog', '/alloc?mb=1024'));
    expect(alloc).toMatchObject({ t: 'error', code: 'dservice_unavailable', retryable: true });
    // The other DService answers while this one restarts.
    const echo = await run(conn, work('echo', '/echo', 'still here'));
    expect(echo.t).toBe('result');
    expect(Buffer.from((echo as ResultFrame).body).toString()).toBe('still here');
    await restarted;
    const after = hogStatus(miner);
    expect(after.lastExit).toMatchObject({ code: 137, oom: true });
    expect(after.oomKills).toBe(1);
    expect(after.restarts).toBe(1);
    expect(after.dservicePid).not.toBeNull();
    // The dead incarnation's group is gone, the new one has its own.
    for (const dir of before.limits.cgroups) expect(after.limits.cgroups).not.toContain(dir);
    await waitFor(() => before.limits.cgroups.every((d) => !existsSync(d)), 'the dead incarnation\'s cgroup to be removed');
    const ok = await run(conn, work('hog', '/'));
    expect(ok).toMatchObject({ t: 'result', status: 200 });
    expect(miner.status().workDone).toBeGreaterThanOrEqual(2);
  });

  it('a fork bomb stops at the pids limit, and the DService and miner keep working', async () => {
    const { conn } = await start();
    const r = await run(conn, work('hog', '/forkbomb'));
    expect(r.t).toBe('result');
    const report = JSON.parse(Buffer.from((r as ResultFrame).body).toString()) as { spawned: number; codes: string[] };
    expect(report.spawned).toBeLessThan(32);
    expect(report.codes).toContain('EAGAIN');
    const ok = await run(conn, work('hog', '/'));
    expect(ok).toMatchObject({ t: 'result', status: 200 });
  });
});

describe('DService limits turned off', () => {
  it('are reported as not enforced, with the warning, in the miner status', async () => {
    const connP = peer.next();
    const miner = await startMiner({ nodeUrl: peer.url, keyFile: join(tmp.path, `key-${++seq}.pem`), dservices: [ECHO], sandbox: 'none', limits: 'none', logger: silent() });
    miners.push(miner);
    await (await connP).advertised();
    const st = miner.status();
    expect(st).toMatchObject({ sandbox: 'none', limits: 'none' });
    expect(st.isolationWarnings).toEqual([expect.stringMatching(/--limits none/)]);
    expect(st.dservices[0]!.instance!.limits).toMatchObject({ cpus: 1, memoryMb: 64, enforcedBy: null, cgroups: [] });
  });
});
