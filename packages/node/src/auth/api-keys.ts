/**
 * API keys the node accepts. Keys are random (192 bits), prefixed `cgn_` so they are
 * recognisable, and stored only as SHA-256 hashes. Until the Central Service lands the node
 * reads them from a JSON file; `ApiKeyVerifier` is the seam where central plugs in.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
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

/**
 * One key in the file (`{ "keys": StoredKey[] }`, 0600): its id (the key's first characters, safe
 * to show), the SHA-256 of the key (the key itself is never stored), the account it bills.
 */
export interface StoredKey {
  id: string;
  hash: string;
  account: string;
  createdAt: string;
  /** A label for people (`cgn node keys add --name`). */
  name?: string;
  /** Set when revoked: the key is refused from then on, and kept for the record. */
  revokedAt?: string | null;
}

/** A key command that cannot be done as asked (an unknown id, say), with what would work. */
export class ApiKeyError extends Error {
  constructor(readonly code: 'unknown_key' | 'ambiguous_key' | 'bad_keys_file', message: string) {
    super(message);
  }
}

/** How often a verifying store looks whether the file changed (keys added or revoked by the CLI). */
const RELOAD_CHECK_MS = 1000;

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
  /** The file's mtime and size when last read, and when that was looked at. */
  private seen = '';
  private checkedAt = 0;

  constructor(private readonly path: string | null, private readonly now: () => number = Date.now) {
    if (path !== null && existsSync(path)) this.load();
  }

  load(): void {
    if (this.path === null) return;
    let parsed: { keys?: StoredKey[] };
    try {
      this.seen = this.stamp();
      parsed = JSON.parse(readFileSync(this.path, 'utf8')) as { keys?: StoredKey[] };
    } catch (err) {
      throw new ApiKeyError('bad_keys_file', `${this.path}: not a keys file (${(err as Error).message}); expected { "keys": [...] }`);
    }
    if (!Array.isArray(parsed.keys)) throw new ApiKeyError('bad_keys_file', `${this.path}: expected { "keys": [...] }`);
    this.byHash = new Map(parsed.keys.map((k) => [k.hash, k]));
  }

  /** Creates a key for an account, saves it, and returns the key itself (shown once). */
  create(account: string, name?: string): { key: string; id: string } {
    const k = newApiKey();
    this.byHash.set(k.hash, { id: k.id, hash: k.hash, account, createdAt: new Date().toISOString(), ...(name === undefined ? {} : { name }) });
    this.save();
    return { key: k.key, id: k.id };
  }

  /** Every key, revoked ones included, oldest first. */
  list(): StoredKey[] {
    return [...this.byHash.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Revokes the key with this id (or an unambiguous start of it); returns it. Revoking twice is a no-op. */
  revoke(id: string): StoredKey {
    const all = this.list();
    const exact = all.filter((k) => k.id === id);
    const found = exact.length > 0 ? exact : all.filter((k) => id.length >= 4 && k.id.startsWith(id));
    if (found.length === 0) {
      throw new ApiKeyError('unknown_key', `no key with id "${id}"${all.length === 0 ? ' (there are no keys)' : `; the keys are: ${all.map((k) => k.id).join(', ')}`}`);
    }
    if (found.length > 1) throw new ApiKeyError('ambiguous_key', `"${id}" starts ${found.length} key ids (${found.map((k) => k.id).join(', ')}): give more of it`);
    const k = found[0]!;
    if (k.revokedAt == null) {
      k.revokedAt = new Date().toISOString();
      this.save();
    }
    return k;
  }

  verify(key: string): Principal | null {
    if (!key.startsWith(API_KEY_PREFIX) || key.length > 200) return null;
    this.reloadIfChanged();
    const k = this.byHash.get(hashApiKey(key));
    return k === undefined || (k.revokedAt ?? null) !== null ? null : { account: k.account, keyId: k.id };
  }

  /** Picks up keys added or revoked in the file by another process, at most once a second. */
  private reloadIfChanged(): void {
    if (this.path === null) return;
    const t = this.now();
    if (t - this.checkedAt < RELOAD_CHECK_MS) return;
    this.checkedAt = t;
    if (this.stamp() === this.seen) return;
    try {
      this.load();
    } catch {
      /* a file being replaced or broken: keep the keys known until it reads again */
    }
  }

  private stamp(): string {
    try {
      const st = statSync(this.path!);
      return `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      return '';
    }
  }

  private save(): void {
    if (this.path === null) return;
    mkdirSync(dirname(this.path), { recursive: true });
    // Written aside and renamed, so a node reading it never sees half a file.
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ keys: [...this.byHash.values()] }, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.path);
    this.seen = this.stamp();
  }
}
