/**
 * The miner's cache of unpacked DService packages, one directory per digest
 * (`<cacheDir>/<digest>`), within a byte budget (`--package-cache-mb`). A package is unpacked
 * into a temporary directory, checked against its digest, given a `node_modules` link to the
 * miner's own dependencies (a package carries only its own code; the digest skips
 * `node_modules`), and only then renamed into place, so a directory named by a digest always
 * holds that digest's files. Directories left by an earlier run are checked again before use.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { digestPackage } from './digest.js';
import { unpackArchive } from './package-archive.js';
import { evictions, type CachedPackage } from './package-cache-budget.js';
import type { Log } from './log.js';

const DIGEST = /^[0-9a-f]{64}$/;

/** The `node_modules` directory the miner itself runs from (the one holding `@cgn/sdk`), or null. */
export function runtimeNodeModules(from: string = dirname(fileURLToPath(import.meta.url))): string | null {
  for (let d = from; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', '@cgn', 'sdk'))) return join(d, 'node_modules');
    if (dirname(d) === d) return null;
  }
}

function treeBytes(dir: string): number {
  let n = 0;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (d.name === 'node_modules' && d.isSymbolicLink()) continue;
    const p = join(dir, d.name);
    if (d.isDirectory()) n += treeBytes(p);
    else if (d.isFile()) n += statSync(p).size;
  }
  return n;
}

export interface PackageCacheOptions {
  dir: string;
  budgetBytes: number;
  log: Log;
  /** Where the packages' bare imports resolve; default the miner's own node_modules. */
  nodeModules?: string | null;
  now?: () => number;
}

interface Entry extends CachedPackage {
  /** Checked against its digest since this process started. */
  verified: boolean;
}

export class PackageCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<string>>();
  /** Digests being acquired now, and by how many callers: never trimmed meanwhile. */
  private readonly acquiring = new Map<string, number>();
  private readonly now: () => number;
  private readonly nodeModules: string | null;

  constructor(private readonly o: PackageCacheOptions) {
    this.now = o.now ?? (() => performance.now());
    this.nodeModules = o.nodeModules === undefined ? runtimeNodeModules() : o.nodeModules;
  }

  /** Reads what an earlier run left (sizes only; digests are checked on first use). */
  async open(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    for (const d of readdirSync(this.o.dir, { withFileTypes: true })) {
      const p = join(this.o.dir, d.name);
      if (d.isDirectory() && DIGEST.test(d.name)) {
        this.entries.set(d.name, { digest: d.name, bytes: treeBytes(p), lastUsed: statSync(p).mtimeMs - Date.now() + this.now(), inUse: 0, verified: false });
      } else {
        rmSync(p, { recursive: true, force: true }); // a half-unpacked download of a run that died
      }
    }
    await this.trim();
  }

  get dir(): string {
    return this.o.dir;
  }

  has(digest: string): boolean {
    return this.entries.has(digest);
  }

  /** Total bytes of the cached packages. */
  get bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  list(): CachedPackage[] {
    return [...this.entries.values()].map(({ digest, bytes, lastUsed, inUse }) => ({ digest, bytes, lastUsed, inUse }));
  }

  /**
   * The directory of package `digest`, marked in use: from the cache, or unpacked from
   * `download()` (checked against the digest). `fetched` says whether it was downloaded.
   */
  async acquire(digest: string, download: () => Promise<Readable>): Promise<{ dir: string; fetched: boolean }> {
    if (!DIGEST.test(digest)) throw new Error(`"${digest.slice(0, 80)}" is not a package digest`);
    // Held from the first await: a trim meanwhile (another instance's release) must not remove it.
    this.acquiring.set(digest, (this.acquiring.get(digest) ?? 0) + 1);
    try {
      return await this.acquireHeld(digest, download);
    } finally {
      const n = this.acquiring.get(digest)! - 1;
      if (n === 0) this.acquiring.delete(digest);
      else this.acquiring.set(digest, n);
    }
  }

  private async acquireHeld(digest: string, download: () => Promise<Readable>): Promise<{ dir: string; fetched: boolean }> {
    const dir = join(this.o.dir, digest);
    let fetched = false;
    const cached = this.entries.get(digest);
    if (cached !== undefined && !cached.verified) {
      if ((await digestPackage(dir).catch(() => null)) === digest) cached.verified = true;
      else {
        this.o.log.warn({ digest }, 'a cached package no longer matches its digest; fetching it again');
        this.entries.delete(digest);
        await rm(dir, { recursive: true, force: true });
      }
    }
    if (!this.entries.has(digest)) {
      let loading = this.loading.get(digest);
      if (loading === undefined) {
        fetched = true;
        loading = this.load(digest, dir, download).finally(() => this.loading.delete(digest));
        this.loading.set(digest, loading);
      }
      await loading;
    }
    const e = this.entries.get(digest)!;
    e.inUse++;
    e.lastUsed = this.now();
    return { dir, fetched };
  }

  private async load(digest: string, dir: string, download: () => Promise<Readable>): Promise<string> {
    const tmp = join(this.o.dir, `.tmp-${digest.slice(0, 16)}-${randomBytes(4).toString('hex')}`);
    const summary = await unpackArchive(await download(), tmp, { expectedDigest: digest });
    try {
      if (this.nodeModules !== null) await symlink(this.nodeModules, join(tmp, 'node_modules'));
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    this.entries.set(digest, { digest, bytes: summary.unpackedBytes, lastUsed: this.now(), inUse: 0, verified: true });
    this.o.log.info({ digest, files: summary.files, bytes: summary.unpackedBytes, archiveBytes: summary.sizeBytes }, 'package fetched, checked and unpacked');
    return dir;
  }

  /** An instance of `digest` stopped; the cache is trimmed to its budget. */
  async release(digest: string): Promise<void> {
    const e = this.entries.get(digest);
    if (e !== undefined) {
      e.inUse = Math.max(0, e.inUse - 1);
      e.lastUsed = this.now();
    }
    await this.trim();
  }

  /** Removes packages not in use, least recently used first, until the cache fits its budget. */
  async trim(): Promise<string[]> {
    const gone = evictions(this.list().map((p) => (this.acquiring.has(p.digest) ? { ...p, inUse: p.inUse + 1 } : p)), this.o.budgetBytes);
    for (const digest of gone) {
      this.entries.delete(digest);
      await rm(join(this.o.dir, digest), { recursive: true, force: true });
      this.o.log.info({ digest, budgetBytes: this.o.budgetBytes }, 'package removed from the cache (over budget, not in use)');
    }
    return gone;
  }
}
