/**
 * `ExactSum` keeps amounts in doubles while they fit and moves to bigints before a double could
 * round: whatever the amounts (small, near 2^53, far beyond it, added as numbers or bigints),
 * its value is the exact bigint sum.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ExactSum } from './exact-sum.js';

const MAX = BigInt(Number.MAX_SAFE_INTEGER);
const amount = fc.oneof(
  fc.bigInt({ min: 0n, max: 1_000_000n }),
  fc.bigInt({ min: MAX - 1000n, max: MAX }),
  fc.bigInt({ min: 0n, max: MAX }),
  fc.bigInt({ min: MAX + 1n, max: 2n ** 80n }),
);

describe('ExactSum', () => {
  it('property: the sum is exact, whether amounts come as safe numbers or bigints', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(amount, fc.boolean()), { maxLength: 200 }), (xs) => {
        const s = new ExactSum();
        let want = 0n;
        for (const [x, asNumber] of xs) {
          if (asNumber && x <= MAX) s.add(Number(x));
          else s.addBig(x);
          want += x;
        }
        expect(s.value).toBe(want);
      }),
    );
  });

  it('stays exact across 2^53 one unit at a time', () => {
    const s = new ExactSum();
    s.add(Number.MAX_SAFE_INTEGER - 1);
    for (let i = 0; i < 4; i++) s.add(1);
    s.addBig(1n);
    expect(s.value).toBe(MAX + 4n);
  });
});
