/**
 * Login lockout, per user. Failures count up until a successful login resets them; a lock is set
 * at every fifth consecutive failure: 60 s at the 5th and 10th, one hour at the 15th and at every
 * fifth failure after it. While locked, logins are refused without looking at the password and
 * the refusal does not count as a failure (an attacker cannot extend the lock by hammering).
 */
export interface LockoutPolicy {
  /** Failures between locks. Default 5. */
  every: number;
  /** Short lock, ms. Default 60 000. */
  shortMs: number;
  /** Failures from which the long lock applies. Default 15. */
  longFrom: number;
  /** Long lock, ms. Default 3 600 000. */
  longMs: number;
}

export const LOCKOUT_DEFAULTS: LockoutPolicy = { every: 5, shortMs: 60_000, longFrom: 15, longMs: 3_600_000 };

/** The lock (ms from now) that `failedCount` consecutive failures earn, or 0 for none. */
export function lockDurationMs(failedCount: number, policy: LockoutPolicy = LOCKOUT_DEFAULTS): number {
  if (failedCount <= 0 || failedCount % policy.every !== 0) return 0;
  return failedCount >= policy.longFrom ? policy.longMs : policy.shortMs;
}
