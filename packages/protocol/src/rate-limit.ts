/**
 * Token-bucket rate limiting keyed by anything (an IP, a key id, a user id). `take` says whether
 * a request may go ahead and, if not, how many seconds until it may (for `Retry-After`). The clock
 * is injected; memory is bounded (idle buckets, which are full again anyway, are dropped first).
 */
/** Milliseconds since the epoch (injected so tests move time by hand). */
export interface RateClock {
  now(): number;
}

export interface RateLimit {
  /** Requests allowed at once. */
  burst: number;
  /** Sustained requests per second. */
  perSecond: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly limit: RateLimit,
    private readonly clock: RateClock,
    private readonly maxKeys = 100_000,
  ) {
    if (!(limit.burst >= 1) || !(limit.perSecond > 0)) throw new Error('rate limit: burst must be >= 1 and perSecond > 0');
  }

  /** Takes one token for `key`: `{ ok: true }` or `{ ok: false, retryAfterS }`. */
  take(key: string, cost = 1): { ok: true } | { ok: false; retryAfterS: number } {
    const now = this.clock.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.prune(now);
      b = { tokens: this.limit.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.limit.burst, b.tokens + ((now - b.at) / 1000) * this.limit.perSecond);
      b.at = now;
      // Keep recently used keys at the end (Map order) so pruning drops the idle ones.
      this.buckets.delete(key);
      this.buckets.set(key, b);
    }
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return { ok: true };
    }
    return { ok: false, retryAfterS: Math.max(1, Math.ceil((cost - b.tokens) / this.limit.perSecond)) };
  }

  get size(): number {
    return this.buckets.size;
  }

  private prune(now: number): void {
    const fullAfterMs = (this.limit.burst / this.limit.perSecond) * 1000;
    for (const [k, b] of this.buckets) {
      if (now - b.at >= fullAfterMs || this.buckets.size >= this.maxKeys) this.buckets.delete(k);
      if (this.buckets.size < this.maxKeys * 0.9) break;
    }
  }
}
