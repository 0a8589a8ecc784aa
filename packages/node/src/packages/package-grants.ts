/**
 * Who may download a package from the node: a miner the node placed that package on, and nobody
 * else. Each `place` frame carries a grant (a random token in its `packagePath`, sent over the
 * miner's authenticated tunnel); the package route serves an archive only for a live grant of
 * that digest. Without it, anyone who could reach the miner endpoint could make the node read
 * (and fetch from central) and stream archives of up to 64 MiB, as often as they liked.
 *
 * A grant is good for a few downloads (a cut-off fetch may be retried) until its placement ends
 * or it expires, whichever comes first. Grants are bounded in number: the oldest goes first.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

export interface GrantOptions {
  /** Downloads one grant allows. Default 3. */
  maxUses: number;
  /** A grant unused for this long is gone, ms. Default 10 minutes. */
  ttlMs: number;
  /** Grants held at once; issuing one more drops the oldest. Default 10,000. */
  maxGrants: number;
}

export const GRANT_DEFAULTS: GrantOptions = { maxUses: 3, ttlMs: 10 * 60_000, maxGrants: 10_000 };

interface Grant {
  token: Buffer;
  digest: string;
  minerId: string;
  instanceId: string;
  expiresAt: number;
  uses: number;
}

export type GrantCheck = { ok: true; minerId: string; instanceId: string } | { ok: false; reason: string };

export const GRANT_PARAM = 'grant';

export class PackageGrants {
  readonly options: GrantOptions;
  /** By token (hex); Map order is issue order, so the oldest is first. */
  private readonly byToken = new Map<string, Grant>();
  /** Instance id -> its grant's token (one grant per placement; a new one replaces it). */
  private readonly byInstance = new Map<string, string>();

  constructor(private readonly now: () => number, options: Partial<GrantOptions> = {}) {
    this.options = { ...GRANT_DEFAULTS, ...options };
  }

  get size(): number {
    return this.byToken.size;
  }

  /** A fresh grant for `minerId` to download `digest` for placement `instanceId`; returns its token. */
  issue(minerId: string, digest: string, instanceId: string): string {
    this.sweep();
    const old = this.byInstance.get(instanceId);
    if (old !== undefined) this.drop(old);
    while (this.byToken.size >= this.options.maxGrants) this.drop(this.byToken.keys().next().value!);
    const token = randomBytes(24);
    const hex = token.toString('hex');
    this.byToken.set(hex, { token, digest, minerId, instanceId, expiresAt: this.now() + this.options.ttlMs, uses: 0 });
    this.byInstance.set(instanceId, hex);
    return hex;
  }

  /** Takes one download of `digest` on `token`; why not when it may not. */
  use(digest: string, token: string | null): GrantCheck {
    if (token === null || token === '') return { ok: false, reason: `packages are served only to miners this node placed them on: the place frame's packagePath carries ?${GRANT_PARAM}=<token>` };
    const g = /^[0-9a-f]{48}$/.test(token) ? this.byToken.get(token) : undefined;
    // The Map lookup already matched the text; the constant-time compare keeps that so if the map changes.
    if (g === undefined || !timingSafeEqual(g.token, Buffer.from(token, 'hex'))) return { ok: false, reason: 'unknown or expired package grant (the placement ended, or it is older than the grant lifetime)' };
    if (this.now() >= g.expiresAt) {
      this.drop(token);
      return { ok: false, reason: 'unknown or expired package grant (the placement ended, or it is older than the grant lifetime)' };
    }
    if (g.digest !== digest) return { ok: false, reason: `this grant is for package ${g.digest}, not ${digest}` };
    if (g.uses >= this.options.maxUses) return { ok: false, reason: `this grant's ${this.options.maxUses} downloads are used up` };
    g.uses++;
    return { ok: true, minerId: g.minerId, instanceId: g.instanceId };
  }

  /**
   * The placement ended (stopped, answered, or given up): its grant goes. With `minerId`, only
   * when the grant is that miner's (a miner's `placed` frame cannot end another miner's grant).
   */
  revoke(instanceId: string, minerId?: string): void {
    const token = this.byInstance.get(instanceId);
    if (token === undefined) return;
    if (minerId !== undefined && this.byToken.get(token)?.minerId !== minerId) return;
    this.drop(token);
  }

  private drop(token: string): void {
    const g = this.byToken.get(token);
    if (g === undefined) return;
    this.byToken.delete(token);
    if (this.byInstance.get(g.instanceId) === token) this.byInstance.delete(g.instanceId);
  }

  private sweep(): void {
    const now = this.now();
    // Issue order is expiry order (one lifetime for all): the expired ones are at the front.
    for (const [k, g] of this.byToken) {
      if (now < g.expiresAt) break;
      this.drop(k);
    }
  }
}
