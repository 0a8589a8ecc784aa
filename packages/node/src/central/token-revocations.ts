/**
 * The access tokens the node must refuse although they verify offline: central pushes
 * `tokens_revoked` for each API key it revokes and each account it disables, and the whole recent
 * set (ending with `sync`) each time its link to the node opens. A token is refused when its key
 * (`sub`) is on the set, or its account (`acct`) is and it was issued (`iat`) before the account
 * was disabled. Entries are merged, never replaced (several central replicas may push), and each
 * is dropped when every token it could concern has expired.
 *
 * The bound: with the link up a revoked token is refused as soon as the push arrives
 * (milliseconds after the revocation). A node that has no central link cannot learn of
 * revocations, so it takes tokens on trust only for `graceMs` after losing the link (the same
 * bound as its cache of API keys, default 30 s), then answers them "unavailable" (503) until a
 * central has connected and sent the current set: a token is never honoured for longer than
 * `graceMs` plus the push's transit after its key was revoked or its account disabled.
 */
import type { TokenRevocation } from '@cgn/protocol';
import type { CentralLinkServer, CentralPush } from './link-server.js';

export interface TokenRevocationsOptions {
  /** How long tokens are still taken after the last central link dropped, ms. Default 30 000. */
  graceMs?: number;
  clock?: { now(): number };
}

/** What a check needs from a verified token. */
export interface TokenFacts {
  keyId: string;
  account: string;
  /** Epoch ms. */
  issuedAt: number;
}

/** `revoked`: refuse (401). `stale`: the node cannot know (503). */
export type TokenVerdict = 'ok' | 'revoked' | 'stale';

type RevocationLink = Pick<CentralLinkServer, 'on' | 'off' | 'connected'>;
type TokensRevoked = Extract<CentralPush, { kind: 'tokens_revoked' }>;

interface Entry {
  at: number;
  until: number;
}

export class TokenRevocations {
  private readonly keys = new Map<string, Entry>();
  private readonly accounts = new Map<string, Entry>();
  private readonly clock: { now(): number };
  private readonly graceMs: number;
  /** Tokens are trusted until then: Infinity while a synced central link is up. */
  private freshUntil = -Infinity;
  private link: RevocationLink | null = null;
  private readonly onPush = (p: CentralPush): void => {
    if (p.kind === 'tokens_revoked') this.apply(p);
  };
  private readonly onDisconnected = (): void => {
    if (this.link?.connected !== true) this.lost();
  };
  readonly counters = { pushes: 0, syncs: 0, refused: 0, stale: 0 };

  constructor(options: TokenRevocationsOptions = {}) {
    this.clock = options.clock ?? { now: () => Date.now() };
    this.graceMs = options.graceMs ?? 30_000;
  }

  /** Follows a central link's pushes and disconnections. */
  attach(link: RevocationLink): this {
    this.link = link;
    link.on('push', this.onPush);
    link.on('disconnected', this.onDisconnected);
    return this;
  }

  detach(): void {
    this.link?.off('push', this.onPush);
    this.link?.off('disconnected', this.onDisconnected);
    this.link = null;
  }

  apply(p: Pick<TokensRevoked, 'sync' | 'keys' | 'accounts'>): void {
    const now = this.clock.now();
    this.counters.pushes++;
    const merge = (m: Map<string, Entry>, es: readonly TokenRevocation[]): void => {
      for (const e of es) {
        const old = m.get(e.id);
        m.set(e.id, { at: Math.max(old?.at ?? -Infinity, e.at), until: Math.max(old?.until ?? -Infinity, now + e.forMs) });
      }
    };
    merge(this.keys, p.keys);
    merge(this.accounts, p.accounts);
    if (p.sync) {
      this.counters.syncs++;
      this.freshUntil = Infinity;
    }
    this.prune(now);
  }

  /** The last central link dropped: trust tokens for the grace only. */
  lost(): void {
    this.freshUntil = Math.min(this.freshUntil, this.clock.now() + this.graceMs);
  }

  check(t: TokenFacts): TokenVerdict {
    const now = this.clock.now();
    const key = this.keys.get(t.keyId);
    const account = this.accounts.get(t.account);
    if ((key !== undefined && key.until > now) || (account !== undefined && account.until > now && t.issuedAt <= account.at)) {
      this.counters.refused++;
      return 'revoked';
    }
    if (now > this.freshUntil) {
      this.counters.stale++;
      return 'stale';
    }
    return 'ok';
  }

  get size(): { keys: number; accounts: number } {
    return { keys: this.keys.size, accounts: this.accounts.size };
  }

  private prune(now: number): void {
    for (const m of [this.keys, this.accounts]) for (const [id, e] of m) if (e.until <= now) m.delete(id);
  }
}
