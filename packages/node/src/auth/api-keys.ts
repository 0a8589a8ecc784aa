/**
 * API keys the node accepts. Keys are random (192 bits), prefixed `cgn_` so they are
 * recognisable, and stored only as SHA-256 hashes. Until the Central Service lands the node
 * reads them from a JSON file; `ApiKeyVerifier` is the seam where central plugs in.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Principal {
  account: string;
  keyId: string;
  /** What the key may do (`work`, `work:<dservice>`, ...); absent means unrestricted. */
  scopes?: string[];
  /** The end user the key acts for, if any. */
  endUser?: string | null;
}

export interface ApiKeyVerifier {
  /** The principal for a presented key from what is known now (a cache), or null. */
  verify(key: string): Principal | null;
  /**
   * The slow path on a miss (asking central). `unavailable` means nobody could say: the node
   * answers 503 rather than 401.
   */
  lookup?(key: string): Promise<{ principal: Principal | null; from: string }>;
}

/** Whether a principal may send work to a DService. */
export function mayRunWork(p: Principal, dservice: string): boolean {
  return p.scopes === undefined || p.scopes.includes('work') || p.scopes.includes(`work:${dservice}`);
}

export interface StoredKey {
  id: string;
  hash: string;
  account: string;
  createdAt: string;
}

export const API_KEY_PREFIX = 'cgn_';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function newApiKey(): { key: string; id: string; hash: string } {
  const key = API_KEY_PREFIX + randomBytes(24).toString('base64url');
  return { key, id: key.slice(0, API_KEY_PREFIX.length + 6), hash: hashApiKey(key) };
}

/** Keys held in memory, loaded from (and saved to) a JSON file `{ "keys": StoredKey[] }`. */
export class FileApiKeyStore implements ApiKeyVerifier {
  private byHash = new Map<string, StoredKey>();

  constructor(private readonly path: string | null) {
    if (path !== null && existsSync(path)) this.load();
  }

  load(): void {
    if (this.path === null) return;
    const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as { keys?: StoredKey[] };
    if (!Array.isArray(parsed.keys)) throw new Error(`${this.path}: expected { "keys": [...] }`);
    this.byHash = new Map(parsed.keys.map((k) => [k.hash, k]));
  }

  /** Creates a key for an account, saves it, and returns the key itself (shown once). */
  create(account: string): { key: string; id: string } {
    const k = newApiKey();
    this.byHash.set(k.hash, { id: k.id, hash: k.hash, account, createdAt: new Date().toISOString() });
    this.save();
    return { key: k.key, id: k.id };
  }

  verify(key: string): Principal | null {
    if (!key.startsWith(API_KEY_PREFIX) || key.length > 200) return null;
    const k = this.byHash.get(hashApiKey(key));
    return k === undefined ? null : { account: k.account, keyId: k.id };
  }

  private save(): void {
    if (this.path === null) return;
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileSync(this.path, JSON.stringify({ keys: [...this.byHash.values()] }, null, 2) + '\n', { mode: 0o600 });
  }
}
