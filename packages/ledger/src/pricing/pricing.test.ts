import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PriceBook, ceilDiv, maxPriceOf, priceOf, toTokens, toTokensCeil, type PriceSchedule } from './price.js';
import { BENEFICIARIES, splitAmount, splitAmountReference, splitChecked, splitProblem, splitText } from './split.js';
import { arbBps } from '../test-fixtures/records.js';

const money = fc.bigInt({ min: 0n, max: 10n ** 12n });
const arbSchedule: fc.Arbitrary<PriceSchedule> = fc.record({ perRequest: money, perCpuSecond: money, perMb: money });
const usage = fc.record({ cpuUs: fc.nat({ max: 3_600_000_000 }), bytesIn: fc.nat({ max: 1e10 }), bytesOut: fc.nat({ max: 1e10 }) });

describe('priceOf', () => {
  it('charges per request + per CPU-second + per MB, the metered part rounded up once', () => {
    const s = { perRequest: 100n, perCpuSecond: 2_000n, perMb: 50n };
    expect(priceOf(s, { cpuUs: 0, bytesIn: 0, bytesOut: 0 })).toBe(100n);
    expect(priceOf(s, { cpuUs: 1_000_000, bytesIn: 0, bytesOut: 0 })).toBe(2_100n);
    expect(priceOf(s, { cpuUs: 0, bytesIn: 600_000, bytesOut: 400_000 })).toBe(150n);
    expect(priceOf(s, { cpuUs: 1, bytesIn: 1, bytesOut: 0 })).toBe(101n); // 0.002 + 0.00005 -> 1
    expect(maxPriceOf(s, 0, 2_000_000, 1_000_000)).toBe(4_150n);
  });

  it('property: exact within one micro-unit, never below, monotone in usage, deterministic', () => {
    fc.assert(
      fc.property(arbSchedule, usage, fc.nat({ max: 1000 }), (s, u, more) => {
        const p = priceOf(s, u);
        const exactTimesMillion = s.perRequest * 1_000_000n + s.perCpuSecond * BigInt(u.cpuUs) + s.perMb * BigInt(u.bytesIn + u.bytesOut);
        expect(p * 1_000_000n >= exactTimesMillion).toBe(true);
        expect(p * 1_000_000n - exactTimesMillion < 1_000_000n).toBe(true);
        expect(priceOf(s, { ...u, cpuUs: u.cpuUs + more })).toBeGreaterThanOrEqual(p);
        expect(priceOf({ ...s }, { ...u })).toBe(p);
      }),
    );
  });

  it('refuses floats, negatives and non-integers', () => {
    expect(() => priceOf({ perRequest: -1n, perCpuSecond: 0n, perMb: 0n }, { cpuUs: 0, bytesIn: 0, bytesOut: 0 })).toThrow(/perRequest/);
    expect(() => priceOf({ perRequest: 1 as unknown as bigint, perCpuSecond: 0n, perMb: 0n }, { cpuUs: 0, bytesIn: 0, bytesOut: 0 })).toThrow(/bigint/);
    expect(() => priceOf({ perRequest: 1n, perCpuSecond: 0n, perMb: 0n }, { cpuUs: 1.5, bytesIn: 0, bytesOut: 0 })).toThrow(/cpuUs/);
  });

  it('PriceBook: per DService and tier, with a default', () => {
    const book = new PriceBook();
    expect(book.get('echo', 'open')).toBeUndefined();
    book.set('echo', 'open', { perRequest: 1n, perCpuSecond: 0n, perMb: 0n });
    book.setDefault({ perRequest: 9n, perCpuSecond: 0n, perMb: 0n });
    expect(book.get('echo', 'open')?.perRequest).toBe(1n);
    expect(book.get('echo', 'attested')?.perRequest).toBe(9n);
  });
});

describe('token conversion', () => {
  it('rounds down for charges and up for reservations', () => {
    const rate = { num: 2n, den: 3n };
    expect(toTokens(10n, rate)).toBe(6n);
    expect(toTokensCeil(10n, rate)).toBe(7n);
    expect(toTokens(9n, rate)).toBe(6n);
    expect(toTokensCeil(9n, rate)).toBe(6n);
    expect(() => toTokens(1n, { num: 1n, den: 0n })).toThrow(/den/);
    expect(ceilDiv(0n, 5n)).toBe(0n);
  });
  it('property: floor <= exact <= ceil, within one unit', () => {
    fc.assert(
      fc.property(money, fc.bigInt({ min: 0n, max: 10n ** 15n }), fc.bigInt({ min: 1n, max: 10n ** 9n }), (p, num, den) => {
        const lo = toTokens(p, { num, den });
        const hi = toTokensCeil(p, { num, den });
        expect(lo * den <= p * num && p * num <= hi * den).toBe(true);
        expect(hi - lo <= 1n).toBe(true);
      }),
    );
  });
});

describe('splitAmount', () => {
  it('follows the largest-remainder rule with the fixed tie-break', () => {
    expect(splitAmount(1n, { miner: 2500, developer: 2500, operator: 2500, charity: 2500 })).toEqual({ miner: 1n, developer: 0n, operator: 0n, charity: 0n });
    expect(splitAmount(3n, { miner: 2500, developer: 2500, operator: 2500, charity: 2500 })).toEqual({ miner: 1n, developer: 1n, operator: 1n, charity: 0n });
    // 10 * 0.7 = 7, 10 * 0.2 = 2, 10 * 0.09 = 0.9, 10 * 0.01 = 0.1 -> operator gets the unit
    expect(splitAmount(10n, { miner: 7000, developer: 2000, operator: 900, charity: 100 })).toEqual({ miner: 7n, developer: 2n, operator: 1n, charity: 0n });
    expect(splitAmount(0n, { miner: 7000, developer: 2000, operator: 900, charity: 100 })).toEqual({ miner: 0n, developer: 0n, operator: 0n, charity: 0n });
  });

  it('refuses agreements that do not sum to 10000', () => {
    expect(splitProblem({ miner: 5000, developer: 5000, operator: 0, charity: 1 })).toMatch(/sum to 10000/);
    expect(() => splitAmount(5n, { miner: 5000.5, developer: 4999.5, operator: 0, charity: 0 })).toThrow(/integer/);
    expect(() => splitAmount(-1n, { miner: 10000, developer: 0, operator: 0, charity: 0 })).toThrow(/amount/);
  });

  it('property: parts sum exactly, none negative, each within one unit of its exact share, 0 bps gets 0, deterministic', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 30n }), arbBps, (amount, bps) => {
        const parts = splitAmount(amount, bps);
        let sum = 0n;
        for (const b of BENEFICIARIES) {
          const part = parts[b];
          sum += part;
          expect(part >= 0n).toBe(true);
          const exact = amount * BigInt(bps[b]); // share * 10000
          expect(part * 10_000n >= exact - 10_000n + 1n && part * 10_000n < exact + 10_000n).toBe(true);
          if (bps[b] === 0) expect(part).toBe(0n);
        }
        expect(sum).toBe(amount);
        expect(splitAmount(amount, { ...bps })).toEqual(parts);
      }),
      { numRuns: 500 },
    );
  });

  it('property: splitText (exact doubles below 2^53 / 10000, bigints above) is the text of the reference rule', () => {
    const edge = 900_719_925_474n;
    const amounts = fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 6n }), fc.bigInt({ min: edge - 20n, max: edge + 20n }), fc.bigInt({ min: 0n, max: 10n ** 24n }));
    fc.assert(
      fc.property(amounts, arbBps, (amount, bps) => {
        const r = splitAmountReference(amount, bps);
        expect(splitText(amount, bps)).toBe(`${r.miner}/${r.developer}/${r.operator}/${r.charity}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: the fast path (splitChecked) equals the reference rule', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 24n }), arbBps, (amount, bps) => {
        expect(splitChecked(amount, bps)).toEqual(splitAmountReference(amount, bps));
      }),
      { numRuns: 1000 },
    );
  });
});
