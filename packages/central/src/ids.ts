/** Random identifiers and secrets, and the hash under which secrets are stored. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A random id with a readable prefix: `acc_3k9...` (96 bits). */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

export function sha256Hex(s: string | Uint8Array): string {
  return createHash('sha256').update(s).digest('hex');
}

export function safeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A bearer secret: prefix + base64url of `bytes` random bytes (default 32 = 256 bits). */
export function newSecret(prefix: string, bytes = 32): string {
  return prefix + randomBytes(bytes).toString('base64url');
}
