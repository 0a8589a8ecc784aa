/**
 * The proxy against a plain HTTP server on a unix socket (standing in for a DService).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CgnError } from '@cgn/protocol';
import { resultHash, runWork, type ProxyRequest } from './proxy.js';
import { tempDir } from '../test/fixtures.js';
import { Cancellation } from './cancellation.js';

const tmp = tempDir();
const socketPath = join(tmp.path, 'd.sock');
let server: Server;
let pool: Pool;
const closedRequests: string[] = [];
let slowReached: (() => void) | null = null;

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
  await new Promise<void>((r) => server.listen(socketPath, r));
  pool = new Pool('http://localhost', { socketPath, connections: 4, headersTimeout: 0, bodyTimeout: 0 });
});

afterAll(async () => {
  await pool.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  tmp.cleanup();
});

const limits = { maxBodyBytes: 2 * 1024 * 1024 };
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
    const nowhere = new Pool('http://localhost', { socketPath: join(tmp.path, 'missing.sock') });
    try {
      const err = await runWork(nowhere, req('/echo'), limits).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CgnError);
      expect(err).toMatchObject({ code: 'dservice_unavailable', retryable: true });
    } finally {
      await nowhere.destroy();
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
});
