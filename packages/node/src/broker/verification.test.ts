import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VERIFICATION_DEFAULTS, VerificationPolicy, verificationSettingsProblem } from './verification.js';

describe('adaptive verification probability', () => {
  it('starts at 1 for a new miner, falls with clean results to the floor, and a mismatch resets it', () => {
    const v = new VerificationPolicy(() => 0.999);
    const s = { floor: 0.05, decay: 0.5 };
    expect(v.probability('m', s)).toBe(1);
    expect(v.shouldCheck('m', s)).toBe(true);
    v.verifiedClean('m', s);
    expect(v.probability('m', s)).toBe(0.5);
    for (let i = 0; i < 10; i++) v.verifiedClean('m', s);
    expect(v.probability('m', s)).toBe(0.05);
    expect(v.shouldCheck('m', s)).toBe(false);
    v.mismatch('m');
    expect(v.probability('m', s)).toBe(1);
    expect(v.probability(null, s)).toBe(1);
  });

  it('floor 1 is full duplication; floor 0 with a proven miner checks nothing', () => {
    const v = new VerificationPolicy(() => 0);
    for (let i = 0; i < 50; i++) v.verifiedClean('m', { floor: 1, decay: 0.5 });
    expect(v.probability('m', { floor: 1, decay: 0.5 })).toBe(1);
    const w = new VerificationPolicy(() => 0);
    for (let i = 0; i < 60; i++) w.verifiedClean('m', { floor: 0, decay: 0.5 });
    expect(w.probability('m', { floor: 0, decay: 0.5 })).toBeLessThan(1e-15);
  });

  it('property: the probability stays within floor..1 and never rises without a mismatch', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.nat({ max: 100 }), (floor, decay, n) => {
        const v = new VerificationPolicy();
        let last = v.probability('m', { floor, decay });
        for (let i = 0; i < n; i++) {
          v.verifiedClean('m', { floor, decay });
          const p = v.probability('m', { floor, decay });
          expect(p).toBeLessThanOrEqual(last);
          expect(p).toBeGreaterThanOrEqual(floor);
          expect(p).toBeLessThanOrEqual(1);
          last = p;
        }
      }),
    );
  });

  it('checks settings', () => {
    expect(verificationSettingsProblem(VERIFICATION_DEFAULTS)).toBeNull();
    expect(verificationSettingsProblem({ floor: 2 })).toMatch(/floor/);
    expect(verificationSettingsProblem({ decay: -1 })).toMatch(/decay/);
  });
});
