import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { slotsUnderCeiling } from './cpu-ceiling.js';

describe('CPU ceiling as advertised slots', () => {
  const input = { cpus: 8, slots: 16, dservices: [{ name: 'mediagen', cpus: 2, concurrency: 4 }, { name: 'echo', cpus: 0.5, concurrency: 64 }] };

  it('no limit at 100%', () => {
    expect(slotsUnderCeiling(100, input)).toBeNull();
  });

  it('fits the units in the allowed CPUs, by each DService\'s declared CPUs per unit', () => {
    // 50% of 8 CPUs = 4 CPUs: 2 mediagen units (2 CPUs each), 8 echo units (0.5 each), 8 in total.
    expect(slotsUnderCeiling(50, input)).toEqual({ total: 8, perDService: { mediagen: 2, echo: 8 } });
    // 10% = 0.8 CPUs: still one unit of each (a ceiling slows the miner, never takes it out).
    expect(slotsUnderCeiling(10, input)).toEqual({ total: 1, perDService: { mediagen: 1, echo: 1 } });
  });

  it('property: never above what the miner or the DService allow, never below one', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 256 }),
      fc.array(fc.record({ name: fc.string({ minLength: 1, maxLength: 8 }), cpus: fc.double({ min: 0.1, max: 16, noNaN: true }), concurrency: fc.integer({ min: 1, max: 64 }) }), { maxLength: 5 }),
      (pct, cpus, slots, dservices) => {
        const r = slotsUnderCeiling(pct, { cpus, slots, dservices })!;
        expect(r.total).toBeGreaterThanOrEqual(1);
        expect(r.total).toBeLessThanOrEqual(slots);
        for (const d of dservices) {
          const n = r.perDService[d.name]!;
          expect(n).toBeGreaterThanOrEqual(1);
          expect(n).toBeLessThanOrEqual(Math.min(slots, Math.max(...dservices.filter((x) => x.name === d.name).map((x) => x.concurrency))));
        }
      }));
  });
});
