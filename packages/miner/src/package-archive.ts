/**
 * DService package archives: a gzip'd tar of exactly the files the package digest covers
 * (`digest.ts`), in the digest's order, so the digest can be computed from the archive as it
 * streams past, before anything touches a disk.
 *
 * Archives come from strangers (a developer's upload at central, a node's answer to a miner), so
 * reading one refuses: absolute paths, `.` / `..` components, entries below a symbolic link,
 * links whose target leaves the package, hard links, devices and fifos, files the digest would
 * skip (`node_modules`, tests, maps), entries out of order or twice, and more than the size and
 * file-count bounds. Every refusal is a `CgnError` whose `details.reason` names the rule.
 *
 * ```ts
 * const { digest, sizeBytes } = await packToFile('dservices/echo', '/tmp/echo.tgz');
 * await unpackArchive(createReadStream('/tmp/echo.tgz'), '/cache/echo', { expectedDigest: digest });
 * ```
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readlink, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { CgnError, LIMITS } from '@cgn/protocol';
import { digestFiles, digestPackage, isDigestExcluded } from './digest.js';

export interface ArchiveLimits {
  /** Largest archive (compressed) read, bytes. Default `LIMITS.maxPackageBytes` (64 MiB). */
  maxArchiveBytes: number;
  /** Largest sum of the files' sizes, bytes. Default 256 MiB. */
  maxUnpackedBytes: number;
  /** Most entries (files, links, directories). Default 10,000. */
  maxEntries: number;
}

export const ARCHIVE_LIMITS: ArchiveLimits = {
  maxArchiveBytes: LIMITS.maxPackageBytes,
  maxUnpackedBytes: 256 * 1024 * 1024,
  maxEntries: 10_000,
};

const MAX_PATH_BYTES = 1024;
const SKIP_DIRS = new Set(['node_modules', '.git']);

/** What an archive holds, as read. */
export interface ArchiveSummary {
  /** The package digest of the files (equal to `digestPackage` of the unpacked directory). */
  digest: string;
  /** Compressed bytes read. */
  sizeBytes: number;
  files: number;
  unpackedBytes: number;
}

function refuse(reason: string, message: string, code: 'bad_request' | 'payload_too_large' = 'bad_request'): CgnError {
  return new CgnError(code, `package archive refused: ${message}`, { details: { reason } });
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The digest framing of `digest.ts`, fed entry by entry. */
class PackageHasher {
  private readonly hash: Hash = createHash('sha256').update('cgn-dservice-digest-v1\0');

  file(rel: string, size: number): void {
    this.hash.update(rel);
    this.hash.update('\0F');
    this.hash.update(len8(size));
  }

  chunk(b: Uint8Array): void {
    this.hash.update(b);
  }

  link(rel: string, target: string): void {
    const t = Buffer.from(target);
    this.hash.update(rel);
    this.hash.update('\0L');
    this.hash.update(len8(t.length));
    this.hash.update(t);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

function len8(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** Checks an entry path: relative, canonical, no parent steps, nothing the digest skips. */
function checkPath(name: string, isDir: boolean): string {
  const rel = isDir ? name.replace(/\/+$/, '') : name;
  if (rel.length === 0) throw refuse('bad_path', 'an entry has an empty path');
  if (Buffer.byteLength(rel) > MAX_PATH_BYTES) throw refuse('bad_path', `an entry path is longer than ${MAX_PATH_BYTES} bytes`);
  if (rel.includes('\0') || rel.includes('\\')) throw refuse('bad_path', `entry "${rel.slice(0, 100)}" has a NUL or a backslash in its path`);
  if (rel.startsWith('/')) throw refuse('absolute_path', `entry "${rel.slice(0, 100)}" has an absolute path`);
  const parts = rel.split('/');
  for (const p of parts) {
    if (p === '..') throw refuse('path_traversal', `entry "${rel.slice(0, 100)}" steps out of the package (..)`);
    if (p === '' || p === '.') throw refuse('bad_path', `entry "${rel.slice(0, 100)}" is not a canonical relative path`);
    if (SKIP_DIRS.has(p)) throw refuse('excluded_path', `entry "${rel.slice(0, 100)}" is inside ${p}, which a package does not carry`);
  }
  if (!isDir && isDigestExcluded(parts[parts.length - 1]!)) throw refuse('excluded_path', `entry "${rel.slice(0, 100)}" is a file the package digest skips (tests, maps, build info)`);
  return rel;
}

function checkLinkTarget(rel: string, target: string): void {
  if (target.length === 0 || Buffer.byteLength(target) > MAX_PATH_BYTES || target.includes('\0')) throw refuse('bad_link', `symbolic link "${rel.slice(0, 100)}" has an empty, over-long or NUL target`);
  if (target.startsWith('/')) throw refuse('link_escape', `symbolic link "${rel.slice(0, 100)}" points to an absolute path`);
  // Canonical: only leading "..", then names. The kernel resolves ".." after a link's target, not
  // after its text, so "b/up/.." is not "b" when b/up is itself a link.
  let names = false;
  for (const seg of target.split('/')) {
    if (seg === '..' && !names) continue;
    if (seg === '' || seg === '.' || seg === '..') throw refuse('bad_link', `symbolic link "${rel.slice(0, 100)}" has a target that is not canonical (only leading "..", then names)`);
    names = true;
  }
  const resolved = posix.normalize(posix.join(posix.dirname(rel), target));
  if (resolved === '..' || resolved.startsWith('../')) throw refuse('link_escape', `symbolic link "${rel.slice(0, 100)}" points out of the package`);
}

/** Where a link's target lies, relative to the package root ('.' for the root itself). */
const linkDestination = (rel: string, target: string): string => posix.normalize(posix.join(posix.dirname(rel), target));

/**
 * No link may point at or through another link: each link's target was checked by its text, which
 * is what the kernel follows only while no link lies on the way.
 */
function checkLinkChains(links: ReadonlyMap<string, string>): void {
  for (const [rel, target] of links) {
    const dest = linkDestination(rel, target);
    if (dest === '.') continue;
    const parts = dest.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const via = parts.slice(0, i).join('/');
      if (links.has(via)) throw refuse('link_escape', `symbolic link "${rel.slice(0, 100)}" points through the symbolic link ${via.slice(0, 100)}`);
    }
  }
}

/** Where unpacked entries go; absent: the archive is only checked and digested. */
interface Sink {
  dir(rel: string): Promise<void>;
  file(rel: string, mode: number): Promise<Writable>;
  link(rel: string, target: string): Promise<void>;
}

async function readArchive(source: Readable, limits: ArchiveLimits, sink: Sink | null): Promise<ArchiveSummary> {
  let sizeBytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sizeBytes += chunk.length;
      if (sizeBytes > limits.maxArchiveBytes) cb(refuse('too_large', `the archive is larger than ${limits.maxArchiveBytes} bytes`, 'payload_too_large'));
      else cb(null, chunk);
    },
  });
  // A gzip bomb stops here: tar headers and padding take little beyond the files themselves.
  let inflated = 0;
  const inflateCap = limits.maxUnpackedBytes + (limits.maxEntries + 2) * 1536;
  const inflateCounter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      inflated += chunk.length;
      if (inflated > inflateCap) cb(refuse('too_large', `the archive unpacks to more than ${limits.maxUnpackedBytes} bytes`, 'payload_too_large'));
      else cb(null, chunk);
    },
  });
  const ex = extract();
  const feeding = pipeline(source, counter, createGunzip(), inflateCounter, ex);
  const hasher = new PackageHasher();
  let files = 0;
  let entries = 0;
  let unpackedBytes = 0;
  let last: string | null = null;
  const links = new Map<string, string>();
  const reading = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      if (++entries > limits.maxEntries) throw refuse('too_many_files', `the archive has more than ${limits.maxEntries} entries`, 'payload_too_large');
      const type = h.type ?? 'file';
      if (type !== 'file' && type !== 'symlink' && type !== 'directory') {
        throw refuse('bad_entry_type', `entry "${h.name.slice(0, 100)}" is a ${type}; a package holds only files, directories and symbolic links`);
      }
      const rel = checkPath(h.name, type === 'directory');
      // Nothing may be written through a link: no entry below one.
      const parts = rel.split('/');
      for (let i = 1; i < parts.length; i++) {
        if (links.has(parts.slice(0, i).join('/'))) throw refuse('link_escape', `entry "${rel.slice(0, 100)}" lies below the symbolic link ${parts.slice(0, i).join('/')}`);
      }
      if (type === 'directory') {
        await sink?.dir(rel);
        entry.resume();
        continue;
      }
      // Files and links in the digest's order, each once: the streamed digest is the package's.
      if (last !== null && compareBytes(last, rel) >= 0) throw refuse('bad_order', `entry "${rel.slice(0, 100)}" is out of order or repeated (entries go in byte order of their paths)`);
      last = rel;
      files++;
      if (type === 'symlink') {
        const target = h.linkname ?? '';
        checkLinkTarget(rel, target);
        links.set(rel, target);
        hasher.link(rel, target);
        await sink?.link(rel, target);
        entry.resume();
        continue;
      }
      const size = h.size ?? 0;
      unpackedBytes += size;
      if (unpackedBytes > limits.maxUnpackedBytes) throw refuse('too_large', `the archive unpacks to more than ${limits.maxUnpackedBytes} bytes`, 'payload_too_large');
      hasher.file(rel, size);
      const out = sink === null ? null : await sink.file(rel, (h.mode ?? 0o644) & 0o111 ? 0o755 : 0o644);
      let seen = 0;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        seen += chunk.length;
        hasher.chunk(chunk);
        if (out !== null && !out.write(chunk)) await new Promise<void>((r) => out.once('drain', r));
      }
      if (out !== null) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      if (seen !== size) throw refuse('truncated', `entry "${rel.slice(0, 100)}" is cut short`);
    }
    checkLinkChains(links);
  })();
  try {
    await Promise.all([reading, feeding]);
  } catch (err) {
    ex.destroy();
    source.destroy();
    await Promise.allSettled([reading, feeding]);
    if (err instanceof CgnError) throw err;
    throw refuse('not_an_archive', `not a readable gzip'd tar: ${(err as Error).message}`);
  }
  return { digest: hasher.digest(), sizeBytes, files, unpackedBytes };
}

/** Reads an archive without writing anything: its digest and sizes, or a refusal. */
export function inspectArchive(source: Readable, limits: Partial<ArchiveLimits> = {}): Promise<ArchiveSummary> {
  return readArchive(source, { ...ARCHIVE_LIMITS, ...limits }, null);
}

/**
 * Unpacks an archive into `dest` (which must not exist yet: it is created), checking it as it
 * goes. When the digest of the unpacked tree is not `expectedDigest`, or anything is refused,
 * `dest` is removed and the error thrown.
 */
export async function unpackArchive(
  source: Readable,
  dest: string,
  opts: { expectedDigest?: string; limits?: Partial<ArchiveLimits> } = {},
): Promise<ArchiveSummary> {
  await mkdir(dirname(dest), { recursive: true });
  await mkdir(dest); // fails if it exists: nothing is ever unpacked over something else
  const sink: Sink = {
    dir: async (rel) => void (await mkdir(join(dest, rel), { recursive: true, mode: 0o755 })),
    file: async (rel, mode) => {
      const path = join(dest, rel);
      await mkdir(dirname(path), { recursive: true, mode: 0o755 });
      const fh = await open(path, 'wx', mode);
      return fh.createWriteStream();
    },
    link: async (rel, target) => {
      const path = join(dest, rel);
      await mkdir(dirname(path), { recursive: true, mode: 0o755 });
      await symlink(target, path);
    },
  };
  try {
    const summary = await readArchive(source, { ...ARCHIVE_LIMITS, ...opts.limits }, sink);
    if (opts.expectedDigest !== undefined && summary.digest !== opts.expectedDigest) {
      throw refuse('digest_mismatch', `its digest is ${summary.digest}, not the expected ${opts.expectedDigest}`);
    }
    // The tree on disk, hashed as a miner hashes a --dservice directory, must say the same.
    const onDisk = await digestPackage(dest);
    if (onDisk !== summary.digest) throw refuse('digest_mismatch', `the unpacked files hash to ${onDisk}, not the archive's ${summary.digest}`);
    return summary;
  } catch (err) {
    await rm(dest, { recursive: true, force: true });
    throw err;
  }
}

/** What packing a directory made. */
export interface PackResult {
  digest: string;
  /** Bytes of the archive. */
  sizeBytes: number;
  files: number;
  unpackedBytes: number;
}

/**
 * Packs the files of `dir` that its digest covers into a gzip'd tar written to `out`, in the
 * digest's order, with fixed times and owners (the same directory packs to the same bytes).
 */
export async function packDirectory(dir: string, out: Writable): Promise<PackResult> {
  const rels = await digestFiles(dir);
  const hasher = new PackageHasher();
  const p = pack();
  let sizeBytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sizeBytes += chunk.length;
      cb(null, chunk);
    },
  });
  const writing = pipeline(p, createGzip({ level: 9 }), counter, out);
  let unpackedBytes = 0;
  const fixed = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };
  const adding = (async () => {
    for (const rel of rels) {
      const abs = join(dir, rel);
      const st = await lstat(abs);
      if (st.isSymbolicLink()) {
        const target = await readlink(abs);
        hasher.link(rel, target);
        await new Promise<void>((resolve, reject) => p.entry({ ...fixed, name: rel, type: 'symlink', linkname: target, mode: 0o777 }, (err) => (err ? reject(err) : resolve())));
        continue;
      }
      hasher.file(rel, st.size);
      unpackedBytes += st.size;
      const entry = p.entry({ ...fixed, name: rel, type: 'file', size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644 });
      const hashing = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hasher.chunk(chunk);
          cb(null, chunk);
        },
      });
      // The entry's size is fixed in its header: a file that changes while packed fails here.
      await pipeline(createReadStream(abs, { end: Math.max(0, st.size - 1), start: 0 }), hashing, entry);
    }
    p.finalize();
  })();
  try {
    await Promise.all([adding, writing]);
  } catch (err) {
    p.destroy();
    await Promise.allSettled([adding, writing]);
    throw err;
  }
  return { digest: hasher.digest(), sizeBytes, files: rels.length, unpackedBytes };
}

/** Packs `dir` into `file` (written beside it, then renamed into place). */
export async function packToFile(dir: string, file: string): Promise<PackResult> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.part`;
  try {
    const r = await packDirectory(dir, createWriteStream(tmp, { mode: 0o644 }));
    await rename(tmp, file);
    return r;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Packs `dir` into memory (a package is at most `LIMITS.maxPackageBytes`; larger is refused). */
export async function packToBuffer(dir: string, maxBytes: number = ARCHIVE_LIMITS.maxArchiveBytes): Promise<PackResult & { archive: Buffer }> {
  const chunks: Buffer[] = [];
  let n = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > maxBytes) return cb(refuse('too_large', `the package packs to more than ${maxBytes} bytes`, 'payload_too_large'));
      chunks.push(chunk);
      cb();
    },
  });
  const r = await packDirectory(dir, sink);
  return { ...r, archive: Buffer.concat(chunks) };
}
