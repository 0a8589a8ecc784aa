/**
 * The DService link over a real unix socket: `@cgn/sdk`'s link server with a real handler, and
 * the miner's `DServiceLink`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { CgnError } from '@cgn/protocol';
import { LINK_RESPONSE, encodeLinkHead, serveLink, type DServiceHandler, type RunningLink } from '@cgn/sdk';
import { DServiceLink } from './link-client.js';
import { Cancellation } from './cancellation.js';
import { resultHash, type ProxyRequest } from './proxy.js';

const dirs: string[] = [];
const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function socketPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'cgn-link-'));
  dirs.push(d);
  return join(d, 'link.sock');
}

async function served(handler: DServiceHandler, maxBodyBytes = 8 * 1024 * 1024): Promise<{ link: DServiceLink; server: RunningLink; path: string }> {
  const path = socketPath();
  const server = await serveLink(path, handler, maxBodyBytes);
  const link = new DServiceLink(path, maxBodyBytes);
  closers.push(() => link.close(), () => server.close());
  return { link, server, path };
}

const limits = { maxBodyBytes: 8 * 1024 * 1024 };
const work = (over: Partial<ProxyRequest> = {}): ProxyRequest => ({ method: 'POST', path: '/x?a=1', headers: [], body: Buffer.from('hi'), ...over });

const echo: DServiceHandler = (req) => ({
  status: 201,
  headers: { 'content-type': 'text/plain', 'x-path': req.path, 'x-query': req.query.get('a') ?? '', 'x-seen': String(req.headers['x-in'] ?? '') },
  body: req.body,
});

describe('DServiceLink', () => {
  it('runs a unit: status, headers, body, query and headers in, hash and CPU time out', async () => {
    const { link } = await served(echo);
    const out = await link.run(work({ headers: ['X-In', 'v1', 'connection', 'keep-alive', 'host', 'h'] }), limits);
    expect(out.status).toBe(201);
    expect(Buffer.from(out.body).toString()).toBe('hi');
    expect(out.headers).toEqual(['content-type', 'text/plain', 'x-path', '/x', 'x-query', '1', 'x-seen', 'v1']);
    expect(Buffer.from(out.resultHash)).toEqual(resultHash(201, Buffer.from('hi')));
    expect(out.cpuUs).toBeGreaterThanOrEqual(0);
    expect(out.execUs).toBeGreaterThan(0);
  });

  it('carries a 5 MB body both ways unchanged', async () => {
    const { link } = await served(echo);
    const body = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body[i] = i % 251;
    const out = await link.run(work({ body }), limits);
    expect(createHash('sha256').update(out.body).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
  });

  it('answers 400 concurrent units each with its own answer, over one connection', async () => {
    const { link } = await served(async (req) => {
      await new Promise((r) => setImmediate(r));
      return { status: 200, body: `got ${req.query.get('n')}` };
    });
    const outs = await Promise.all(Array.from({ length: 400 }, (_, n) => link.run(work({ path: `/?n=${n}` }), limits)));
    expect(outs.map((o) => Buffer.from(o.body).toString())).toEqual(Array.from({ length: 400 }, (_, n) => `got ${n}`));
  });

  it('turns a handler that throws into a 500 problem, and a body over the limit into a 413', async () => {
    const { link } = await served((req) => {
      if (req.path === '/boom') throw new Error('kaput');
      return { status: 200 };
    }, 100);
    const boom = await link.run(work({ path: '/boom' }), limits);
    expect(boom.status).toBe(500);
    expect(JSON.parse(Buffer.from(boom.body).toString()).detail).toBe('kaput');
    const big = await link.run(work({ body: Buffer.alloc(101) }), limits);
    expect(big.status).toBe(413);
  });

  it('refuses an answer over the unit\'s limit with payload_too_large', async () => {
    const { link } = await served(() => ({ status: 200, body: Buffer.alloc(2000) }));
    await expect(link.run(work(), { maxBodyBytes: 1000 })).rejects.toMatchObject({ code: 'payload_too_large' });
  });

  it('a cancelled unit rejects at once; its late answer is dropped and the link keeps working', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { link } = await served(async (req) => {
      if (req.path === '/slow') await gate;
      return { status: 200, body: req.path };
    });
    const cancel = new Cancellation();
    const slow = link.run(work({ path: '/slow' }), limits, cancel);
    cancel.cancel(new CgnError('cancelled', 'the node cancelled it'));
    await expect(slow).rejects.toMatchObject({ code: 'cancelled' });
    release();
    const next = await link.run(work({ path: '/after' }), limits);
    expect(Buffer.from(next.body).toString()).toBe('/after');
    expect(link.inFlight).toBe(0);
  });

  it('a DService that dies mid-unit fails what was in flight as retryable, and the next unit reconnects', async () => {
    const path = socketPath();
    let conns: Socket[] = [];
    const all: Socket[] = [];
    const accepted: Array<() => void> = [];
    const server: Server = createServer((s) => {
      s.resume();
      conns.push(s);
      all.push(s);
      accepted.shift()?.();
    });
    await new Promise<void>((r) => server.listen(path, r));
    closers.push(() => {
      for (const s of all) s.destroy();
      return new Promise((r) => server.close(r));
    });
    const link = new DServiceLink(path, 1 << 20);
    closers.push(() => link.close());
    const connected = new Promise<void>((r) => accepted.push(r));
    const pending = link.run(work(), limits);
    await connected;
    for (const s of conns) s.destroy();
    conns = [];
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CgnError);
    expect(err).toMatchObject({ code: 'dservice_unavailable', retryable: true });

    // The next unit opens a new connection; this "DService" answers it by hand.
    const again = new Promise<void>((r) => accepted.push(r));
    const second = link.run(work(), limits);
    await again;
    const meta = JSON.stringify({ s: 200, h: { 'x-by': 'hand' }, c: 5 });
    conns[0]!.write(encodeLinkHead(LINK_RESPONSE, 2, meta, 2));
    conns[0]!.write('ok');
    const out = await second;
    expect(out).toMatchObject({ status: 200, cpuUs: 5, headers: ['x-by', 'hand'] });
  });

  it('a DService that sends garbage is disconnected and its units fail as retryable', async () => {
    const path = socketPath();
    const server = createServer((s) => s.on('data', () => s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]))));
    await new Promise<void>((r) => server.listen(path, r));
    closers.push(() => new Promise((r) => server.close(r)));
    const link = new DServiceLink(path, 1 << 20);
    closers.push(() => link.close());
    await expect(link.run(work(), limits)).rejects.toMatchObject({ code: 'dservice_unavailable', message: expect.stringMatching(/bad frame/) });
  });

  it('a socket that is not there fails the unit as retryable', async () => {
    const link = new DServiceLink(join(socketPath(), 'nope.sock'), 1 << 20);
    await expect(link.run(work(), limits)).rejects.toMatchObject({ code: 'dservice_unavailable', retryable: true });
  });

  it('closing the server lets running units finish first', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const { link, server } = await served(async () => {
      started();
      await gate;
      return { status: 200, body: 'done' };
    });
    const unit = link.run(work(), limits);
    await running;
    const closed = server.close();
    release();
    expect(Buffer.from((await unit).body).toString()).toBe('done');
    await closed;
  });
});
