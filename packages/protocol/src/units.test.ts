import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { baseUnitsAsCgn, formatCgn, formatPrice, microUsdAsUsd } from './units.js';

describe('units', () => {
  it('names prices in µUSD with the dollar amount beside', () => {
    expect(formatPrice(2319n)).toBe('2319 µUSD (0.002319 USD)');
    expect(microUsdAsUsd(-1_500_000n)).toBe('-1.500000');
  });

  it('shows tokens in CGN with their base units', () => {
    expect(formatCgn(10n ** 18n)).toBe('1 CGN (1000000000000000000 base units)');
    expect(baseUnitsAsCgn(2319n)).toBe('0.000000000000002319');
    expect(baseUnitsAsCgn(1_500_000_000_000_000_000n)).toBe('1.5');
    expect(baseUnitsAsCgn(0n)).toBe('0');
  });

  it('property: the CGN spelling reads back to the same base units', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), (b) => {
        const [int, frac = ''] = baseUnitsAsCgn(b).replace('-', '').split('.');
        const back = BigInt(int!) * 10n ** 18n + BigInt(frac.padEnd(18, '0') || '0');
        expect(b < 0n ? -back : back).toBe(b);
      }),
    );
  });
});
