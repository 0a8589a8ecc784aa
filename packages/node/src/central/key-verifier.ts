/**
 * The node's API-key check backed by the Central Service: a cache in front of the central link.
 *
 * * `verify(key)` answers synchronously from the cache (fresh entries only, positive or
 *   negative); a miss returns null. It is the `ApiKeyVerifier` seam of the node.
 * * `verifyAsync(key)` answers from the cache or asks central over the link (one request per key
 *   at a time, however many callers), and caches the answer: known keys for `ttlMs` (default
 *   30 s, never past the key's own expiry), unknown ones for `negativeTtlMs` (default 5 s).
 * * Central pushes `keys_revoked` when a key is revoked: the entry is dropped at once. Without the
 *   push (lost, or central down), a revoked key still stops working when its entry's TTL ends.
 * * If central is unreachable, keys already cached keep working until their TTL runs out; others
 *   are refused (`lookup` says `unavailable`, so the node can answer 503 rather than 401).
 * * Bearer access tokens (JWT) are verified offline when a `NodeTokenVerifier` is given, and
 *   refused when central has revoked their key or disabled their account (`TokenRevocations`:
 *   at once on central's push; tokens are "unavailable" once the node has been without central
 *   for the grace).
 *
 * Keys travel over the link only as their SHA-256; the cache is keyed by it too.
 */
import { hash as oneShotHash } from 'node:crypto';
import type { ApiKeyVerifier, Principal } from '../auth/api-keys.js';
import type { CentralLinkServer, CentralPush } from './link-server.js';
import { parseKeyPrincipal } from '@cgn/protocol';
import { looksLikeJwt, type NodeTokenVerifier } from './token-verifier.js';
import type { TokenRevocations } from './token-revocations.js';

export interface CentralPrincipal extends Principal {
  scopes: string[];
  /** The end user the key acts for, if any. */
  endUser: string | null;
  via: 'key' | 'token';
}

export type LookupSource = 'cache' | 'central' | 'unavailable' | 'invalid';

export interface LookupResult {
  principal: CentralPrincipal | null;
  from: LookupSource;
}

/** What the verifier needs from the link (a `CentralLinkServer`, or a fake in tests). */
export type KeyLink = Pick<CentralLinkServer, 'request' | 'on' | 'off'>;

export interface CentralKeyVerifierOptions {
  /** How long a known key is trusted without asking again, ms. Default 30 000. */
  ttlMs?: number;
  /** How long an unknown key stays refused without asking again, ms. Default 5000. */
  negativeTtlMs?: number;
  /** Cache bounds. Defaults 100 000 known, 10 000 unknown. */
  maxEntries?: number;
  maxNegativeEntries?: number;
  clock?: { now(): number };
  /** For `Authorization: Bearer <JWT>`. */
  tokens?: NodeTokenVerifier;
  /** Revoked keys and disabled accounts whose tokens are refused. */
  revocations?: TokenRevocations;
  /** Per lookup at central, ms. Default 3000. */
  requestTimeoutMs?: number;
  /** Obey central's revocation pushes. Default true. */
  acceptPushes?: boolean;
}

interface Entry {
  principal: CentralPrincipal | null;
  until: number;
}

const KEY_PREFIX = 'cgn_';
/** One-shot: no Hash object per request (the work endpoint hashes every request's key). */
const sha256 = (s: string): string => oneShotHash('sha256', s, 'hex');

export class CentralKeyVerifier implements ApiKeyVerifier {
  private readonly known = new Map<string, Entry>();
  private readonly unknown = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<LookupResult>>();
  /** Hash -> time of a revocation push, to drop answers that were in flight across it. */
  private readonly revokedAt = new Map<string, number>();
  private readonly clock: { now(): number };
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly onPush: (p: CentralPush) => void;
  readonly counters = { hits: 0, misses: 0, centralLookups: 0, unavailable: 0, revocations: 0, tokensRevoked: 0, tokensUnverifiable: 0 };

  constructor(private readonly link: KeyLink, private readonly options: CentralKeyVerifierOptions = {}) {
    this.clock = options.clock ?? { now: () => Date.now() };
    this.ttlMs = options.ttlMs ?? 30_000;
    this.negativeTtlMs = options.negativeTtlMs ?? 5_000;
    this.onPush = (p) => {
      if (p.kind === 'keys_revoked') this.invalidate(p.hashes);
    };
    if (options.acceptPushes !== false) link.on('push', this.onPush);
  }

  /** Stops listening to the link. */
  close(): void {
    this.link.off('push', this.onPush);
  }

  private static shapeOk(key: string): boolean {
    return key.length === KEY_PREFIX.length + 32 && key.startsWith(KEY_PREFIX) && /^[A-Za-z0-9_-]+$/.test(key.slice(KEY_PREFIX.length));
  }

  private fresh(hash: string): Entry | undefined {
    const now = this.clock.now();
    return this.freshIn(this.known, hash, now) ?? this.freshIn(this.unknown, hash, now);
  }

  private freshIn(m: Map<string, Entry>, hash: string, now: number): Entry | undefined {
    const e = m.get(hash);
    if (e === undefined) return undefined;
    if (e.until > now) return e;
    m.delete(hash);
    return undefined;
  }

  verify(key: string): CentralPrincipal | null {
    if (looksLikeJwt(key)) {
      const p = this.options.tokens?.verifySync(key) ?? null;
      return p === null || (this.options.revocations?.check(p) ?? 'ok') !== 'ok' ? null : { ...p, via: 'token' };
    }
    if (!CentralKeyVerifier.shapeOk(key)) return null;
    const e = this.fresh(sha256(key));
    if (e === undefined) {
      this.counters.misses++;
      return null;
    }
    this.counters.hits++;
    return e.principal;
  }

  async verifyAsync(key: string): Promise<CentralPrincipal | null> {
    return (await this.lookup(key)).principal;
  }

  /** Like `verifyAsync`, and says where the answer came from. */
  async lookup(key: string): Promise<LookupResult> {
    if (looksLikeJwt(key)) {
      const t = this.options.tokens;
      const p = t === undefined ? null : await t.verify(key);
      if (p === null) return { principal: null, from: 'invalid' };
      const verdict = this.options.revocations?.check(p) ?? 'ok';
      if (verdict === 'revoked') this.counters.tokensRevoked++;
      if (verdict === 'stale') this.counters.tokensUnverifiable++;
      if (verdict !== 'ok') return { principal: null, from: verdict === 'revoked' ? 'invalid' : 'unavailable' };
      return { principal: { ...p, via: 'token' }, from: 'cache' };
    }
    if (!CentralKeyVerifier.shapeOk(key)) return { principal: null, from: 'invalid' };
    const hash = sha256(key);
    const e = this.fresh(hash);
    if (e !== undefined) {
      this.counters.hits++;
      return { principal: e.principal, from: 'cache' };
    }
    let p = this.inflight.get(hash);
    if (p === undefined) {
      p = this.ask(hash).finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, p);
    }
    return p;
  }

  private async ask(hash: string): Promise<LookupResult> {
    const started = this.clock.now();
    this.counters.centralLookups++;
    let principal: CentralPrincipal | null;
    try {
      const kp = parseKeyPrincipal(await this.link.request('verify_key', { hash }, this.options.requestTimeoutMs ?? 3000));
      principal = kp === null ? null : { account: kp.account, keyId: kp.keyId, scopes: kp.scopes, endUser: kp.endUser, via: 'key' };
      const now = this.clock.now();
      const revoked = this.revokedAt.get(hash);
      if (principal !== null && !(revoked !== undefined && revoked >= started)) {
        const until = Math.min(now + this.ttlMs, kp?.expiresAt ?? Infinity);
        this.put(this.known, hash, { principal, until }, this.options.maxEntries ?? 100_000);
      } else if (principal === null) {
        this.put(this.unknown, hash, { principal: null, until: now + this.negativeTtlMs }, this.options.maxNegativeEntries ?? 10_000);
      }
      return { principal, from: 'central' };
    } catch {
      this.counters.unavailable++;
      return { principal: null, from: 'unavailable' };
    }
  }

  private put(m: Map<string, Entry>, hash: string, e: Entry, max: number): void {
    m.delete(hash);
    m.set(hash, e);
    while (m.size > max) {
      const oldest = m.keys().next().value;
      if (oldest === undefined) break;
      m.delete(oldest);
    }
  }

  /** Forgets keys (by SHA-256 hex), e.g. on central's `keys_revoked` push. */
  invalidate(hashes: readonly string[]): void {
    const now = this.clock.now();
    for (const h of hashes) {
      this.known.delete(h);
      this.unknown.delete(h);
      this.revokedAt.set(h, now);
      this.counters.revocations++;
    }
    for (const [h, t] of this.revokedAt) if (now - t > this.ttlMs) this.revokedAt.delete(h);
  }

  /** Drops every cached answer. */
  clear(): void {
    this.known.clear();
    this.unknown.clear();
  }

  get size(): { known: number; unknown: number } {
    return { known: this.known.size, unknown: this.unknown.size };
  }
}
