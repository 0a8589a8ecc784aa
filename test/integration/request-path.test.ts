/**
 * The request path over real sockets and processes: DApp -> node -> miner process -> DService
 * in a sandbox -> back, and what happens when a miner misbehaves or dies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { CLOSE } from '@cgn/node';
import { ECHO, MEDIAGEN, ScriptedMiner, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

const post = (t: TestNode, path: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
  fetch(t.url('echo', path), { method: 'POST', body, headers: { authorization: `Bearer ${t.apiKey}`, ...headers } });

describe('request path with real miner processes', () => {
  let t: TestNode;
  const miners: MinerProcess[] = [];
  const tmp = tempDir();

  beforeAll(async () => {
    t = await startTestNode();
    miners.push(spawnMiner(t.node.minerUrl, tmp.path, { name: 'a', dservices: [ECHO, MEDIAGEN] }));
    miners.push(spawnMiner(t.node.minerUrl, tmp.path, { name: 'b', dservices: [ECHO, MEDIAGEN] }));
    await waitFor(() => minersOf(t.node).length === 2, 'two miners to join');
  });

  afterAll(async () => {
    for (const m of miners) m.kill('SIGKILL');
    await t.cleanup();
    tmp.cleanup();
  });

  it('runs a request on a miner and answers with the DService response, work id and Server-Timing', async () => {
    const res = await post(t, '/anything?x=1', 'hello miner', { 'content-type': 'text/plain' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello miner');
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(res.headers.get('cgn-work-id')).toMatch(/^w_/);
    expect(res.headers.get('server-timing')).toMatch(/queue;dur=[\d.]+, exec;dur=[\d.]+/);
  });

  it('carries large uploads and answers byte for byte (bodies kept in chunks, sent as fragments both ways)', async () => {
    const sizes = [65_536, 70_001, 300_000, 1_000_000];
    const bodies = sizes.map((n) => randomBytes(n));
    const answers = await Promise.all(bodies.map(async (b) => {
      const res = await post(t, '/big', b, { 'content-type': 'application/octet-stream' });
      return { status: res.status, id: res.headers.get('cgn-work-id')!, bytes: Buffer.from(await res.arrayBuffer()) };
    }));
    const db = new Database(join(t.dir, 'ledger.sqlite'), { readonly: true });
    try {
      for (const [i, a] of answers.entries()) {
        expect(a.status).toBe(200);
        expect(a.bytes.length).toBe(sizes[i]);
        expect(a.bytes.equals(bodies[i]!), `echo of ${sizes[i]} bytes`).toBe(true);
        await waitFor(() => db.prepare('SELECT 1 FROM microtransactions WHERE work_id = ?').get(a.id) !== undefined, `the record of ${a.id}`);
        const row = db.prepare('SELECT bytes_in, bytes_out FROM microtransactions WHERE work_id = ?').get(a.id) as { bytes_in: number; bytes_out: number };
        expect(row).toEqual({ bytes_in: sizes[i], bytes_out: sizes[i] });
      }
    } finally {
      db.close();
    }
  });

  it('reads large bodies into reused pool blocks: concurrent uploads come back intact, and every block is given back', async () => {
    const pool = () => (t.node.status()['counters'] as { bodyPool: { blocks: number; inUse: number; bodies: number; overflowBodies: number } }).bodyPool;
    const before = pool().bodies;
    let blocksNeeded = 0;
    for (let wave = 0; wave < 3; wave++) {
      const bodies = Array.from({ length: 16 }, (_, i) => randomBytes(20_000 + ((wave * 16 + i) * 9_973) % 280_000));
      blocksNeeded += bodies.reduce((n, b) => n + Math.ceil(b.length / 65_536), 0);
      const answers = await Promise.all(bodies.map(async (b) => {
        const res = await post(t, '/pool', b, { 'content-type': 'application/octet-stream' });
        return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
      }));
      for (const [i, a] of answers.entries()) {
        expect(a.status).toBe(200);
        expect(a.bytes.equals(bodies[i]!), `wave ${wave}, body ${i} (${bodies[i]!.length} bytes) came back intact`).toBe(true);
      }
      await waitFor(() => pool().inUse === 0, 'every pool block to be given back');
    }
    const p = pool();
    expect(p.bodies - before).toBe(48);
    expect(p.blocks).toBeLessThan(blocksNeeded); // blocks were used again

    // An upload the client abandons halfway gives its blocks back too, and the node keeps serving.
    const { port } = new URL(t.node.workUrl);
    const sock = connect(Number(port), '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(`POST /v1/d/echo/abandoned HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${t.apiKey}\r\ncontent-length: 500000\r\n\r\n`);
    sock.write(randomBytes(200_000));
    await waitFor(() => pool().inUse > 0, 'the abandoned upload to take pool blocks');
    sock.destroy();
    await waitFor(() => pool().inUse === 0, 'the abandoned upload to give its blocks back');
    const res = await post(t, '/after', randomBytes(100_000));
    expect(res.status).toBe(200);
  });

  it('meters every completed request into the ledger before answering', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await post(t, '/', `n${i}`);
      ids.push(res.headers.get('cgn-work-id')!);
      await res.arrayBuffer();
    }
    const db = new Database(join(t.dir, 'ledger.sqlite'), { readonly: true });
    try {
      const cols = (db.prepare('PRAGMA table_info(microtransactions)').all() as { name: string }[]).map((c) => c.name);
      const idCol = cols.find((c) => c === 'work_id' || c === 'workId')!;
      for (const id of ids) {
        const row = db.prepare(`SELECT * FROM microtransactions WHERE ${idCol} = ?`).get(id) as Record<string, unknown> | undefined;
        expect(row, `record for ${id}`).toBeDefined();
      }
    } finally {
      db.close();
    }
  });

  it('transforms a real image through MediaGen on a miner', async () => {
    const sharp = (await import('sharp')).default;
    const jpeg = await sharp({ create: { width: 1200, height: 900, channels: 3, background: { r: 200, g: 80, b: 20 } } }).jpeg().toBuffer();
    const res = await fetch(t.url('mediagen', '/transform?width=400&format=webp'), { method: 'POST', body: jpeg, headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 400, 300]);
    const bad = await fetch(t.url('mediagen', '/transform?width=400'), { method: 'POST', body: 'not an image', headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(bad.status).toBe(400);
  });

  it('refuses a missing or bad API key with 401 problem+json', async () => {
    const none = await fetch(t.url('echo'), { method: 'POST', body: 'x' });
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toBe('application/problem+json');
    expect(none.headers.get('www-authenticate')).toMatch(/Bearer/);
    const bad = await fetch(t.url('echo'), { method: 'POST', body: 'x', headers: { authorization: 'Bearer cgn_notarealkey' } });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { code: string }).code).toBe('unauthorized');
  });

  it('answers 404 for an unknown DService and 413 for an oversized body', async () => {
    const nf = await fetch(t.url('nope'), { method: 'POST', body: 'x', headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(nf.status).toBe(404);
    expect(((await nf.json()) as { code: string }).code).toBe('unknown_dservice');
    const big = await post(t, '/', new Uint8Array(2 * 1024 * 1024)); // echo allows 1 MiB
    expect(big.status).toBe(413);
    expect(big.headers.get('content-type')).toBe('application/problem+json');
  });

  it('answers 504 when the deadline passes, and the miner slot is freed', async () => {
    const res = await post(t, '/slow?ms=2000', 'x', { 'cgn-deadline-ms': '150' });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { code: string }).code).toBe('deadline_exceeded');
    const ok = await post(t, '/', 'after');
    expect(await ok.text()).toBe('after');
  });

  it('a miner killed with SIGKILL while holding work: every request still succeeds', async () => {
    const extra = spawnMiner(t.node.minerUrl, tmp.path, { name: 'victim', dservices: [ECHO] });
    miners.push(extra);
    await waitFor(() => minersOf(t.node).some((m) => m.id === extra.id), 'the victim miner to join');
    const n = 24;
    // Half the bodies are large enough for the node's body pool: re-sent after the victim's tunnel
    // died (its writes failed), they must still be intact, and their blocks must all come back.
    const bodies = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? Buffer.from(`req-${i}`) : Buffer.concat([Buffer.from(`req-${i}:`), randomBytes(40_000)])));
    const requests = bodies.map((b) => post(t, '/slow?ms=400', b).then(async (r) => ({ status: r.status, body: Buffer.from(await r.arrayBuffer()) })));
    await waitFor(() => (minersOf(t.node).find((m) => m.id === extra.id)?.inUse ?? 0) > 0, 'the victim to hold work');
    extra.kill('SIGKILL');
    const results = await Promise.all(requests);
    expect(results.map((r) => r.status)).toEqual(Array(n).fill(200));
    for (const [i, r] of results.entries()) expect(r.body.equals(bodies[i]!), `request ${i} came back intact`).toBe(true);
    expect(t.node.broker.counters.requeued).toBeGreaterThan(0);
    await waitFor(() => (t.node.status()['counters'] as { bodyPool: { inUse: number } }).bodyPool.inUse === 0, 'every pool block to be given back');
  });

  it('a malformed frame from one miner closes only that tunnel', async () => {
    const rogue = new ScriptedMiner({ ack: true, answer: true });
    await rogue.connect(t.node.minerUrl);
    await waitFor(() => minersOf(t.node).some((m) => m.id === rogue.id), 'the rogue miner to join');
    rogue.sendRaw(new Uint8Array([0xc1, 0xff, 0x00, 0x13]));
    const closed = await rogue.closed;
    expect(closed.code).toBe(CLOSE.badFrame);
    expect(closed.reason).toMatch(/bad frame/);
    expect(minersOf(t.node).some((m) => m.id === rogue.id)).toBe(false);
    const res = await post(t, '/', 'still serving');
    expect(await res.text()).toBe('still serving');
    expect(minersOf(t.node).length).toBeGreaterThanOrEqual(2);
  });
});

describe('a miner that never acks', () => {
  it('is dropped after the ack timeout and its work runs on another miner', async () => {
    const t = await startTestNode({ broker: { ackTimeoutMs: 300 } });
    const silent = new ScriptedMiner({ ack: false, answer: false, slots: 8 });
    await silent.connect(t.node.minerUrl);
    const good = new ScriptedMiner({ ack: true, answer: true, slots: 1 });
    await good.connect(t.node.minerUrl);
    try {
      await waitFor(() => minersOf(t.node).length === 2, 'both miners to join');
      // The silent miner is empty and gets work first.
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => post(t, '/', `w${i}`).then((r) => r.text())));
      expect(results).toEqual(['w0', 'w1', 'w2', 'w3', 'w4', 'w5']);
      expect(silent.workIds().length).toBeGreaterThan(0);
      const closed = await silent.closed;
      expect(closed.code).toBe(CLOSE.dropped);
      expect(closed.reason).toMatch(/no ack/);
      expect(minersOf(t.node).map((m) => m.id)).toEqual([good.id]);
    } finally {
      good.ws.close();
      await t.cleanup();
    }
  });
});

describe('a full queue', () => {
  it('answers 503 with Retry-After past the depth threshold', async () => {
    const t = await startTestNode({ broker: { maxQueueDepth: 3 } });
    try {
      // One busy miner (one slot, answering only when told): one runs, three queue, the fifth is refused at once.
      const m = new ScriptedMiner({ ack: true, answer: false, slots: 1 });
      await m.connect(t.node.minerUrl);
      await waitFor(() => minersOf(t.node).length === 1, 'the miner in the pool');
      const pending = Array.from({ length: 4 }, () => post(t, '/', 'q', { 'cgn-deadline-ms': '5000' }));
      await waitFor(() => t.node.broker.snapshot().queues.some((q) => q.depth === 3), 'three queued units');
      const refused = await post(t, '/', 'over');
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as { code: string }).code).toBe('queue_full');
      // The miner answers and the queued work completes.
      let settled = false;
      const all = Promise.all(pending).finally(() => (settled = true));
      await waitFor(() => (m.answerPending(), settled), 'the queued work answered');
      expect((await all).map((r) => r.status)).toEqual([200, 200, 200, 200]);
      m.ws.close();
    } finally {
      await t.cleanup();
    }
  });
});

describe('rate limits on the work endpoint', () => {
  it('answers 429 with Retry-After past the per-key limit, and keeps serving other keys', async () => {
    const t = await startTestNode({ rateLimits: { perKey: { burst: 2, perSecond: 0.01 }, perIp: { burst: 1000, perSecond: 1000 } } });
    const m = new ScriptedMiner({ ack: true, answer: true });
    await m.connect(t.node.minerUrl);
    try {
      expect((await post(t, '/', 'a')).status).toBe(200);
      expect((await post(t, '/', 'b')).status).toBe(200);
      const limited = await post(t, '/', 'c');
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await limited.json()) as { code: string }).code).toBe('rate_limited');
      const other = t.node.keys.create('other-account').key;
      const res = await fetch(t.url('echo'), { method: 'POST', body: 'd', headers: { authorization: `Bearer ${other}` } });
      expect(res.status).toBe(200);
    } finally {
      m.ws.close();
      await t.cleanup();
    }
  });
});
