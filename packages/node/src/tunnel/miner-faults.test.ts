import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MinerFaults } from './miner-faults.js';

describe('miner faults', () => {
  it('quarantines a miner at the third fault within the window, for the quarantine time', () => {
    let now = 0;
    const f = new MinerFaults(() => now, { threshold: 3, windowMs: 1000, quarantineMs: 5000 });
    expect(f.record('m', 'a')).toBe(false);
    now = 500;
    expect(f.record('m', 'b')).toBe(false);
    now = 900;
    expect(f.record('m', 'c')).toBe(true);
    expect(f.quarantine('m')).toEqual({ remainingMs: 5000, reason: 'c' });
    now = 5899;
    expect(f.quarantine('m').remainingMs).toBe(1);
    now = 5900;
    expect(f.quarantine('m').remainingMs).toBe(0);
    expect(f.top()[0]).toMatchObject({ faults: 3, lastReason: 'c', quarantinedForMs: 0 });
  });

  it('forgets faults older than the window', () => {
    let now = 0;
    const f = new MinerFaults(() => now, { threshold: 3, windowMs: 1000 });
    f.record('m', 'a');
    f.record('m', 'b');
    now = 2000;
    expect(f.record('m', 'c')).toBe(false);
    expect(f.quarantine('m').remainingMs).toBe(0);
  });

  it('keeps at most maxEntries miners, dropping the least recent', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }), (ids) => {
        const f = new MinerFaults(() => 0, { maxEntries: 10, threshold: 1000 });
        for (const id of ids) f.record(`m${id}`, 'x');
        expect(f.top(100).length).toBeLessThanOrEqual(10);
        if (ids.length > 0) expect(f.top(100).some((e) => e.miner === `m${ids[ids.length - 1]}`)).toBe(true);
      }),
    );
  });
});
