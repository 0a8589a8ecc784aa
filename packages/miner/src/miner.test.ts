/**
 * The miner against a test peer that plays the node with real frames, running the real echo
 * DService inside bubblewrap.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  frame, importMinerKey, minerIdOf, verifyChallenge,
  type ErrorFrame, type Frame, type ResultFrame, type WorkFrame,
} from '@cgn/protocol';
import { digestPackage } from './digest.js';
import { startMiner, type Miner } from './miner.js';
import type { MinerOptions } from './options.js';
import { NodePeer, waitEvent, type PeerConn } from '../test/node-peer.js';
import { ECHO, ensureEchoBuilt, silent, tempDir } from '../test/fixtures.js';

const tmp = tempDir();
let peer: NodePeer;
const miners: Miner[] = [];
let seq = 0;

beforeAll(async () => {
  ensureEchoBuilt();
  peer = new NodePeer({ heartbeatMs: 1000 });
  await peer.start();
});

afterEach(async () => {
  await Promise.all(miners.splice(0).map((m) => m.stop()));
});

afterAll(async () => {
  await peer.stop();
  tmp.cleanup();
});

async function start(over: Partial<MinerOptions> = {}): Promise<{ miner: Miner; conn: PeerConn }> {
  const connP = peer.next();
  const miner = await startMiner({
    nodeUrl: peer.url,
    keyFile: join(tmp.path, `key-${++seq}.pem`),
    dservices: [ECHO],
    sandbox: 'bwrap',
    logger: silent(),
    reconnectBaseMs: 20,
    reconnectCapMs: 200,
    healthIntervalMs: 200,
    restartBaseMs: 20,
    ...over,
  });
  miners.push(miner);
  const conn = await connP;
  await conn.advertised();
  return { miner, conn };
}

function work(over: Partial<WorkFrame> & { path: string }): WorkFrame {
  return frame({
    t: 'work', id: `w${++seq}`, dservice: 'echo', method: 'POST', headers: [], body: new Uint8Array(0), timeoutMs: 30_000, ...over,
  }) as WorkFrame;
}

const isResult = (id: string) => (f: Frame): boolean => f.t === 'result' && f.id === id;
const isError = (id: string) => (f: Frame): boolean => f.t === 'error' && f.id === id;
const isAnswer = (id: string) => (f: Frame): boolean => (f.t === 'result' || f.t === 'error') && 'id' in f && f.id === id;

function expectedHash(status: number, body: Uint8Array): Buffer {
  const s = Buffer.alloc(2);
  s.writeUInt16BE(status);
  return createHash('sha256').update(s).update(body).digest();
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('miner and node: handshake', () => {
  it('says hello, signs the challenge, and advertises the echo DService with its digest', async () => {
    const { miner, conn } = await start({ location: 'eu-test', tier: 'dedicated' });
    const hello = conn.hello!;
    expect(hello.agent).toBe('cgn-miner/0.1.0');
    expect(hello.publicKey).toHaveLength(32);
    const auth = conn.frames.find((f) => f.t === 'auth')!;
    expect(auth.t === 'auth' && verifyChallenge(hello.publicKey, conn.nonce, peer.nodeId, auth.signature)).toBe(true);
    expect(conn.authOk).toBe(true);

    // The key file was created with mode 0600 and holds the advertised identity.
    const keyFile = join(tmp.path, `key-${seq}.pem`);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(minerIdOf(importMinerKey(readFileSync(keyFile, 'utf8')).publicKey)).toBe(miner.minerId);
    expect(conn.minerId).toBe(miner.minerId);

    const ad = await conn.advertised();
    expect(ad.tier).toBe('dedicated');
    expect(ad.slots).toBe(64); // echo's concurrency
    expect(ad.location).toBe('eu-test');
    expect(ad.resources.cpus).toBe(availableParallelism());
    expect(ad.resources.memoryMb).toBeGreaterThan(0);
    expect(ad.dservices).toEqual([{ name: 'echo', version: '0.1.0', digest: await digestPackage(ECHO), slots: 64 }]);

    const st = miner.status();
    expect(st).toMatchObject({ connected: true, minerId: miner.minerId, slots: 64, sandbox: 'bwrap', inFlight: 0, workDone: 0 });
    expect(st.dservices[0]).toMatchObject({ name: 'echo', state: 'ready', advertised: true });
    expect(st.dservices[0]!.instance!.dservicePid).toBeGreaterThan(0);
    // Nothing placed yet: the package cache is empty, within the default 1024 MiB budget.
    expect(st.packageCache).toMatchObject({ bytes: 0, budgetBytes: 1024 * 1024 * 1024, packages: [] });
  });

  it('reuses an existing key file', async () => {
    const { miner } = await start();
    const keyFile = join(tmp.path, `key-${seq}.pem`);
    await miner.stop();
    const { miner: again } = await start({ keyFile });
    expect(again.minerId).toBe(miner.minerId);
  });
});

describe('miner and node: work', () => {
  it('answers with the echoed body, metering and result hash (the result is the ack of quick work)', async () => {
    const { miner, conn } = await start();
    const body = randomBytes(100_000);
    const w = work({ path: '/anything?x=1', headers: ['content-type', 'application/x-test', 'x-custom', 'yes'], body });
    conn.send(w);
    const result = await conn.waitFrame<ResultFrame>(isResult(w.id));
    expect(result.status).toBe(200);
    expect(Buffer.from(result.body).equals(body)).toBe(true);
    expect(Buffer.from(result.resultHash).equals(expectedHash(200, body))).toBe(true);
    expect(Number.isInteger(result.metering.execUs) && result.metering.execUs > 0).toBe(true);
    expect(Number.isInteger(result.metering.cpuUs) && result.metering.cpuUs >= 0).toBe(true);
    const names = result.headers.filter((_, i) => i % 2 === 0);
    expect(names).toContain('content-type');
    expect(result.headers[result.headers.indexOf('content-type') + 1]).toBe('application/x-test');
    for (const n of names) expect(n).toBe(n.toLowerCase());
    for (const hop of ['cgn-cpu-us', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']) expect(names).not.toContain(hop);
    expect(miner.status().workDone).toBe(1);
  });

  it('slow work is acked before its result', async () => {
    const { conn } = await start();
    const w = work({ path: '/slow?ms=300', body: Buffer.from('s') });
    conn.send(w);
    const result = await conn.waitFrame<ResultFrame>(isResult(w.id));
    const ackIndex = conn.frames.findIndex((f) => f.t === 'ack' && f.id === w.id);
    expect(ackIndex).toBeGreaterThanOrEqual(0);
    expect(ackIndex).toBeLessThan(conn.frames.indexOf(result));
  });

  it('answers many work units sent in one message, in few messages', async () => {
    const { conn } = await start();
    const ws = Array.from({ length: 40 }, (_, i) => work({ path: '/echo', body: Buffer.from(`unit ${i}`) }));
    const before = conn.messageSizes.length;
    conn.send(...ws);
    const results = await Promise.all(ws.map((w) => conn.waitFrame<ResultFrame>(isResult(w.id))));
    results.forEach((r, i) => expect(Buffer.from(r.body).toString()).toBe(`unit ${i}`));
    // Results are batched per event-loop turn, and quick work needs no ack frames of its own.
    expect(conn.messageSizes.length - before).toBeLessThan(40);
  });

  it('GET with an empty body, and the DService status passes through', async () => {
    const { conn } = await start();
    const w = work({ path: '/hello', method: 'GET' });
    conn.send(w);
    const r = await conn.waitFrame<ResultFrame>(isResult(w.id));
    expect(r.status).toBe(200);
    expect(Buffer.from(r.body).toString()).toBe('hello');
  });

  it('a DService answer the node could not forward: headers HTTP cannot carry are dropped, an interim status is a failure', async () => {
    const { conn } = await start();
    const snow = work({ path: `/respond?status=201&header=${encodeURIComponent('snow \u2603')}`, method: 'GET' });
    conn.send(snow);
    const r = await conn.waitFrame<ResultFrame>(isResult(snow.id));
    expect(r.status).toBe(201);
    expect(r.headers).not.toContain('x-echo');
    const interim = work({ path: '/respond?status=101', method: 'GET' });
    conn.send(interim);
    const e = await conn.waitFrame<ErrorFrame>(isError(interim.id));
    expect(e).toMatchObject({ code: 'miner_failed', retryable: false });
    expect(e.message).toMatch(/status must be between 200 and 599/);
    // A status the link cannot even carry (found by the fuzzer: the unit was never answered and
    // its slot held for good).
    const absurd = work({ path: '/respond?status=63', method: 'GET', timeoutMs: 60_000 });
    conn.send(absurd);
    expect(await conn.waitFrame<ErrorFrame>(isError(absurd.id), 10_000)).toMatchObject({ code: 'miner_failed', retryable: false });
    // The tunnel stays up: the next unit is answered.
    const ok = work({ path: '/hello', method: 'GET' });
    conn.send(ok);
    expect((await conn.waitFrame<ResultFrame>(isResult(ok.id))).status).toBe(200);
  });

  it('refuses work for a DService it does not run, retryable', async () => {
    const { conn } = await start();
    const w = work({ path: '/', dservice: 'nope' });
    conn.send(w);
    const e = await conn.waitFrame<ErrorFrame>(isError(w.id));
    expect(e).toMatchObject({ code: 'unknown_dservice', retryable: true });
  });

  it('cancel aborts the work: no result, the slot is free again', async () => {
    const { miner, conn } = await start({ slots: 1 });
    const slow = work({ path: '/slow?ms=20000' });
    const cancelled = waitEvent(miner, 'work-cancelled', (id) => id === slow.id);
    conn.send(slow);
    await conn.waitFrame((f) => f.t === 'ack' && f.id === slow.id);
    conn.sendInput({ t: 'cancel', id: slow.id });
    await cancelled;
    expect(miner.status()).toMatchObject({ inFlight: 0, cancelled: 1 });
    // With one slot, this runs only because the cancelled unit freed it.
    const next = work({ path: '/echo', body: Buffer.from('after cancel') });
    conn.send(next);
    const r = await conn.waitFrame<ResultFrame>(isResult(next.id));
    expect(Buffer.from(r.body).toString()).toBe('after cancel');
    expect(conn.frames.some(isAnswer(slow.id))).toBe(false);
  });

  it('work cancelled in the same message it came in: cancelled before it reaches the DService', async () => {
    const { miner, conn } = await start();
    const w = work({ path: '/slow?ms=20000' });
    const cancelled = waitEvent(miner, 'work-cancelled', (id) => id === w.id);
    conn.send(w, frame({ t: 'cancel', id: w.id }) as Frame);
    await cancelled;
    const next = work({ path: '/echo', body: Buffer.from('next') });
    conn.send(next);
    await conn.waitFrame(isResult(next.id));
    expect(conn.frames.some(isAnswer(w.id))).toBe(false);
    expect(miner.status()).toMatchObject({ inFlight: 0, cancelled: 1, workDone: 1 });
  });

  it('work past its timeout fails with deadline_exceeded', async () => {
    const { conn } = await start();
    const w = work({ path: '/slow?ms=20000', timeoutMs: 300 });
    conn.send(w);
    const e = await conn.waitFrame<ErrorFrame>(isError(w.id));
    expect(e).toMatchObject({ code: 'deadline_exceeded', retryable: false });
  });

  it('more work than slots: the extra unit is refused, retryable', async () => {
    const { conn } = await start({ slots: 1 });
    const a = work({ path: '/slow?ms=20000' });
    const b = work({ path: '/echo' });
    conn.send(a, b);
    const e = await conn.waitFrame<ErrorFrame>(isError(b.id));
    expect(e).toMatchObject({ code: 'queue_full', retryable: true });
    conn.sendInput({ t: 'cancel', id: a.id });
  });
});

describe('miner and node: DService failures', () => {
  it('DService crashes: work in flight gets a retryable error, the instance restarts, later work succeeds', async () => {
    const { miner, conn } = await start();
    const pid0 = miner.status().dservices[0]!.instance!.dservicePid!;
    const slow = work({ path: '/slow?ms=20000' });
    conn.send(slow);
    await conn.waitFrame((f) => f.t === 'ack' && f.id === slow.id);
    const restarted = waitEvent(miner, 'instance', (i: { state: string }) => i.state === 'ready');
    const crash = work({ path: '/crash' });
    conn.send(crash);
    const [e1, e2] = await Promise.all([conn.waitFrame<ErrorFrame>(isError(slow.id)), conn.waitFrame<ErrorFrame>(isError(crash.id))]);
    expect(e1).toMatchObject({ code: 'dservice_unavailable', retryable: true });
    expect(e2).toMatchObject({ code: 'dservice_unavailable', retryable: true });
    await restarted;
    // The node was told echo went away and came back.
    await conn.waitFrame((f) => f.t === 'advertise' && f.dservices.length === 1, 20_000, conn.frames.findIndex((f) => f.t === 'advertise' && f.dservices.length === 0));
    const st = miner.status().dservices[0]!;
    expect(st.state).toBe('ready');
    expect(st.instance!.restarts).toBe(1);
    expect(st.instance!.lastExit).toMatchObject({ code: 3 });
    expect(st.instance!.dservicePid).not.toBe(pid0);
    const after = work({ path: '/echo', body: Buffer.from('alive again') });
    conn.send(after);
    const r = await conn.waitFrame<ResultFrame>(isResult(after.id));
    expect(Buffer.from(r.body).toString()).toBe('alive again');
    expect(miner.status().failures).toBe(2);
  });

  it('DService process killed with SIGKILL: restarts, and work in flight gets a retryable error', async () => {
    const { miner, conn } = await start();
    const pid = miner.status().dservices[0]!.instance!.dservicePid!;
    const slow = work({ path: '/slow?ms=20000' });
    conn.send(slow);
    await conn.waitFrame((f) => f.t === 'ack' && f.id === slow.id);
    const restarted = waitEvent(miner, 'instance', (i: { state: string }) => i.state === 'ready');
    process.kill(pid, 'SIGKILL');
    const e = await conn.waitFrame<ErrorFrame>(isError(slow.id));
    expect(e).toMatchObject({ code: 'dservice_unavailable', retryable: true });
    await restarted;
    const after = work({ path: '/echo', body: Buffer.from('ok') });
    conn.send(after);
    expect(Buffer.from((await conn.waitFrame<ResultFrame>(isResult(after.id))).body).toString()).toBe('ok');
  });
});

describe('miner and node: tunnel', () => {
  it('node closes the tunnel with a reason: the miner logs it and reconnects', async () => {
    const { miner, conn } = await start();
    const logged = waitEvent(miner, 'log', (e: { msg: string }) => e.msg.includes('dropped for the test'));
    const disconnected = waitEvent(miner, 'disconnected');
    const nextConn = peer.next();
    conn.ws.close(4004, 'dropped for the test');
    const [info] = await disconnected;
    expect(info).toMatchObject({ code: 4004, reason: 'dropped for the test', welcomed: true });
    await logged;
    const again = await nextConn;
    await again.advertised();
    expect(again.minerId).toBe(miner.minerId);
    expect(miner.status()).toMatchObject({ connected: true, welcomes: 2 });
    const w = work({ path: '/echo', body: Buffer.from('second tunnel') });
    again.send(w);
    expect(Buffer.from((await again.waitFrame<ResultFrame>(isResult(w.id))).body).toString()).toBe('second tunnel');
  });

  it('malformed message from the node: the miner closes with 4002 and the reason, then reconnects', async () => {
    const { conn } = await start();
    const nextConn = peer.next();
    conn.ws.send(Buffer.from([0xc1, 0x00, 0x01]), { binary: true });
    const closed = await conn.closed;
    expect(closed.code).toBe(4002);
    expect(closed.reason).toMatch(/bad frame/);
    await (await nextConn).advertised();
  });

  it('a frame that decodes but is wrong (bad version) also closes with 4002', async () => {
    const { conn } = await start();
    const nextConn = peer.next();
    conn.send({ t: 'ping', v: 99, ts: 1 } as unknown as Frame);
    expect((await conn.closed).code).toBe(4002);
    await (await nextConn).advertised();
  });

  it('a frame a node must not send closes with 4003', async () => {
    const { conn } = await start();
    const nextConn = peer.next();
    conn.sendInput({ t: 'ack', id: 'x' });
    const closed = await conn.closed;
    expect(closed.code).toBe(4003);
    expect(closed.reason).toMatch(/unexpected ack/);
    await (await nextConn).advertised();
  });

  it('answers ping with pong carrying the same ts', async () => {
    const { conn } = await start();
    conn.sendInput({ t: 'ping', ts: 123456 });
    await conn.waitFrame((f) => f.t === 'pong' && f.ts === 123456);
  });

  it('says in its hello that it beats, and beats when the node asks (welcome.beatMs): the node need not ping it', async () => {
    const beating = new NodePeer({ heartbeatMs: 60_000, ping: false, beatMs: 100 });
    await beating.start();
    try {
      const miner = await startMiner({ nodeUrl: beating.url, keyFile: join(tmp.path, 'beating.pem'), dservices: [ECHO], sandbox: 'bwrap', logger: silent() });
      miners.push(miner);
      const conn = await beating.connection(0);
      await conn.advertised();
      expect(conn.frames.find((f) => f.t === 'hello')).toMatchObject({ beats: true });
      // Ten beats after the advertisement, each its own message (nothing else to say while idle).
      for (let i = 0, from = 0; i < 10; i++) {
        await conn.waitFrame((f) => f.t === 'beat', 20_000, from);
        from = conn.frames.findLastIndex((f) => f.t === 'beat') + 1;
      }
      expect(miner.status()).toMatchObject({ connected: true, welcomes: 1 });
    } finally {
      await Promise.all(miners.splice(0).map((m) => m.stop()));
      await beating.stop();
    }
  });

  it('does not beat for a node that did not ask (an older node pings instead)', async () => {
    const { conn } = await start();
    conn.sendInput({ t: 'ping', ts: 1 });
    await conn.waitFrame((f) => f.t === 'pong' && f.ts === 1);
    // The peer pings every second; three pings answered and still no beat.
    const pongs = conn.frames.filter((f) => f.t === 'pong').length;
    await conn.waitFrame((f) => f.t === 'pong' && conn.frames.filter((g) => g.t === 'pong').length >= pongs + 3, 20_000);
    expect(conn.frames.some((f) => f.t === 'beat')).toBe(false);
  });

  it('silence for 3 heartbeats: the miner terminates the tunnel and reconnects', async () => {
    const quiet = new NodePeer({ heartbeatMs: 100, ping: false });
    await quiet.start();
    try {
      const miner = await startMiner({
        nodeUrl: quiet.url, keyFile: join(tmp.path, 'quiet.pem'), dservices: [ECHO], sandbox: 'bwrap', logger: silent(),
        reconnectBaseMs: 20, reconnectCapMs: 100,
      });
      miners.push(miner);
      const first = await quiet.connection(0);
      await first.advertised();
      const [info] = await waitEvent(miner, 'disconnected');
      expect(info).toMatchObject({ reason: 'heartbeat lost', welcomed: true });
      await (await quiet.connection(1)).advertised();
    } finally {
      await Promise.all(miners.splice(0).map((m) => m.stop()));
      await quiet.stop();
    }
  });

  it('node unreachable at start: the miner keeps dialling with backoff and connects when the node appears', async () => {
    const late = new NodePeer();
    await late.start();
    const url = late.url;
    await late.stop();
    const miner = await startMiner({
      nodeUrl: url, keyFile: join(tmp.path, 'late.pem'), dservices: [ECHO], sandbox: 'bwrap', logger: silent(),
      reconnectBaseMs: 10, reconnectCapMs: 50,
    });
    miners.push(miner);
    await waitEvent(miner, 'reconnecting');
    await waitEvent(miner, 'reconnecting');
    expect(miner.status().connected).toBe(false);
    const port = Number(new URL(url).port);
    const { WebSocketServer } = await import('ws');
    // Same port, now listening: a node that came up late.
    const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
    try {
      const [ws] = await waitEvent<[import('ws').WebSocket]>(wss, 'connection');
      const hello = await new Promise<Buffer>((r) => ws.once('message', (d: Buffer) => r(d)));
      expect(hello.length).toBeGreaterThan(0);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });

  it('node drain: in-flight work finishes, new work is refused, then the miner closes and reconnects', async () => {
    const { miner, conn } = await start();
    const slow = work({ path: '/slow?ms=300', body: Buffer.from('finishing') });
    conn.send(slow);
    await conn.waitFrame((f) => f.t === 'ack' && f.id === slow.id);
    const nextConn = peer.next();
    const late = work({ path: '/echo' });
    conn.send(frame({ t: 'drain', reason: 'node maintenance' }) as Frame, late);
    const refused = await conn.waitFrame<ErrorFrame>(isError(late.id));
    expect(refused).toMatchObject({ code: 'draining', retryable: true });
    const r = await conn.waitFrame<ResultFrame>(isResult(slow.id));
    expect(Buffer.from(r.body).toString()).toBe('finishing');
    expect((await conn.closed).code).toBe(1000);
    await (await nextConn).advertised();
    expect(miner.status().connected).toBe(true);
  });
});

describe('miner: graceful stop', () => {
  it('sends drain, finishes in-flight work, closes the tunnel and stops the DService', async () => {
    const { miner, conn } = await start();
    const st = miner.status();
    const pid = st.dservices[0]!.instance!.pid!;
    const runDir = join(st.dservices[0]!.instance!.socketPath, '../..');
    const slow = work({ path: '/slow?ms=400', body: Buffer.from('done before stop') });
    conn.send(slow);
    await conn.waitFrame((f) => f.t === 'ack' && f.id === slow.id);
    miners.splice(miners.indexOf(miner), 1);
    const stopped = miner.stop();
    const drain = await conn.waitFrame((f) => f.t === 'drain');
    const result = await conn.waitFrame<ResultFrame>(isResult(slow.id));
    expect(conn.frames.indexOf(drain)).toBeLessThan(conn.frames.indexOf(result));
    expect(Buffer.from(result.body).toString()).toBe('done before stop');
    const closed = await conn.closed;
    expect(closed.code).toBe(1001);
    await stopped;
    expect(miner.status()).toMatchObject({ state: 'stopped', connected: false, workDone: 1 });
    expect(miner.status().dservices[0]!.state).toBe('stopped');
    // It went on SIGTERM (its own handler exited 0), not on SIGKILL.
    expect(miner.status().dservices[0]!.instance!.lastExit).toMatchObject({ code: 0, signal: null });
    expect(pidAlive(pid)).toBe(false);
    expect(existsSync(runDir)).toBe(false);
    // stop() is idempotent
    await miner.stop();
  });
});
