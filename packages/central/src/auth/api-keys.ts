/**
 * API keys: `cgn_` + base64url(24 random bytes) = 192 bits, the format the node already uses.
 * Stored as SHA-256 hex (a key has far too much entropy for a fast hash to matter); shown once;
 * the first ten characters (`cgn_` + 6) are kept to show which key is which.
 *
 * Scopes: `work` (send work to any approved DService), `work:<dservice>` (only that one),
 * `select` (ask central for nodes), `token` (exchange for OAuth2 access tokens). A key with no
 * scopes given gets `work`, `select` and `token`.
 */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../ids.js';

export const API_KEY_PREFIX = 'cgn_';
export const API_KEY_RANDOM_BYTES = 24;
export const DEFAULT_KEY_SCOPES = ['work', 'select', 'token'] as const;
export const SCOPE_PATTERN = '^(work|select|token|work:[a-z][a-z0-9-]{0,62})$';
const SCOPE_RE = new RegExp(SCOPE_PATTERN);

export function isValidScope(s: string): boolean {
  return SCOPE_RE.test(s);
}

export function hashApiKey(key: string): string {
  return sha256Hex(key);
}

export function newApiKeySecret(): { key: string; hash: string; prefix: string } {
  const key = API_KEY_PREFIX + randomBytes(API_KEY_RANDOM_BYTES).toString('base64url');
  return { key, hash: hashApiKey(key), prefix: key.slice(0, API_KEY_PREFIX.length + 6) };
}

/** Shape check before any lookup: prefix, length and alphabet. */
export function looksLikeApiKey(key: string): boolean {
  return key.length === API_KEY_PREFIX.length + 32 && key.startsWith(API_KEY_PREFIX) && /^[A-Za-z0-9_-]+$/.test(key.slice(API_KEY_PREFIX.length));
}

/** Whether scopes allow sending work to a DService. */
export function scopesAllowWork(scopes: readonly string[], dservice: string): boolean {
  return scopes.includes('work') || scopes.includes(`work:${dservice}`);
}
