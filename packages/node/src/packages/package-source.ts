/**
 * The DService packages this node hands to miners, served at `GET /v1/packages/<digest>` on the
 * miner endpoint (the tunnel's own host, port and TLS), by digest only.
 *
 * Two sources: DServices given to the node as local directories (`dservices: [dir]`) are packed
 * once at start; DServices central approved with an uploaded package are fetched from central
 * (over the node's link) the first time a miner asks, checked against their digest and kept in a
 * disk cache under `<dataDir>/packages`. Anything else is 404. An approved package is not secret
 * (it runs on strangers' machines), but serving one costs the node a read, maybe a fetch from
 * central, and up to 64 MiB of upload: only a miner this node placed the package on may have it,
 * with the grant its `place` frame carried (`package-grants.ts`); anyone else gets 403.
 *
 * For placement (issue 16): `lookup(name)` gives `{ digest, sizeBytes, packagePath }`, what a
 * `place` frame needs, for every DService the node can hand out now (central's approval wins over
 * a local directory of the same name).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { CgnError, LIMITS } from '@cgn/protocol';
import { inspectArchive, packToFile } from '@cgn/miner/packages';
import { sendProblem } from '../http/problem.js';
import type { Logger } from '../log.js';
import { GRANT_PARAM, PackageGrants, type GrantOptions } from './package-grants.js';

export interface PackageInfo {
  name: string;
  version: string;
  digest: string;
  /** Bytes of the archive (the `place` frame's sizeBytes). */
  sizeBytes: number;
  /** Where miners GET it on the miner endpoint. */
  packagePath: string;
}

/** A package central approved: its digest and archive size, fetched from central on demand. */
export interface ApprovedPackage {
  name: string;
  version: string;
  digest: string;
  sizeBytes: number;
}

export const PACKAGE_ROUTE = /^\/v1\/packages\/([0-9a-f]{64})$/;

export const packagePathOf = (digest: string): string => `/v1/packages/${digest}`;

export interface PackageSourceOptions {
  /** `<dataDir>/packages`: archives by digest. */
  dir: string;
  log: Logger;
  /** Reads an approved package's archive from central; null: no central. */
  fromCentral?: ((digest: string, sizeBytes: number) => Promise<Readable>) | null;
  grants?: Partial<GrantOptions>;
  /** Monotonic milliseconds, for grant lifetimes. Default performance.now. */
  now?: () => number;
}

export class PackageSource {
  private readonly local = new Map<string, PackageInfo>();
  private approved = new Map<string, PackageInfo>();
  private readonly fetching = new Map<string, Promise<void>>();
  readonly counters = { served: 0, notFound: 0, refused: 0, fetchedFromCentral: 0, centralFailures: 0 };
  readonly grants: PackageGrants;

  constructor(private readonly o: PackageSourceOptions) {
    this.grants = new PackageGrants(o.now ?? (() => performance.now()), o.grants);
  }

  /**
   * The `packagePath` of a `place` frame sending `ref` (one of this source's packages) to
   * `minerId` for `instanceId`: the package's path with a fresh grant.
   */
  grant(minerId: string, instanceId: string, ref: { digest: string; packagePath: string }): string {
    return `${ref.packagePath}?${GRANT_PARAM}=${this.grants.issue(minerId, ref.digest, instanceId)}`;
  }

  /** The placement ended: its download grant goes (with `minerId`: only if it is that miner's). */
  revoke(instanceId: string, minerId?: string): void {
    this.grants.revoke(instanceId, minerId);
  }

  /** Packs the local DService directories (once, at start); returns what each packed to. */
  async addLocal(dirs: readonly { dir: string; name: string; version: string }[]): Promise<PackageInfo[]> {
    await mkdir(this.o.dir, { recursive: true });
    const out: PackageInfo[] = [];
    for (const d of dirs) {
      const tmp = join(this.o.dir, `.local-${d.name}-${process.pid}.tgz`);
      const r = await packToFile(d.dir, tmp);
      if (r.sizeBytes > LIMITS.maxPackageBytes) {
        await rm(tmp, { force: true });
        this.o.log.warn({ dservice: d.name, sizeBytes: r.sizeBytes, max: LIMITS.maxPackageBytes }, 'local DService package is too large to hand to miners; it can only run where a miner has it');
        continue;
      }
      await rename(tmp, this.fileOf(r.digest));
      const info = { name: d.name, version: d.version, digest: r.digest, sizeBytes: r.sizeBytes, packagePath: packagePathOf(r.digest) };
      this.local.set(d.name, info);
      out.push(info);
      this.o.log.info({ dservice: d.name, digest: r.digest, sizeBytes: r.sizeBytes, files: r.files }, 'local DService packed for miners');
    }
    return out;
  }

  /** Central's approved list with packages (replaces the previous one). */
  setApproved(list: readonly ApprovedPackage[]): void {
    this.approved = new Map(list.map((p) => [p.name, { ...p, packagePath: packagePathOf(p.digest) }]));
  }

  /** What a `place` frame for `name` needs, or null when this node has no package for it. */
  lookup(name: string): PackageInfo | null {
    return this.approved.get(name) ?? this.local.get(name) ?? null;
  }

  /** The same as `lookup`, under the name the placement controller's `PackageSource` uses. */
  packageOf(name: string): PackageInfo | null {
    return this.lookup(name);
  }

  list(): PackageInfo[] {
    const byName = new Map(this.local);
    for (const [n, p] of this.approved) byName.set(n, p);
    return [...byName.values()];
  }

  private fileOf(digest: string): string {
    return join(this.o.dir, `${digest}.tgz`);
  }

  private known(digest: string): PackageInfo | null {
    for (const p of this.local.values()) if (p.digest === digest) return p;
    for (const p of this.approved.values()) if (p.digest === digest) return p;
    return null;
  }

  /** Answers `GET /v1/packages/<digest>`; returns false for any other request (not handled). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    if (!url.startsWith('/v1/packages/')) return false;
    req.resume();
    const q = url.indexOf('?');
    const m = PACKAGE_ROUTE.exec(q < 0 ? url : url.slice(0, q));
    if (req.method !== 'GET' || m === null) {
      this.counters.notFound++;
      sendProblem(res, new CgnError('not_found', 'packages are at GET /v1/packages/<sha256 hex digest>'));
      return true;
    }
    const digest = m[1]!;
    const granted = this.grants.use(digest, q < 0 ? null : new URLSearchParams(url.slice(q + 1)).get(GRANT_PARAM));
    if (!granted.ok) {
      this.counters.refused++;
      sendProblem(res, new CgnError('forbidden', granted.reason));
      return true;
    }
    const info = this.known(digest);
    if (info === null) {
      this.counters.notFound++;
      sendProblem(res, new CgnError('not_found', `no DService package with digest ${digest} here (only approved or local DServices' packages are served)`));
      return true;
    }
    void this.ensure(info)
      .then(
        () => this.send(res, digest),
        (err: unknown) => sendProblem(res, err instanceof CgnError ? err : new CgnError('dservice_unavailable', `package ${digest} cannot be had from central now: ${(err as Error).message}`, { retryable: true })),
      )
      // The file went away under the send (a cache cleared by hand): this answer is lost, the node is not.
      .catch(() => res.destroy());
    return true;
  }

  /** The archive is on disk: local ones always are, approved ones are fetched from central once. */
  private ensure(info: PackageInfo): Promise<void> {
    const file = this.fileOf(info.digest);
    if (existsSync(file)) return Promise.resolve();
    const from = this.o.fromCentral;
    if (from === null || from === undefined) return Promise.reject(new CgnError('not_found', `package ${info.digest} is not on this node`));
    let p = this.fetching.get(info.digest);
    if (p === undefined) {
      p = this.fetch(info, from).finally(() => this.fetching.delete(info.digest));
      this.fetching.set(info.digest, p);
    }
    return p;
  }

  private async fetch(info: PackageInfo, from: NonNullable<PackageSourceOptions['fromCentral']>): Promise<void> {
    await mkdir(this.o.dir, { recursive: true });
    const tmp = join(this.o.dir, `.central-${info.digest.slice(0, 16)}-${process.pid}-${Date.now()}.part`);
    try {
      await pipeline(await from(info.digest, info.sizeBytes), createWriteStream(tmp));
      const seen = await inspectArchive(createReadStream(tmp), { maxArchiveBytes: info.sizeBytes });
      if (seen.digest !== info.digest) throw new CgnError('miner_failed', `central's archive for ${info.name} has digest ${seen.digest}, not the approved ${info.digest}`);
      await rename(tmp, this.fileOf(info.digest));
      this.counters.fetchedFromCentral++;
      this.o.log.info({ dservice: info.name, digest: info.digest, sizeBytes: seen.sizeBytes }, 'package fetched from central and checked');
    } catch (err) {
      this.counters.centralFailures++;
      this.o.log.error({ dservice: info.name, digest: info.digest, err: (err as Error).message }, 'could not fetch the package from central');
      await rm(tmp, { force: true });
      throw err;
    }
  }

  private send(res: ServerResponse, digest: string): void {
    const file = this.fileOf(digest);
    const size = statSync(file).size;
    res.writeHead(200, {
      'content-type': 'application/gzip',
      'content-length': size,
      'cache-control': 'public, max-age=31536000, immutable',
      etag: `"${digest}"`,
    });
    this.counters.served++;
    createReadStream(file).on('error', () => res.destroy()).pipe(res);
  }
}

/**
 * Reads an approved package's archive from central over the node's link, in pieces
 * (`package` op), as a stream; an answer that does not fit (wrong total, empty piece, more than
 * announced) ends it with an error. The node checks the digest of what arrives.
 */
export function packageFromLink(request: (op: 'package', args: Record<string, unknown>, timeoutMs: number) => Promise<unknown>, timeoutMs = 30_000) {
  return async (digest: string, sizeBytes: number): Promise<Readable> => {
    async function* pieces(): AsyncGenerator<Buffer> {
      let offset = 0;
      while (offset < sizeBytes) {
        const r = (await request('package', { digest, offset }, timeoutMs)) as { data?: unknown; total?: unknown } | null;
        if (r === null || typeof r.data !== 'string' || r.total !== sizeBytes) throw new CgnError('miner_failed', `central's answer for package ${digest} at ${offset} is not a piece of a ${sizeBytes}-byte archive`);
        const piece = Buffer.from(r.data, 'base64');
        if (piece.length === 0 || offset + piece.length > sizeBytes) throw new CgnError('miner_failed', `central sent a piece of package ${digest} that does not fit (${piece.length} bytes at ${offset} of ${sizeBytes})`);
        offset += piece.length;
        yield piece;
      }
    }
    const { Readable: R } = await import('node:stream');
    return R.from(pieces());
  };
}
