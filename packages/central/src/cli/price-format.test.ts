import { describe, expect, it } from 'vitest';
import { formatPrice, parseTierPrice } from './price-format.js';

describe('cgn dservice prices', () => {
  it('reads TIER=REQUEST/CPU_SECOND/MB and refuses anything else with the expected form', () => {
    expect(parseTierPrice('attested=200/2000/20')).toEqual(['attested', { perRequestMicros: 200, perCpuSecondMicros: 2000, perMbMicros: 20 }]);
    expect(() => parseTierPrice('gold=1/2/3')).toThrow(/TIER=REQUEST\/CPU_SECOND\/MB/);
    expect(() => parseTierPrice('open=1/2')).toThrow(/e\.g\. attested=200\/2000\/20/);
  });

  it('shows the base schedule, each tier schedule, or "node default"', () => {
    expect(formatPrice(null)).toBe('node default');
    expect(formatPrice({ perRequestMicros: 1, perCpuSecondMicros: 2, perMbMicros: 3, tiers: { open: { perRequestMicros: 4, perCpuSecondMicros: 5, perMbMicros: 6 } } }))
      .toBe('1/req 2/cpu-s 3/MB; open: 4/req 5/cpu-s 6/MB');
  });
});
