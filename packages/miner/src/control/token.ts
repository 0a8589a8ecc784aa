/**
 * The control app's local token: 32 random bytes (base64url) in a 0600 file next to the miner's
 * key, made on first start. Whoever can read that file (the machine's owner) may drive the miner.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const TOKEN_RE = /^[A-Za-z0-9_-]{32,128}$/;

export class ControlTokenError extends Error {
  constructor(readonly file: string, message: string) {
    super(`control token ${file}: ${message}`);
    this.name = 'ControlTokenError';
  }
}

/** The token file of a miner: `<key file>.control-token`. */
export function tokenFileFor(keyFile: string): string {
  return `${keyFile}.control-token`;
}

/**
 * Reads the token, or makes one (mode 0600) if the file is missing. A file others may read has
 * its mode narrowed to 0600; a file that holds no token is an error, not silently replaced (the
 * owner may have put it there).
 */
export function loadOrCreateToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ControlTokenError(file, `cannot read it: ${(err as Error).message}`);
    const token = randomBytes(32).toString('base64url');
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      // Another miner process made it first: use theirs.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateToken(file);
      throw new ControlTokenError(file, `cannot create it: ${(e as Error).message}`);
    }
    return token;
  }
  const token = text.trim();
  if (!TOKEN_RE.test(token)) throw new ControlTokenError(file, 'holds no token (32 to 128 characters of A-Z a-z 0-9 _ -); delete it to make a new one');
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  return token;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Whether `presented` is the token, in time that does not depend on where they differ (both are
 * hashed first, so the lengths do not leak either).
 */
export function tokenMatches(expected: string, presented: string | null | undefined): boolean {
  if (typeof presented !== 'string' || presented.length === 0 || presented.length > 512) return false;
  return timingSafeEqual(digest(expected), digest(presented));
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^Bearer ([\x21-\x7e]+)$/.exec(header.trim());
  return m === null ? null : m[1]!;
}
