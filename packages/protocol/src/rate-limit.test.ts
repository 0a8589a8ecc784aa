import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.js';

/** A clock the test moves by hand. */
class ManualClock {
  private t = 1_700_000_000_000;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

describe('RateLimiter', () => {
  it('allows a burst, then the sustained rate, and says when to retry', () => {
    const clock = new ManualClock();
    const rl = new RateLimiter({ burst: 3, perSecond: 2 }, clock);
    expect([rl.take('a'), rl.take('a'), rl.take('a')].every((r) => r.ok)).toBe(true);
    expect(rl.take('a')).toEqual({ ok: false, retryAfterS: 1 });
    expect(rl.take('b').ok).toBe(true); // keys are independent
    clock.advance(500);
    expect(rl.take('a').ok).toBe(true);
    expect(rl.take('a').ok).toBe(false);
    clock.advance(10_000);
    expect([rl.take('a'), rl.take('a'), rl.take('a'), rl.take('a')].map((r) => r.ok)).toEqual([true, true, true, false]);
  });

  it('keeps memory bounded under many keys', () => {
    const clock = new ManualClock();
    const rl = new RateLimiter({ burst: 1, perSecond: 1 }, clock, 1000);
    for (let i = 0; i < 10_000; i++) rl.take(`ip-${i}`);
    expect(rl.size).toBeLessThanOrEqual(1000);
  });
});
