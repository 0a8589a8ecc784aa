/**
 * The web app's money and time formatting (packages/central/ui/lib.js, the module every page
 * imports), run here under Node: amounts are exact decimal strings, never floats.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
// @ts-expect-error: a browser module without type declarations
import { fmtMicros, fmtTokens, fmtMs, fmtTime, shortHash } from '../../ui/lib.js';

describe('the web app formats money exactly', () => {
  it('µUSD as dollars with six decimals', () => {
    expect(fmtMicros('0')).toBe('$0.000000');
    expect(fmtMicros('5')).toBe('$0.000005');
    expect(fmtMicros('1234567')).toBe('$1.234567');
    expect(fmtMicros('-5')).toBe('-$0.000005');
    expect(fmtMicros(null)).toBe('—');
    fc.assert(fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), (n) => {
      const s = fmtMicros(n.toString()) as string;
      const m = /^(-?)\$(\d+)\.(\d{6})$/.exec(s);
      expect(m).not.toBeNull();
      const back = (BigInt(m![2]!) * 1_000_000n + BigInt(m![3]!)) * (m![1] === '-' ? -1n : 1n);
      expect(back).toBe(n);
    }));
  });

  it('CGN base units as tokens, trailing zeros dropped', () => {
    expect(fmtTokens('0')).toBe('0 CGN');
    expect(fmtTokens('1500000000000000000')).toBe('1.5 CGN');
    expect(fmtTokens('1')).toBe('0.000000000000000001 CGN');
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 10n ** 40n }), (n) => {
      const m = /^(\d+)(?:\.(\d{1,18}))? CGN$/.exec(fmtTokens(n.toString()) as string);
      expect(m).not.toBeNull();
      expect(BigInt(m![1]!) * 10n ** 18n + BigInt((m![2] ?? '').padEnd(18, '0'))).toBe(n);
    }));
  });

  it('durations, times and hashes', () => {
    expect(fmtMs(12.4)).toBe('12 ms');
    expect(fmtMs(1500)).toBe('1.50 s');
    expect(fmtMs(null)).toBe('—');
    expect(fmtTime(Date.UTC(2026, 11, 7, 5, 1, 2))).toBe('2026-12-07 05:01:02');
    expect(shortHash(`0x${'ab'.repeat(32)}`)).toBe('0xabababab…abababab');
    expect(shortHash('0x1234')).toBe('0x1234');
  });
});
