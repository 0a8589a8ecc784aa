/** The built server as a real process on a unix socket, the way a miner runs it. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { photoJpeg } from '../test/fixtures.js';

const SERVER = fileURLToPath(new URL('../dist/server.js', import.meta.url));

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function send(socketPath: string, method: string, path: string, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method, path, headers: body ? { 'content-length': body.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('mediagen server process', () => {
  let dir: string;
  let socket: string;
  let child: ChildProcess;
  let stderr = '';

  beforeAll(async () => {
    if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: run \`npx tsc -b dservices/mediagen\` first`);
    dir = mkdtempSync(join(tmpdir(), 'mediagen-'));
    socket = join(dir, 'mediagen.sock');
    child = spawn(process.execPath, [SERVER], {
      env: { ...process.env, CGN_SOCKET: socket, CGN_MAX_BODY_BYTES: String(25 * 1024 * 1024) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const until = Date.now() + 15_000;
    while (!stderr.includes('listening on unix:')) {
      if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}): ${stderr}`);
      if (Date.now() > until) throw new Error(`server did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is healthy', async () => {
    const r = await send(socket, 'GET', '/healthz');
    expect(r.status).toBe(200);
  });

  it('transforms over the socket, reporting CPU time', async () => {
    const r = await send(socket, 'POST', '/transform?width=400&format=webp', await photoJpeg());
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/webp');
    expect(r.headers['etag']).toMatch(/^"[0-9a-f]{32}"$/);
    expect(Number(r.headers['cgn-cpu-us'])).toBeGreaterThan(0);
    const m = await sharp(r.body).metadata();
    expect([m.format, m.width, m.height]).toEqual(['webp', 400, 300]);
  });

  it('survives bad input and keeps serving, also under parallel load', async () => {
    const jpeg = await photoJpeg();
    const bad = await Promise.all([
      send(socket, 'POST', '/transform?width=100', jpeg.subarray(0, 3000)),
      send(socket, 'POST', '/transform?width=abc', jpeg),
      send(socket, 'POST', '/info', Buffer.from('not an image')),
      send(socket, 'GET', '/transform'),
    ]);
    expect(bad.map((r) => r.status)).toEqual([400, 400, 400, 405]);
    const good = await Promise.all(Array.from({ length: 8 }, () => send(socket, 'POST', '/transform?width=400&format=webp', jpeg)));
    expect(good.every((r) => r.status === 200)).toBe(true);
    expect(new Set(good.map((r) => r.headers['etag'])).size).toBe(1);
    expect(child.exitCode).toBeNull();
  });
});
