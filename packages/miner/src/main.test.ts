/**
 * `cgn miner` command line: argument errors and help in-process; a real miner process (built
 * from dist) that drains and exits 0 on SIGTERM/SIGINT.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, type Frame, type ResultFrame } from '@cgn/protocol';
import { runMinerFromArgs, MINER_USAGE, type MainIo } from './main.js';
import { digestPackage } from './digest.js';
import { NodePeer } from '../test/node-peer.js';
import { ECHO, ROOT, ensureEchoBuilt, tempDir } from '../test/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

interface Run {
  out: string;
  err: string;
  code: number | null;
}

async function run(argv: string[]): Promise<Run> {
  const r: Run = { out: '', err: '', code: null };
  const io: MainIo = {
    stdout: (t) => void (r.out += t),
    stderr: (t) => void (r.err += t),
    exit: (c) => void (r.code = c),
    signals: false,
  };
  const miner = await runMinerFromArgs(argv, io);
  expect(miner).toBeNull();
  return r;
}

describe('runMinerFromArgs: arguments', () => {
  it('--measure prints the runtime measurement and the DServices\' digests (for the attestation allow-list) without a node', async () => {
    const r = await run(['--measure', '--dservice', ECHO]);
    const m = JSON.parse(r.out) as { runtime: string; parts: { node: string }; dservices: { dir: string; digest: string }[] };
    expect(m.runtime).toMatch(/^[0-9a-f]{64}$/);
    expect(m.parts.node).toBe(process.version);
    expect(m.dservices).toEqual([{ dir: ECHO, digest: await digestPackage(ECHO) }]);
    expect(MINER_USAGE).toMatch(/--tpm TCTI/);
  });

  it('--help prints the usage with the defaults', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await run([flag]);
      expect(r.code).toBeNull();
      expect(r.out).toBe(MINER_USAGE);
    }
    expect(MINER_USAGE).toMatch(/--node URL/);
    expect(MINER_USAGE).toMatch(/--dservice DIR/);
    expect(MINER_USAGE).toMatch(/default open/);
    expect(MINER_USAGE).toMatch(/default auto/);
    expect(MINER_USAGE).toMatch(/miner-key\.pem/);
  });

  it('wrong arguments: a clear message and exit code 2', async () => {
    const key = join(tmp.path, 'k.pem');
    const cases: [string[], RegExp][] = [
      [['--bogus'], /Unknown option '--bogus'/],
      [['positional'], /positional/i],
      [['--dservice', ECHO], /--node URL is required/],
      [['--node', 'ws://127.0.0.1:1/', '--package-cache-mb', 'lots'], /--package-cache-mb must be a positive whole number/],
      [['--node', 'ws://127.0.0.1:1/', '--dservice', ECHO, '--slots', 'many'], /--slots must be a positive integer/],
      [['--node', 'ws://127.0.0.1:1/', '--dservice', ECHO, '--slots', '0'], /--slots must be a positive integer/],
      [['--node', 'ws://127.0.0.1:1/', '--dservice', ECHO, '--key', key, '--tier', 'gold'], /--tier: must be one of open, attested, dedicated/],
      [['--node', 'ws://127.0.0.1:1/', '--dservice', ECHO, '--key', key, '--sandbox', 'vm'], /--sandbox: must be one of auto, bwrap, none/],
      [['--node', 'http://127.0.0.1:1/', '--dservice', ECHO, '--key', key], /--node: .* must start with ws:\/\//],
      [['--node', 'ws://127.0.0.1:1/', '--dservice', join(tmp.path, 'nope'), '--key', key], /--dservice: .*nope is not a directory/],
    ];
    for (const [argv, msg] of cases) {
      const r = await run(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toMatch(msg);
      expect(r.err).toMatch(/^cgn miner: /);
    }
  });
});

describe('cgn miner process', () => {
  let peer: NodePeer;
  const procs: ChildProcess[] = [];

  beforeAll(async () => {
    ensureEchoBuilt();
    // The process runs the compiled miner.
    execFileSync('npx', ['tsc', '-b', 'packages/miner'], { cwd: ROOT, stdio: 'inherit' });
    peer = new NodePeer();
    await peer.start();
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await peer.stop();
  });

  function spawnMiner(name: string): { proc: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
    const main = join(ROOT, 'packages/miner/dist/main.js');
    const proc = spawn(
      process.execPath,
      [
        '--input-type=module', '-e', `import { runMinerFromArgs } from ${JSON.stringify(main)}; await runMinerFromArgs(process.argv.slice(1));`,
        '--', '--node', peer.url, '--dservice', ECHO, '--key', join(tmp.path, `${name}.pem`), '--sandbox', 'bwrap', '--location', 'test-lab',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CGN_LOG_LEVEL: 'info' } },
    );
    procs.push(proc);
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    return { proc, exited, stderr: () => err };
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal}: drains, finishes the work in flight, and exits 0`, async () => {
      const connP = peer.next();
      const m = spawnMiner(signal);
      const conn = await connP;
      const ad = await conn.advertised();
      expect(ad.location).toBe('test-lab');
      expect(ad.dservices.map((d) => d.name)).toEqual(['echo']);
      const w = frame({ t: 'work', id: `w-${signal}`, dservice: 'echo', method: 'POST', path: '/slow?ms=300', headers: [], body: Buffer.from('last one'), timeoutMs: 10_000 }) as Frame;
      conn.send(w);
      await conn.waitFrame((f) => f.t === 'ack' && f.id === `w-${signal}`);
      m.proc.kill(signal);
      await conn.waitFrame((f) => f.t === 'drain');
      const r = await conn.waitFrame<ResultFrame>((f) => f.t === 'result' && f.id === `w-${signal}`);
      expect(Buffer.from(r.body).toString()).toBe('last one');
      expect((await conn.closed).code).toBe(1001);
      expect(await m.exited).toBe(0);
      // No payout address: said in plain words on stderr, beside the JSON logs.
      expect(m.stderr()).toContain('cgn miner: WARNING: no --payout-address');
      // JSON logs on stderr, with the lifecycle in them.
      const lines = m.stderr().trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });
      const msgs = lines.map((l) => l.msg);
      expect(msgs).toContain('miner started');
      expect(msgs).toContain('connected to the node');
      expect(msgs).toContain('miner stopped');
    });
  }
});
