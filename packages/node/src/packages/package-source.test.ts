/**
 * The node's package route serves an archive only on a live grant of that digest, the one a
 * `place` frame carried: a stranger, a used-up, revoked, expired or other digest's grant is 403
 * with the reason (before grants, anyone reaching the miner endpoint could stream the archives).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { PackageSource, type PackageInfo } from './package-source.js';
import { PackageGrants } from './package-grants.js';

const ECHO = join(dirname(fileURLToPath(import.meta.url)), '../../../../dservices/echo');

describe('package route grants', () => {
  let clock = 0;
  const dir = mkdtempSync(join(tmpdir(), 'cgn-pkg-src-'));
  const source = new PackageSource({ dir, log: pino({ level: 'silent' }), now: () => clock, grants: { maxUses: 2, ttlMs: 60_000 } });
  let server: Server;
  let base = '';
  let echo: PackageInfo;

  beforeAll(async () => {
    [echo] = (await source.addLocal([{ dir: ECHO, name: 'echo', version: '0.1.0' }])) as [PackageInfo];
    server = createServer((req, res) => {
      if (!source.handle(req, res)) res.writeHead(426).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, type: res.headers.get('content-type'), body, problem: res.status >= 400 ? (JSON.parse(body.toString()) as { code: string; detail: string }) : null };
  };

  it('refuses a download without a grant, with the reason', async () => {
    const r = await get(echo.packagePath);
    expect(r.status).toBe(403);
    expect(r.type).toBe('application/problem+json');
    expect(r.problem).toMatchObject({ code: 'forbidden' });
    expect(r.problem!.detail).toMatch(/only to miners this node placed them on/);
    expect((await get(`${echo.packagePath}?grant=${'ab'.repeat(24)}`)).problem!.detail).toMatch(/unknown or expired/);
    expect(source.counters.served).toBe(0);
  });

  it('serves the archive on a placement\'s grant, as many times as it allows', async () => {
    const path = source.grant('miner-a', 'inst-1', echo);
    expect(path.startsWith(`${echo.packagePath}?grant=`)).toBe(true);
    const a = await get(path);
    expect(a.status).toBe(200);
    expect(a.body.length).toBe(echo.sizeBytes);
    expect((await get(path)).status).toBe(200);
    const third = await get(path);
    expect(third.status).toBe(403);
    expect(third.problem!.detail).toMatch(/2 downloads are used up/);
  });

  it('a grant is for its digest only, ends with its placement, and expires', async () => {
    const path = source.grant('miner-a', 'inst-2', echo);
    const token = new URL(path, base).searchParams.get('grant')!;
    expect((await get(`/v1/packages/${'0'.repeat(64)}?grant=${token}`)).problem!.detail).toMatch(/is for package/);
    // Another miner's placed frame cannot end it; its own miner's can.
    source.revoke('inst-2', 'miner-b');
    expect((await get(path)).status).toBe(200);
    source.revoke('inst-2', 'miner-a');
    expect((await get(path)).status).toBe(403);
    const later = source.grant('miner-a', 'inst-3', echo);
    clock += 60_000;
    expect((await get(later)).problem!.detail).toMatch(/unknown or expired/);
  });
});

describe('PackageGrants bounds', () => {
  it('holds at most maxGrants (the oldest go), one per instance, and forgets expired ones', () => {
    let now = 0;
    const g = new PackageGrants(() => now, { maxGrants: 5, ttlMs: 100 });
    const tokens = Array.from({ length: 8 }, (_, i) => g.issue('m', 'd', `i${i}`));
    expect(g.size).toBe(5);
    expect(g.use('d', tokens[0]!).ok).toBe(false);
    expect(g.use('d', tokens[7]!).ok).toBe(true);
    g.issue('m', 'd', 'i7');
    expect(g.size).toBe(5);
    expect(g.use('d', tokens[7]!).ok).toBe(false);
    now = 100;
    g.issue('m', 'd', 'fresh');
    expect(g.size).toBe(1);
  });
});
