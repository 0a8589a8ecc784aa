/**
 * DService packages at central (issue 16, 1): `cgn dservice publish` registers and uploads; the
 * archive is downloadable by digest once the version is approved; an upload whose digest is not
 * the registered one, an unsafe archive, or a stranger's upload is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { request } from 'node:http';
import { digestPackage, inspectArchive, packToBuffer } from '@cgn/miner';
import { startTestCentral, type TestCentral, type TestClient } from '../testing.js';
import { runAccountFromArgs } from '../cli/account.js';
import { runDServiceFromArgs } from '../cli/dservice.js';
import type { CliIo } from '../cli/common.js';

const ECHO = resolve(import.meta.dirname, '../../../../dservices/echo');

function io(cwd: string, env: Record<string, string> = {}): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      readStdin: async () => '',
      prompt: async () => null,
      env: { CGN_LOG_LEVEL: 'silent', ...env },
      cwd,
    },
    out: () => out,
    err: () => err,
  };
}

describe('DService packages at central', () => {
  let c: TestCentral;
  let dir: string;
  let owner: TestClient;
  let pkgDir: string;
  const OWNER = { login: 'echo-owner', password: 'Ech0-Owner-Pw!x' };

  const cli = async (fn: (a: string[], io: CliIo) => Promise<number>, argv: string[], env: Record<string, string> = {}) => {
    const m = io(dir, { CGN_CENTRAL_URL: c.url, ...env });
    const code = await fn(argv, m.io);
    return { code, out: m.out(), err: m.err() };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cgn-central-pkg-'));
    const loose = { burst: 100_000, perSecond: 100_000 };
    // Public downloads: 1 MiB at once, then 1 MiB a minute (a small package costs a quarter MiB).
    c = await startTestCentral({ dataDir: join(dir, 'central'), http: { rateLimits: { perIp: loose, perPrincipal: loose, auth: loose, packageDownloads: { perIp: { burst: 1, perSecond: 1 / 60 } } } } });
    await c.admin.call('POST', '/v1/accounts', { name: 'echo-co', kinds: ['developer'], owner: OWNER });
    owner = await c.login(OWNER.login, OWNER.password);
    const login = await cli(runAccountFromArgs, ['login', '--login', OWNER.login, '--session', 'owner.json'], { CGN_PASSWORD: OWNER.password });
    expect(login.code, login.err).toBe(0);
    // A copy of echo under another name, so this test owns the name.
    pkgDir = join(dir, 'echo-pub');
    cpSync(ECHO, pkgDir, { recursive: true, filter: (src) => !src.includes('node_modules') });
    const desc = JSON.parse(await import('node:fs').then((f) => f.readFileSync(join(pkgDir, 'dservice.json'), 'utf8'))) as Record<string, unknown>;
    writeFileSync(join(pkgDir, 'dservice.json'), JSON.stringify({ ...desc, name: 'echo-pub', version: '1.0.0' }));
  });

  afterAll(async () => {
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publish registers the version and uploads its package, with progress and a summary', async () => {
    const r = await cli(runDServiceFromArgs, ['publish', '--dir', pkgDir, '--session', 'owner.json']);
    expect(r.code, r.err).toBe(0);
    const digest = await digestPackage(pkgDir);
    expect(r.err).toMatch(/packing .*echo-pub/);
    expect(r.err).toMatch(/uploading/);
    expect(r.out).toContain('published echo-pub@1.0.0');
    expect(r.out).toContain(`digest   ${digest}`);
    expect(r.out).toMatch(/state    pending: an administrator must approve it/);
    const list = await cli(runDServiceFromArgs, ['list', '--session', 'owner.json']);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toMatch(/echo-pub\s+1\.0\.0\s+pending.*\d+ B/);
    const one = await owner.call('GET', '/v1/dservices/echo-pub/1.0.0');
    expect(one.body.package).toEqual({ digest, sizeBytes: expect.any(Number) });
  });

  it('the package is downloadable by digest only once approved, and is the package', async () => {
    const digest = await digestPackage(pkgDir);
    expect((await fetch(`${c.url}/v1/packages/${digest}`)).status).toBe(404);
    expect((await c.admin.call('PUT', '/v1/dservices/echo-pub/1.0.0/approval', { state: 'approved' })).status).toBe(200);
    const res = await fetch(`${c.url}/v1/packages/${digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    const body = Buffer.from(await res.arrayBuffer());
    expect((await inspectArchive(Readable.from([body]))).digest).toBe(digest);
    expect((await fetch(`${c.url}/v1/packages/${'0'.repeat(64)}`)).status).toBe(404);
  });

  it('public downloads are rate-limited per address by the bytes sent: 429 with the reason and Retry-After, served again once it has passed', async () => {
    const digest = await digestPackage(pkgDir);
    let refused: Response | null = null;
    for (let i = 0; i < 8 && refused === null; i++) {
      const res = await fetch(`${c.url}/v1/packages/${digest}`);
      if (res.status === 429) refused = res;
      else {
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    }
    expect(refused).not.toBeNull();
    const retry = Number(refused!.headers.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(((await refused!.json()) as { detail: string }).detail).toMatch(/package downloads from one address are limited to 1 MiB/);
    c.clock.advance(retry * 1000);
    expect((await fetch(`${c.url}/v1/packages/${digest}`)).status).toBe(200);
  });

  it('publishing the same version again uploads again; a changed package under the same version is refused', async () => {
    const again = await cli(runDServiceFromArgs, ['publish', '--dir', pkgDir, '--session', 'owner.json']);
    expect(again.code, again.err).toBe(0);
    expect(again.err).toContain('registered before with this digest');
    writeFileSync(join(pkgDir, 'extra.js'), 'export {}\n');
    const changed = await cli(runDServiceFromArgs, ['publish', '--dir', pkgDir, '--session', 'owner.json']);
    expect(changed.code).toBe(1);
    expect(changed.err).toMatch(/give the changed package a new version/);
    rmSync(join(pkgDir, 'extra.js'));
  });

  it('refuses an upload whose digest is not the registered one, an unsafe archive, and a stranger', async () => {
    const other = join(dir, 'other');
    cpSync(pkgDir, other, { recursive: true });
    writeFileSync(join(other, 'extra.js'), 'export {}\n');
    const wrong = await packToBuffer(other);
    const put = (client: TestClient, body: Buffer) =>
      fetch(`${c.url}/v1/dservices/echo-pub/1.0.0/package`, { method: 'PUT', body, headers: { authorization: `Bearer ${client.token}`, 'content-type': 'application/gzip' } });
    const mismatch = await put(owner, wrong.archive);
    expect(mismatch.status).toBe(409);
    expect(((await mismatch.json()) as { detail: string }).detail).toMatch(/not the registered/);
    const garbage = await put(owner, gzipSync(Buffer.from('not a tar at all, just bytes')));
    expect(garbage.status).toBe(400);

    await c.admin.call('POST', '/v1/accounts', { name: 'other-co', kinds: ['developer'], owner: { login: 'other-owner', password: 'Oth3r-Owner-Pw!x' } });
    const stranger = await c.login('other-owner', 'Oth3r-Owner-Pw!x');
    const right = await packToBuffer(pkgDir);
    expect((await put(stranger, right.archive)).status).toBe(403);
    // Over the bound: refused on its declared length, before the body is read.
    const huge = await new Promise<number>((resolveStatus, reject) => {
      const u = new URL(`${c.url}/v1/dservices/echo-pub/1.0.0/package`);
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PUT', headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/gzip', 'content-length': String(65 * 1024 * 1024) } }, (res) => {
        res.resume();
        resolveStatus(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write(Buffer.alloc(1024));
    });
    expect(huge).toBe(413);
    const anonymous = await fetch(`${c.url}/v1/dservices/echo-pub/1.0.0/package`, { method: 'PUT', body: right.archive, headers: { 'content-type': 'application/gzip' } });
    expect(anonymous.status).toBe(401);
  });
});
