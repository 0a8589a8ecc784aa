import { existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import fc from 'fast-check';
import { createLog } from './log.js';
import { packToBuffer } from './package-archive.js';
import { evictions, type CachedPackage } from './package-cache-budget.js';
import { PackageCache, runtimeNodeModules } from './package-cache.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'cgn-pkgcache-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const log = createLog(pino({ level: 'silent' }));

async function pkg(content: string, bytes: number): Promise<{ digest: string; archive: Buffer }> {
  const d = tmp();
  writeFileSync(join(d, 'dservice.json'), content);
  writeFileSync(join(d, 'blob'), Buffer.alloc(bytes, 1));
  const p = await packToBuffer(d);
  return { digest: p.digest, archive: p.archive };
}

describe('cache budget (pure)', () => {
  it('removes idle packages, least recently used first, until the rest fits; never one in use', () => {
    const e = (digest: string, bytes: number, lastUsed: number, inUse = 0): CachedPackage => ({ digest, bytes, lastUsed, inUse });
    expect(evictions([e('a', 10, 1), e('b', 10, 2), e('c', 10, 3)], 30)).toEqual([]);
    expect(evictions([e('a', 10, 1), e('b', 10, 2), e('c', 10, 3)], 15)).toEqual(['a', 'b']);
    expect(evictions([e('a', 10, 1, 1), e('b', 10, 2), e('c', 10, 3)], 15)).toEqual(['b', 'c']);
    expect(evictions([e('a', 10, 1, 1), e('b', 10, 2, 2)], 0)).toEqual([]);
  });

  it('after eviction the cache fits or only packages in use are left (property)', () => {
    const entry = fc.record({ digest: fc.stringMatching(/^[0-9a-f]{4}$/), bytes: fc.nat(1000), lastUsed: fc.nat(100), inUse: fc.nat(2) });
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: (x) => x.digest, maxLength: 12 }), fc.nat(5000), (entries, budget) => {
        const gone = new Set(evictions(entries, budget));
        const left = entries.filter((x) => !gone.has(x.digest));
        const total = left.reduce((s, x) => s + x.bytes, 0);
        for (const x of entries) if (x.inUse > 0) expect(gone.has(x.digest)).toBe(false);
        if (total > budget) expect(left.every((x) => x.inUse > 0)).toBe(true);
        // Whatever stays idle was used no earlier than whatever went.
        const lastGone = Math.max(-1, ...entries.filter((x) => gone.has(x.digest)).map((x) => x.lastUsed));
        for (const x of left) if (x.inUse === 0) expect(x.lastUsed).toBeGreaterThanOrEqual(lastGone);
      }),
    );
  });
});

describe('PackageCache', () => {
  it('downloads once, links node_modules, serves from the cache, and trims idle packages over budget', async () => {
    let t = 0;
    const dir = join(tmp(), 'cache');
    const cache = new PackageCache({ dir, budgetBytes: 150_000, log, now: () => ++t });
    await cache.open();
    const a = await pkg('{"a":1}', 100_000);
    const b = await pkg('{"b":1}', 100_000);
    let downloads = 0;
    const from = (archive: Buffer) => async () => (downloads++, Readable.from([archive]));

    const first = await cache.acquire(a.digest, from(a.archive));
    expect(first).toEqual({ dir: join(dir, a.digest), fetched: true });
    expect(lstatSync(join(first.dir, 'node_modules')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(first.dir, 'node_modules'))).toBe(runtimeNodeModules());
    const again = await cache.acquire(a.digest, from(a.archive));
    expect(again.fetched).toBe(false);
    expect(downloads).toBe(1);

    // b while a is in use: over budget, but nothing in use goes.
    await cache.acquire(b.digest, from(b.archive));
    expect(await cache.trim()).toEqual([]);
    await cache.release(a.digest);
    expect(cache.has(a.digest)).toBe(true); // a is still used by the second placement
    await cache.release(a.digest);
    expect(cache.has(a.digest)).toBe(false);
    expect(existsSync(join(dir, a.digest))).toBe(false);
    expect(cache.has(b.digest)).toBe(true);
  });

  it('never trims a package while it is being acquired (a release elsewhere meanwhile)', async () => {
    let t = 0;
    const dir = join(tmp(), 'cache');
    const cache = new PackageCache({ dir, budgetBytes: 150_000, log, now: () => ++t });
    await cache.open();
    const a = await pkg('{"a":2}', 100_000);
    const b = await pkg('{"b":2}', 100_000);
    await cache.acquire(a.digest, async () => Readable.from([a.archive]));
    await cache.release(a.digest); // a: cached, idle
    // b downloads while a is acquired again: a trim in between must leave a alone.
    let letDownloadGo!: () => void;
    const gate = new Promise<void>((r) => (letDownloadGo = r));
    const bAcquire = cache.acquire(b.digest, async () => (await gate, Readable.from([b.archive])));
    const aAcquire = cache.acquire(a.digest, async () => Readable.from([a.archive]));
    letDownloadGo();
    await bAcquire;
    expect(await cache.trim()).toEqual([]);
    expect(await aAcquire).toEqual({ dir: join(dir, a.digest), fetched: false });
    expect(existsSync(join(dir, a.digest, 'dservice.json'))).toBe(true);
  });

  it('refuses an archive whose digest is not the one asked for, leaving no directory', async () => {
    const dir = join(tmp(), 'cache');
    const cache = new PackageCache({ dir, budgetBytes: 1 << 30, log });
    await cache.open();
    const a = await pkg('{"a":1}', 10);
    const other = 'e'.repeat(64);
    await expect(cache.acquire(other, async () => Readable.from([a.archive]))).rejects.toThrow(/digest/);
    expect(cache.has(other)).toBe(false);
    expect(existsSync(join(dir, other))).toBe(false);
  });

  it('on open, keeps the packages of an earlier run, drops half-unpacked ones, and re-checks a tampered one before use', async () => {
    const dir = join(tmp(), 'cache');
    const a = await pkg('{"a":1}', 10);
    const c1 = new PackageCache({ dir, budgetBytes: 1 << 30, log });
    await c1.open();
    await c1.acquire(a.digest, async () => Readable.from([a.archive]));
    mkdirSync(join(dir, '.tmp-leftover'));
    writeFileSync(join(dir, a.digest, 'blob'), 'tampered');

    const c2 = new PackageCache({ dir, budgetBytes: 1 << 30, log });
    await c2.open();
    expect(existsSync(join(dir, '.tmp-leftover'))).toBe(false);
    expect(c2.has(a.digest)).toBe(true);
    const got = await c2.acquire(a.digest, async () => Readable.from([a.archive]));
    expect(got.fetched).toBe(true); // the tampered copy was dropped and fetched again
  });
});
