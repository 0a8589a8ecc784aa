/**
 * DService package archives at central, on disk by digest (`<dataDir>/packages/<digest>.tgz`).
 * An upload is written aside, bounded by `LIMITS.maxPackageBytes`, read back as an archive (the
 * same checks a miner makes: no traversal, no links out, no devices, size and file bounds) and
 * kept only when its digest is the registered descriptor's. With several central instances the
 * directory must be shared storage.
 *
 * The archive code lives in @cgn/miner (miners unpack what central stores); central loads it
 * lazily, as `cgn dservice register --dir` does, instead of depending on the miner package.
 */
import { createReadStream, createWriteStream, existsSync, statSync, type ReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LIMITS } from '@cgn/protocol';
import { CentralError } from '../errors.js';

const DIGEST = /^[0-9a-f]{64}$/;

interface ArchiveApi {
  inspectArchive(source: Readable, limits?: { maxArchiveBytes?: number }): Promise<{ digest: string; sizeBytes: number; files: number; unpackedBytes: number }>;
}

let archiveApi: Promise<ArchiveApi> | null = null;
function loadArchiveApi(): Promise<ArchiveApi> {
  const spec = '@cgn/miner';
  archiveApi ??= (import(spec) as Promise<Partial<ArchiveApi>>).then((m) => {
    if (typeof m.inspectArchive !== 'function') throw new Error('@cgn/miner has no inspectArchive');
    return m as ArchiveApi;
  });
  return archiveApi;
}

export interface StoredPackage {
  digest: string;
  sizeBytes: number;
}

export class PackageStore {
  constructor(
    readonly dir: string,
    private readonly maxBytes: number = LIMITS.maxPackageBytes,
  ) {}

  private fileOf(digest: string): string {
    return join(this.dir, `${digest}.tgz`);
  }

  /** The stored archive of `digest`, or null. */
  get(digest: string): StoredPackage | null {
    if (!DIGEST.test(digest)) return null;
    const f = this.fileOf(digest);
    if (!existsSync(f)) return null;
    return { digest, sizeBytes: statSync(f).size };
  }

  open(digest: string): ReadStream {
    return createReadStream(this.fileOf(digest));
  }

  /**
   * Stores an uploaded archive if its digest is `expected`; refuses (413) one over the size
   * bound, (400) one that is not a safe package archive, and (409) one of another digest.
   */
  async put(body: Readable, expected: string): Promise<StoredPackage & { files: number; unpackedBytes: number }> {
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.upload-${expected.slice(0, 16)}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.part`);
    const max = this.maxBytes;
    let n = 0;
    const bound = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        if (n > max) cb(new CentralError('payload_too_large', `a package archive is at most ${max} bytes`));
        else cb(null, chunk);
      },
    });
    try {
      await pipeline(body, bound, createWriteStream(tmp, { mode: 0o644 }));
      const { inspectArchive } = await loadArchiveApi();
      let seen;
      try {
        seen = await inspectArchive(createReadStream(tmp), { maxArchiveBytes: max });
      } catch (err) {
        throw new CentralError('bad_request', (err as Error).message, { details: (err as { details?: Record<string, unknown> }).details ?? {} });
      }
      if (seen.digest !== expected) {
        throw new CentralError('conflict', `the archive's digest is ${seen.digest}, not the registered ${expected}: register the version with this package's digest, or upload the package that was registered`);
      }
      await rename(tmp, this.fileOf(expected));
      return { digest: expected, sizeBytes: seen.sizeBytes, files: seen.files, unpackedBytes: seen.unpackedBytes };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** `length` bytes of the archive from `offset` (the node link fetches archives in pieces). */
  async slice(digest: string, offset: number, length: number): Promise<Buffer> {
    const fh = await open(this.fileOf(digest), 'r');
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
}
