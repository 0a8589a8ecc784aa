/**
 * Per-account quotas at the node: requests held at once, and requests per second (a token
 * bucket). `take` admits a request or names the quota it would break and when to retry; every
 * admitted request is `release`d once when it ends. Plain logic with an injected clock; one small
 * record per account, nothing allocated per request.
 */
import { CgnError } from '@cgn/protocol';
import type { AccountPolicies } from './policies.js';

export type QuotaName = 'concurrentRequests' | 'requestsPerSecond';

interface Usage {
  inFlight: number;
  tokens: number;
  /** Clock time (ms) the tokens were last topped up. */
  at: number;
}

export interface QuotaUsage {
  inFlight: number;
  maxConcurrent: number | null;
  perSecond: number | null;
  burst: number | null;
  /** Whole requests the bucket holds now (null: no rate quota). */
  tokens: number | null;
}

export class QuotaGate {
  private readonly usage = new Map<string, Usage>();
  readonly counters = { refusedConcurrent: 0, refusedRate: 0 };

  constructor(
    private readonly policies: AccountPolicies,
    private readonly now: () => number,
  ) {}

  /** Admits one request of `account`, or returns the error (429) naming the quota it would break. */
  take(account: string): CgnError | null {
    const p = this.policies.get(account);
    if (p.maxConcurrent === null && p.perSecond === null) {
      const u = this.usage.get(account);
      if (u !== undefined) u.inFlight++;
      else this.usage.set(account, { inFlight: 1, tokens: 0, at: this.now() });
      return null;
    }
    const u = this.touch(account);
    if (p.maxConcurrent !== null && u.inFlight >= p.maxConcurrent) {
      this.counters.refusedConcurrent++;
      return quotaError(account, 'concurrentRequests', p.maxConcurrent, 1);
    }
    if (p.perSecond !== null) {
      if (u.tokens < 1) {
        this.counters.refusedRate++;
        return quotaError(account, 'requestsPerSecond', p.perSecond, Math.max(1, Math.ceil((1 - u.tokens) / p.perSecond)));
      }
      u.tokens -= 1;
    }
    u.inFlight++;
    return null;
  }

  /** An admitted request ended (answered, refused later, or its client left). */
  release(account: string): void {
    const u = this.usage.get(account);
    if (u !== undefined && u.inFlight > 0) u.inFlight--;
  }

  /** Whether `take` would admit a request now (without taking it), for diagnoses. */
  check(account: string): CgnError | null {
    const p = this.policies.get(account);
    const u = this.touch(account);
    if (p.maxConcurrent !== null && u.inFlight >= p.maxConcurrent) return quotaError(account, 'concurrentRequests', p.maxConcurrent, 1);
    if (p.perSecond !== null && u.tokens < 1) return quotaError(account, 'requestsPerSecond', p.perSecond, Math.max(1, Math.ceil((1 - u.tokens) / p.perSecond)));
    return null;
  }

  usageOf(account: string): QuotaUsage {
    const p = this.policies.get(account);
    const u = this.touch(account);
    return { inFlight: u.inFlight, maxConcurrent: p.maxConcurrent, perSecond: p.perSecond, burst: p.perSecond === null ? null : (p.burst ?? p.perSecond), tokens: p.perSecond === null ? null : Math.floor(u.tokens) };
  }

  private touch(account: string): Usage {
    const p = this.policies.get(account);
    const burst = p.perSecond === null ? 0 : Math.max(1, p.burst ?? p.perSecond);
    const now = this.now();
    let u = this.usage.get(account);
    if (u === undefined) {
      u = { inFlight: 0, tokens: burst, at: now };
      this.usage.set(account, u);
      return u;
    }
    if (p.perSecond !== null) u.tokens = Math.min(burst, u.tokens + ((now - u.at) / 1000) * p.perSecond);
    u.at = now;
    return u;
  }
}

const QUOTA_WORDS: Record<QuotaName, (limit: number) => string> = {
  concurrentRequests: (n) => `${n} concurrent request${n === 1 ? '' : 's'}`,
  requestsPerSecond: (n) => `${n} request${n === 1 ? '' : 's'} per second`,
};

export function quotaError(account: string, quota: QuotaName, limit: number, retryAfterS: number): CgnError {
  return new CgnError('rate_limited', `account ${account} is at its quota of ${QUOTA_WORDS[quota](limit)} (${quota}); retry after ${retryAfterS} s, or ask the network's operator to raise the quota`, {
    retryable: true,
    details: { quota, limit, account, retryAfterS },
  });
}
