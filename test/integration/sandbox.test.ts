/**
 * The DService sandbox end to end: DApp -> node -> real miner process -> hostile DService in
 * bubblewrap and its cgroup. From inside, the DService tries to read the host's secrets, the
 * miner's and the network's state and another DService's package, and to reach the network:
 * each is refused. One that allocates past its memoryMb is killed and restarted, the DApp gets a
 * clean answer, and the miner keeps answering other work; a fork bomb stops at the pids limit.
 * Needs bubblewrap and a writable cgroup (CI runs as root); skipped, saying why, otherwise.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bwrapProblem, detectCgroups } from '@cgn/miner';
import { ECHO, MEDIAGEN, ROOT, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

const bwrap = await bwrapProblem();
const cgroups = detectCgroups();
const skip = bwrap !== null ? `bubblewrap does not work here: ${bwrap}` : cgroups.missing.length > 0 ? (cgroups.warning ?? 'no cgroups') : null;
if (skip !== null) console.warn(`sandbox.test.ts skipped: ${skip}`);

/** A DService package (plain node:http on $CGN_SOCKET) whose handler is `handler(req, url)`. */
function writePackage(dir: string, name: string, handler: string, resources: Record<string, number>): string {
  const pkg = join(dir, name);
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'dservice.json'), JSON.stringify({ name, version: '1.0.0', entry: 'server.mjs', concurrency: 4, resources, timeouts: { requestMs: 60_000 } }));
  writeFileSync(
    join(pkg, 'server.mjs'),
    `import { createServer } from 'node:http';
import { rmSync } from 'node:fs';
// libuv's thread pool starts on first use: before a fork bomb can take the pids it needs.
await (await import('node:fs/promises')).stat('/');
const handler = async (req, url) => { ${handler} };
const server = createServer(async (req, res) => {
  if (req.url === '/healthz') return res.end('ok');
  try {
    const out = await handler(req, new URL(req.url, 'http://x'));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
  } catch (err) { res.writeHead(500); res.end(String(err)); }
});
rmSync(process.env.CGN_SOCKET, { force: true });
server.listen(process.env.CGN_SOCKET);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
  );
  return pkg;
}

describe.skipIf(skip !== null)('a hostile DService in the sandbox, through a real node and miner', () => {
  let t: TestNode;
  let miner: MinerProcess;
  const tmp = tempDir('cgn-sandbox-');
  let forbidden: string[];

  /** The miner's key, which spawnMiner wrote beside the packages. */
  const keyFile = (): string => join(tmp.path, readdirSync(tmp.path).find((n) => n.endsWith('.pem'))!);

  const call = async (dservice: string, path: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(t.url(dservice, path), { method: 'POST', body: '', headers: { authorization: `Bearer ${t.apiKey}` } });
    return { status: res.status, body: await res.text() };
  };

  beforeAll(async () => {
    const probe = writePackage(tmp.path, 'probe', `
      const fs = await import('node:fs');
      const read = (p) => { try { return fs.statSync(p).isDirectory() ? 'listed ' + fs.readdirSync(p).length : 'read ' + fs.readFileSync(p).length; } catch (e) { return e.code; } };
      const net = async (u) => { try { await fetch(u, { signal: AbortSignal.timeout(3000) }); return 'connected'; } catch (e) { return 'refused: ' + (e.cause?.code ?? e.name); } };
      return {
        reads: Object.fromEntries(JSON.parse(url.searchParams.get('paths')).map((p) => [p, read(p)])),
        own: read(process.cwd() + '/dservice.json'),
        beside: fs.readdirSync(process.cwd() + '/..'),
        node: await net(url.searchParams.get('node')),
        internet: await net('http://1.1.1.1/'),
        dns: await net('http://example.com/'),
      };`, { cpus: 1, memoryMb: 128 });
    const hog = writePackage(tmp.path, 'hog', `
      if (url.pathname === '/alloc') {
        const keep = [];
        for (let i = 0; i < 1024; i++) keep.push(Buffer.alloc(1024 * 1024, 1));
        return { survived: keep.length };
      }
      if (url.pathname === '/forkbomb') {
        const { spawn } = await import('node:child_process');
        const children = [];
        const codes = new Set();
        for (let i = 0; i < 64; i++) {
          const c = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
          c.on('error', (e) => codes.add(e.code));
          if (c.pid !== undefined) children.push(c);
        }
        await new Promise((r) => setImmediate(r));
        const exited = children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r))));
        for (const c of children) c.kill('SIGKILL');
        await Promise.all(exited);
        return { spawned: children.length, codes: [...codes] };
      }
      return { pid: process.pid };`, { cpus: 1, memoryMb: 64, pids: 32 });
    t = await startTestNode({ dservices: [ECHO, probe, hog] });
    forbidden = [
      '/etc/shadow', '/etc/passwd', '/root', '/home', '/var', '/run', '/sys',
      t.dir, join(t.dir, 'ledger.sqlite'), // the network's state (the node's data directory)
      join(tmp.path, 'hog'), // beside its package: another DService (and the miner's key, its state, below)
      ECHO, MEDIAGEN, join(ROOT, 'dservices'), join(ROOT, 'node_modules'), join(ROOT, 'packages/node'), join(ROOT, '.cgn'),
    ];
    miner = spawnMiner(t.node.minerUrl, tmp.path, { name: 'miner', dservices: [ECHO, probe, hog], args: ['--sandbox', 'bwrap', '--limits', 'cgroup'] });
    await waitFor(() => minersOf(t.node).length === 1, 'the miner to join', 30_000);
  });

  afterAll(async () => {
    miner?.kill('SIGTERM');
    await miner?.exited;
    await t?.cleanup();
    tmp.cleanup();
  });

  it('cannot read /etc/shadow, /root, the node\'s or the miner\'s state, or other DServices\' packages; cannot reach the network', async () => {
    const r = await call('probe', `/?paths=${encodeURIComponent(JSON.stringify([...forbidden, keyFile()]))}&node=${encodeURIComponent(t.node.workUrl)}`);
    expect(r.status).toBe(200);
    const report = JSON.parse(r.body) as { reads: Record<string, string>; own: string; beside: string[]; node: string; internet: string; dns: string };
    expect(report.own).toMatch(/^read \d+/); // its own package is there
    expect(report.beside).toEqual(['probe']); // and nothing beside it
    expect(Object.keys(report.reads)).toHaveLength(forbidden.length + 1);
    for (const [path, outcome] of Object.entries(report.reads)) expect({ path, outcome }).toEqual({ path, outcome: 'ENOENT' });
    for (const attempt of [report.node, report.internet, report.dns]) expect(attempt).toMatch(/^refused: /);
  });

  it('past its memoryMb: killed and restarted, the DApp gets a clean answer, other work is answered meanwhile', async () => {
    expect((await call('hog', '/')).status).toBe(200);
    const alloc = call('hog', '/alloc');
    // Echo work while the hog is killed and restarted.
    let echoed = 0;
    let done = false;
    void alloc.finally(() => (done = true));
    while (!done) {
      const e = await call('echo', '/');
      expect(e.status).toBe(200);
      echoed++;
    }
    const answer = await alloc;
    // Every attempt (on this, the only miner) was killed: a problem answer, not a hang nor a 200.
    expect(answer.status).toBe(502);
    expect(answer.body).toMatch(/failed on \d+ miners|could not run/);
    expect(echoed).toBeGreaterThan(0);
    await waitFor(async () => (await call('hog', '/')).status === 200, 'the hog to answer again after its restarts', 30_000);
    await waitFor(() => /killed for exceeding its memory limit of 64 MB/.test(miner.stderr()), 'the miner to log the OOM kill');
    expect(miner.stderr()).toMatch(/exit code 137: killed for exceeding its memory limit/);
  });

  it('a fork bomb stops at the pids limit; the DService and the miner keep working', async () => {
    const r = await call('hog', '/forkbomb');
    expect(r.status).toBe(200);
    const report = JSON.parse(r.body) as { spawned: number; codes: string[] };
    expect(report.spawned).toBeLessThan(32);
    expect(report.codes).toContain('EAGAIN');
    expect((await call('hog', '/')).status).toBe(200);
    expect((await call('echo', '/')).status).toBe(200);
  });
});
