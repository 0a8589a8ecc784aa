/**
 * The digest of a DService package: sha256 over its files, deterministic across machines.
 *
 * Files are taken in byte order of their relative paths (with `/` separators); for each one the
 * hash takes the path, a NUL, its size as 8 bytes big-endian and its contents, so no two
 * different packages frame into the same byte stream. Skipped: `node_modules` and `.git`
 * directories, test files (`*.test.*`), source maps (`*.map`) and TypeScript build info
 * (`*.tsbuildinfo`) — none of them changes what the package does. Symbolic links are hashed as
 * their target text, not followed.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

const SKIP_DIRS = new Set(['node_modules', '.git']);

/** Whether a file (by its base name) stays out of the digest. */
export function isDigestExcluded(name: string): boolean {
  return name.includes('.test.') || name.endsWith('.map') || name.endsWith('tsbuildinfo');
}

interface Entry {
  rel: string;
  abs: string;
  link: boolean;
}

async function walk(root: string, rel: string, out: Entry[]): Promise<void> {
  const dir = rel === '' ? root : join(root, rel);
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const r = rel === '' ? d.name : `${rel}/${d.name}`;
    if (d.isDirectory()) {
      if (!SKIP_DIRS.has(d.name)) await walk(root, r, out);
    } else if (d.isSymbolicLink()) {
      if (!isDigestExcluded(d.name) && !SKIP_DIRS.has(d.name)) out.push({ rel: r, abs: join(dir, d.name), link: true });
    } else if (d.isFile()) {
      if (!isDigestExcluded(d.name)) out.push({ rel: r, abs: join(dir, d.name), link: false });
    }
    // sockets, fifos, devices: not package content
  }
}

async function hashFile(hash: Hash, path: string, scratch: Buffer): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const len = Buffer.allocUnsafe(8);
    len.writeBigUInt64BE(BigInt(size));
    hash.update(len);
    let left = size;
    while (left > 0) {
      const { bytesRead } = await fh.read(scratch, 0, Math.min(scratch.length, left), null);
      if (bytesRead === 0) throw new Error(`${path} shrank while it was being hashed`);
      hash.update(scratch.subarray(0, bytesRead));
      left -= bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/** The files a digest covers, as sorted relative paths (for diagnostics). */
export async function digestFiles(dir: string): Promise<string[]> {
  const entries: Entry[] = [];
  await walk(dir, '', entries);
  return entries.map((e) => e.rel).sort(compareBytes);
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** sha256 hex digest of the package in `dir`. */
export async function digestPackage(dir: string): Promise<string> {
  const entries: Entry[] = [];
  await walk(dir, '', entries);
  entries.sort((a, b) => compareBytes(a.rel, b.rel));
  const hash = createHash('sha256');
  hash.update('cgn-dservice-digest-v1\0');
  const scratch = Buffer.allocUnsafe(64 * 1024);
  for (const e of entries) {
    hash.update(e.rel);
    hash.update(e.link ? '\0L' : '\0F');
    if (e.link) {
      const target = Buffer.from(await readlink(e.abs));
      const len = Buffer.allocUnsafe(8);
      len.writeBigUInt64BE(BigInt(target.length));
      hash.update(len);
      hash.update(target);
    } else {
      await hashFile(hash, e.abs, scratch);
    }
  }
  return hash.digest('hex');
}
