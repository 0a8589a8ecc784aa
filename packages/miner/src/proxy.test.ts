/**
 * The proxy against a plain HTTP server on a unix socket (standing in for a DService).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CgnError, bodyOf } from '@cgn/protocol';
import { resultHash, runWork, type ProxyRequest } from './proxy.js';
import { tempDir } from '../test/fixtures.js';
import { Cancellation } from './cancellation.js';
import { DServiceHttp, checkHealth } from './dservice-http.js';

const tmp = tempDir();
const socketPath = join(tmp.path, 'd.sock');
let server: Server;
let pool: DServiceHttp;
const closedRequests: string[] = [];
let slowReached: (() => void) | null = null;
const held: ServerResponse[] = [];
let holdReached: (() => void) | null = null;
const connections = new Set<Socket>();
let connectionsSeen = 0;

function route(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const url = req.url ?? '/';
  if (url === '/echo') {
    res.writeHead(201, { 'content-type': 'application/octet-stream', 'cgn-cpu-us': '1234', 'x-foo': 'bar' });
    res.end(body);
  } else if (url === '/headers') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.headers));
  } else if (url === '/hop') {
    // No content-length: chunked transfer encoding; hop-by-hop headers; two set-cookie values.
    res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    res.setHeader('Connection', 'keep-alive, x-hop');
    res.setHeader('X-Hop', 'only for this hop');
    res.setHeader('Keep-Alive', 'timeout=5');
    res.setHeader('Trailer', 'x-t');
    res.setHeader('Upgrade', 'h2c');
    res.writeHead(200);
    res.write('chunk1-');
    res.end('chunk2');
  } else if (url === '/nocpu') {
    res.writeHead(204);
    res.end();
  } else if (url === '/big') {
    res.writeHead(200);
    res.end(Buffer.alloc(4096, 1));
  } else if (url === '/many-headers') {
    const h: Record<string, string> = {};
    for (let i = 0; i < 300; i++) h[`x-h${i}`] = 'v';
    res.writeHead(200, h);
    res.end();
  } else if (url === '/slow') {
    res.on('close', () => closedRequests.push(url));
    slowReached?.();
    setTimeout(() => res.end('late'), 10_000).unref();
  } else if (url === '/announces-too-much') {
    // Claims a body over any limit, sends a little, then stalls: refused from the header alone.
    res.on('close', () => closedRequests.push(url));
    res.writeHead(200, { 'content-length': String(1024 * 1024 * 1024) });
    res.write('a little');
  } else if (url === '/endless') {
    // Chunked and never ending: reading stops at the limit and the connection goes.
    res.on('close', () => closedRequests.push(url));
    res.writeHead(200);
    const chunk = Buffer.alloc(16 * 1024, 7);
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  } else if (url === '/huge-header') {
    res.writeHead(200, { 'x-huge': 'h'.repeat(100 * 1024) });
    res.end();
  } else if (url === '/late') {
    setTimeout(() => res.end('late but whole'), 300);
  } else if (url === '/hold') {
    held.push(res);
    holdReached?.();
  } else if (url === '/die') {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    setImmediate(() => req.socket.destroy());
  } else {
    res.writeHead(404);
    res.end();
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => route(req, res, Buffer.concat(chunks)));
  });
  server.on('connection', (c: Socket) => {
    connectionsSeen++;
    connections.add(c);
    c.on('close', () => connections.delete(c));
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  pool = new DServiceHttp(socketPath, { maxSockets: 4, idleMs: 30_000 });
});

afterAll(async () => {
  pool.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  tmp.cleanup();
});

const limits = { maxBodyBytes: 2 * 1024 * 1024 };
/** Waits (polling each turn of the event loop) until `done()` holds. */
function until(done: () => boolean): Promise<void> {
  return new Promise<void>((r) => {
    const check = (): void => (done() ? r() : void setImmediate(check));
    check();
  });
}

/** A raw socket server standing in for a DService that does not speak HTTP properly. */
async function rawServer(name: string, onConnection: (socket: Socket, index: number) => void): Promise<{ path: string; server: NetServer; close: () => Promise<void> }> {
  const path = join(tmp.path, name);
  let n = 0;
  const sockets = new Set<Socket>();
  const srv = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket, n++);
  });
  await new Promise<void>((r) => srv.listen(path, r));
  return {
    path,
    server: srv,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

const req = (path: string, over: Partial<ProxyRequest> = {}): ProxyRequest => ({ method: 'POST', path, headers: [], body: new Uint8Array(0), ...over });

function header(list: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) out.push(list[i + 1]!);
  return out;
}

describe('resultHash', () => {
  const reference = (status: number, body: Uint8Array): Buffer => {
    const s = Buffer.alloc(2);
    s.writeUInt16BE(status, 0);
    return createHash('sha256').update(Buffer.concat([s, body])).digest();
  };

  it('is sha256 of the status as two bytes big-endian then the body, on both sides of the one-shot size', () => {
    // Sizes around 16 KiB, where small bodies are hashed from a scratch copy and larger ones by a Hash.
    const body = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 16 * 1024 - 3, max: 16 * 1024 + 3 }).map((n) => randomBytes(n)));
    fc.assert(fc.property(fc.integer({ min: 100, max: 999 }), body, (status, b) => {
      expect(resultHash(status, b).toString('hex')).toBe(reference(status, b).toString('hex'));
    }), { numRuns: 300 });
  });

  it('a short hash does not leak the bytes of a longer one hashed before it', () => {
    const long = resultHash(200, Buffer.alloc(1000, 0xaa));
    expect(resultHash(200, Buffer.from('hi')).equals(reference(200, Buffer.from('hi')))).toBe(true);
    expect(long.equals(reference(200, Buffer.alloc(1000, 0xaa)))).toBe(true);
  });
});

describe('runWork', () => {
  it('passes the body through and returns status, body, CPU time, wall time and the result hash', async () => {
    const body = randomBytes(1024 * 1024);
    const o = await runWork(pool, req('/echo', { body }), limits);
    expect(o.status).toBe(201);
    expect(Buffer.from(o.body).equals(body)).toBe(true);
    expect(o.cpuUs).toBe(1234);
    expect(o.execUs).toBeGreaterThan(0);
    const s = Buffer.alloc(2);
    s.writeUInt16BE(201);
    expect(Buffer.from(o.resultHash).equals(createHash('sha256').update(s).update(body).digest())).toBe(true);
    expect(Buffer.from(resultHash(201, body)).equals(Buffer.from(o.resultHash))).toBe(true);
    expect(header(o.headers, 'cgn-cpu-us')).toEqual([]);
    expect(header(o.headers, 'x-foo')).toEqual(['bar']);
    expect(header(o.headers, 'content-length')).toEqual([]);
  });

  it('drops hop-by-hop headers (also those named in Connection) and keeps repeated headers as pairs', async () => {
    const o = await runWork(pool, req('/hop'), limits);
    expect(Buffer.from(o.body).toString()).toBe('chunk1-chunk2');
    expect(header(o.headers, 'set-cookie')).toEqual(['a=1', 'b=2']);
    for (const h of ['connection', 'keep-alive', 'transfer-encoding', 'trailer', 'upgrade', 'x-hop']) expect(header(o.headers, h)).toEqual([]);
    expect(o.headers.length % 2).toBe(0);
    for (let i = 0; i < o.headers.length; i += 2) expect(o.headers[i]).toBe(o.headers[i]!.toLowerCase());
  });

  it('reports 0 CPU when the DService sends no cgn-cpu-us', async () => {
    const o = await runWork(pool, req('/nocpu', { method: 'GET' }), limits);
    expect(o).toMatchObject({ status: 204, cpuUs: 0 });
    expect(o.body).toHaveLength(0);
  });

  it('forwards request headers, leaving out the ones that belong to the hop', async () => {
    const o = await runWork(pool, req('/headers', { headers: ['x-req', 'yes', 'host', 'evil.example', 'connection', 'upgrade', 'content-length', '99', 'transfer-encoding', 'chunked'], body: Buffer.from('abc') }), limits);
    const seen = JSON.parse(Buffer.from(o.body).toString()) as Record<string, string>;
    expect(seen['x-req']).toBe('yes');
    expect(seen['host']).not.toBe('evil.example');
    expect(seen['content-length']).toBe('3');
    expect(seen['transfer-encoding']).toBeUndefined();
  });

  it('an unreachable DService is a retryable dservice_unavailable', async () => {
    const nowhere = new DServiceHttp(join(tmp.path, 'missing.sock'), { maxSockets: 1, idleMs: 1000 });
    try {
      const err = await runWork(nowhere, req('/echo'), limits).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CgnError);
      expect(err).toMatchObject({ code: 'dservice_unavailable', retryable: true });
    } finally {
      nowhere.close();
    }
  });

  it('a DService that dies mid-response is a retryable dservice_unavailable', async () => {
    const err = await runWork(pool, req('/die'), limits).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'dservice_unavailable', retryable: true });
  });

  it('cancel stops the request at the DService and rejects with the reason', async () => {
    const cancel = new Cancellation();
    const reached = new Promise<void>((r) => (slowReached = r));
    const p = runWork(pool, req('/slow'), limits, cancel);
    await reached;
    const closed = closedRequests.length;
    cancel.cancel();
    await expect(p).rejects.toMatchObject({ code: 'cancelled' });
    // The DService sees its connection go (the response it was preparing is moot).
    await new Promise<void>((r) => {
      const check = (): void => (closedRequests.length > closed ? r() : void setImmediate(check));
      check();
    });
    const late = new Cancellation();
    late.cancel(new CgnError('deadline_exceeded', 'too late'));
    await expect(runWork(pool, req('/slow'), limits, late)).rejects.toMatchObject({ code: 'deadline_exceeded' });
  });

  it('a response larger than the limit fails with payload_too_large; too many headers with miner_failed', async () => {
    await expect(runWork(pool, req('/big'), { maxBodyBytes: 1024 })).rejects.toMatchObject({ code: 'payload_too_large', retryable: false });
    await expect(runWork(pool, req('/many-headers'), limits)).rejects.toMatchObject({ code: 'miner_failed' });
    // The pool is fine afterwards.
    expect((await runWork(pool, req('/echo', { body: Buffer.from('ok') }), limits)).status).toBe(201);
  });

  it('a body announced larger than the limit is refused at once, before it is read, and the connection goes', async () => {
    const closed = closedRequests.filter((u) => u === '/announces-too-much').length;
    await expect(runWork(pool, req('/announces-too-much'), limits)).rejects.toMatchObject({ code: 'payload_too_large', retryable: false });
    await until(() => closedRequests.filter((u) => u === '/announces-too-much').length > closed);
  });

  it('an endless body stops being read at the limit: payload_too_large, and the DService sees its connection close', async () => {
    const closed = closedRequests.filter((u) => u === '/endless').length;
    const before = process.memoryUsage().arrayBuffers;
    await expect(runWork(pool, req('/endless'), { maxBodyBytes: 256 * 1024 })).rejects.toMatchObject({ code: 'payload_too_large' });
    await until(() => closedRequests.filter((u) => u === '/endless').length > closed);
    // Nothing near the megabytes a DService could keep sending stays held by the miner.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * 1024);
  });

  it('a header block larger than a result may carry is miner_failed, not a retry elsewhere', async () => {
    await expect(runWork(pool, req('/huge-header'), limits)).rejects.toMatchObject({ code: 'miner_failed' });
  });

  it('a method, path or header node:http refuses is a bad_request; CONNECT is not forwarded', async () => {
    await expect(runWork(pool, req('/echo', { method: 'GE T' }), limits)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(runWork(pool, req('/echo with space'), limits)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(runWork(pool, req('/echo', { headers: ['x-bad', 'a\r\nInjected: yes'] }), limits)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(runWork(pool, req('/echo', { headers: ['bad name', 'v'] }), limits)).rejects.toMatchObject({ code: 'bad_request' });
    await expect(runWork(pool, req('/echo', { method: 'CONNECT' }), limits)).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('sends Content-Length for a body and for an empty POST, none for an empty GET', async () => {
    const seen = async (w: ProxyRequest): Promise<Record<string, string>> => JSON.parse(Buffer.from((await runWork(pool, w, limits)).body).toString()) as Record<string, string>;
    expect((await seen(req('/headers', { method: 'GET' })))['content-length']).toBeUndefined();
    expect((await seen(req('/headers', { method: 'POST' })))['content-length']).toBe('0');
    expect((await seen(req('/headers', { method: 'PUT', body: bodyOf([Buffer.from('ab'), Buffer.from('c')], 3) })))['content-length']).toBe('3');
  });

  it('never opens more connections than it is given, and reuses them', async () => {
    const bounded = new DServiceHttp(socketPath, { maxSockets: 2, idleMs: 30_000 });
    try {
      const seenBefore = connectionsSeen;
      held.length = 0;
      const reached = until(() => held.length === 2);
      const runs = Array.from({ length: 6 }, () => runWork(bounded, req('/hold', { method: 'GET' }), limits));
      await reached;
      // Two answered at a time: each release lets one queued request take the freed connection.
      for (let answered = 0; answered < 6; answered++) {
        await until(() => held.length > 0);
        held.shift()!.end('held');
      }
      for (const o of await Promise.all(runs)) expect(Buffer.from(o.body).toString()).toBe('held');
      expect(connectionsSeen - seenBefore).toBe(2);
    } finally {
      bounded.close();
    }
  });

  it('the idle timeout closes idle connections only: an answer slower than it still arrives', async () => {
    const quick = new DServiceHttp(socketPath, { maxSockets: 1, idleMs: 50 });
    try {
      expect(Buffer.from((await runWork(quick, req('/late', { method: 'GET' }), limits)).body).toString()).toBe('late but whole');
    } finally {
      quick.close();
    }
  });

  it('a DService answering garbage is a retryable dservice_unavailable', async () => {
    const raw = await rawServer('garbage.sock', (socket) => socket.once('data', () => socket.write('this is not HTTP\r\n\r\n')));
    const http = new DServiceHttp(raw.path, { maxSockets: 1, idleMs: 1000 });
    try {
      await expect(runWork(http, req('/'), limits)).rejects.toMatchObject({ code: 'dservice_unavailable', retryable: true });
    } finally {
      http.close();
      await raw.close();
    }
  });

  it('a kept-alive connection the DService closes as it is reused: the request goes once more on a new one', async () => {
    const answer = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok';
    // Each connection answers its first request and drops at the second, unanswered.
    const raw = await rawServer('stale.sock', (socket) => {
      let requests = 0;
      socket.on('data', () => (++requests === 1 ? socket.write(answer) : socket.destroy()));
    });
    const http = new DServiceHttp(raw.path, { maxSockets: 1, idleMs: 30_000 });
    try {
      for (let i = 0; i < 3; i++) expect(Buffer.from((await runWork(http, req('/', { method: 'GET' }), limits)).body).toString()).toBe('ok');
    } finally {
      http.close();
      await raw.close();
    }
  });
});

describe('checkHealth', () => {
  it('is true for a 200, false for another status, for an endless body and for no answer within the timeout', async () => {
    const raw = await rawServer('health.sock', (socket) => {
      socket.once('data', (d: Buffer) => {
        const path = d.toString().split(' ')[1];
        if (path === '/healthz') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
    });
    const http = new DServiceHttp(raw.path, { maxSockets: 1, idleMs: 1000 });
    const silentServer = await rawServer('silent.sock', () => {});
    const silentHttp = new DServiceHttp(silentServer.path, { maxSockets: 1, idleMs: 1000 });
    const endless = await rawServer('endless.sock', (socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
        const chunk = `4000\r\n${'x'.repeat(0x4000)}\r\n`;
        const pump = (): void => {
          while (!socket.destroyed && socket.write(chunk));
          if (!socket.destroyed) socket.once('drain', pump);
        };
        pump();
      });
    });
    const endlessHttp = new DServiceHttp(endless.path, { maxSockets: 1, idleMs: 1000 });
    try {
      expect(await checkHealth(http, 5000)).toBe(true);
      expect(await checkHealth(silentHttp, 100)).toBe(false);
      // Fails at 64 KiB of body, long before its 60 s timeout.
      expect(await checkHealth(endlessHttp, 60_000)).toBe(false);
      expect(await checkHealth(pool, 5000)).toBe(false); // the test server answers /healthz 404
    } finally {
      for (const h of [http, silentHttp, endlessHttp]) h.close();
      await Promise.all([raw.close(), silentServer.close(), endless.close()]);
    }
  });
});
