import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { boundMetering, boundPrice } from './charge-bound.js';

describe('the bound on a charge', () => {
  it('bills at most the node-measured execution x declared cpus, whatever the miner reports', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat({ max: 86_400_000_000 }), fc.integer({ min: 0, max: 64 }), (reported, nodeExecUs, cpus) => {
        const b = boundMetering({ reportedCpuUs: reported, nodeExecUs, cpus });
        expect(b.cpuUs).toBeLessThanOrEqual(nodeExecUs * cpus);
        expect(b.cpuUs).toBeLessThanOrEqual(reported);
        expect(b.clipped).toBe(reported > nodeExecUs * cpus);
        expect(b.execUs).toBe(nodeExecUs);
        if (!b.clipped) expect(b.cpuUs).toBe(reported);
      }),
    );
    expect(boundMetering({ reportedCpuUs: 5_000_000_000, nodeExecUs: 1500, cpus: 1 })).toEqual({ cpuUs: 1500, execUs: 1500, clipped: true });
    expect(boundMetering({ reportedCpuUs: 700, nodeExecUs: 1500, cpus: 0.5 })).toEqual({ cpuUs: 700, execUs: 1500, clipped: false });
  });

  it('never charges more than the reservation', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 20n }), fc.bigInt({ min: 0n, max: 10n ** 20n }), (price, max) => {
        const p = boundPrice(price, max);
        expect(p <= max && p <= price).toBe(true);
        expect(p === price || p === max).toBe(true);
      }),
    );
  });
});
