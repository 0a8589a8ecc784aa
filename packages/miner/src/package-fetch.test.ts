import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCert } from '@cgn/central';
import { CgnError } from '@cgn/protocol';
import { fetchPackage, packageUrl } from './package-fetch.js';

const BODY = Buffer.alloc(5000, 7);

async function drain(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('packageUrl', () => {
  it('is the node endpoint with the path, over https for wss and http for ws, never another host', () => {
    expect(packageUrl('wss://node.example:8081/', '/v1/packages/ab').href).toBe('https://node.example:8081/v1/packages/ab');
    expect(packageUrl('ws://127.0.0.1:9/', '/v1/packages/ab').href).toBe('http://127.0.0.1:9/v1/packages/ab');
    expect(packageUrl('ws://127.0.0.1:9/', '//evil.example/x').host).toBe('127.0.0.1:9');
    expect(packageUrl('ws://127.0.0.1:9/', '/@evil.example/x').host).toBe('127.0.0.1:9');
    expect(() => packageUrl('ws://127.0.0.1:9/', 'http://evil.example/x')).toThrow(CgnError);
  });
});

describe('fetchPackage with the tunnel trust', () => {
  let dir: string;
  let server: Server;
  let base: string;
  let ca: Buffer;
  let pin: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cgn-fetch-'));
    const pair = issueCert(dir, 'node-1', 'localhost', ['localhost', '127.0.0.1']);
    ca = readFileSync(join(dir, 'ca.crt'));
    pin = new X509Certificate(pair.cert).fingerprint256;
    server = createServer({ cert: pair.cert, key: pair.key }, (req, res) => {
      if (req.url === '/v1/packages/ok') return void res.writeHead(200, { 'content-length': BODY.length }).end(BODY);
      if (req.url === '/v1/packages/chunked') {
        res.writeHead(200);
        res.write(BODY);
        return void res.end(BODY);
      }
      if (req.url === '/v1/packages/ungranted') {
        return void res.writeHead(403, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ code: 'forbidden', detail: 'unknown or expired package grant' }));
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `wss://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, trust: Parameters<typeof fetchPackage>[1]['trust'], sizeBytes = BODY.length) => fetchPackage(packageUrl(base, path), { trust, sizeBytes, timeoutMs: 5000 });

  it('downloads with the CA, or with the pinned certificate alone', async () => {
    expect((await drain(await get('/v1/packages/ok', { ca }))).equals(BODY)).toBe(true);
    expect((await drain(await get('/v1/packages/ok', { pinSha256: pin }))).equals(BODY)).toBe(true);
  });

  it('refuses a certificate it cannot verify, or another than the pinned one', async () => {
    await expect(get('/v1/packages/ok', {})).rejects.toThrow(/cannot fetch the package/);
    await expect(get('/v1/packages/ok', { pinSha256: 'AB'.repeat(32) })).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('refuses more bytes than announced (by content-length, or as they stream), and names a missing package', async () => {
    await expect(get('/v1/packages/ok', { ca }, 100)).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(drain(await get('/v1/packages/chunked', { ca }, BODY.length))).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(get('/v1/packages/none', { ca })).rejects.toMatchObject({ code: 'not_found' });
    // A refusal keeps the node's reason.
    await expect(get('/v1/packages/ungranted', { ca })).rejects.toMatchObject({ code: 'forbidden', message: 'the node answered 403 for /v1/packages/ungranted: unknown or expired package grant' });
  });

  it('speaks plain http to a ws:// node', async () => {
    const plain = createHttpServer((_req, res) => void res.writeHead(200, { 'content-length': 3 }).end('abc'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const url = packageUrl(`ws://127.0.0.1:${(plain.address() as AddressInfo).port}/`, '/v1/packages/x');
      expect((await drain(await fetchPackage(url, { trust: {}, sizeBytes: 3, timeoutMs: 5000 }))).toString()).toBe('abc');
    } finally {
      await new Promise((r) => plain.close(r));
    }
  });
});
