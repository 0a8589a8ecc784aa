import { describe, expect, it } from 'vitest';
import { simulateVerification } from './simulate-verification.js';

describe('verification simulation (real broker, virtual time)', () => {
  const small = { seed: 7, miners: 60, cheaterShare: 0.1, cheatRates: [0.1, 1], requests: 6000, floor: 0.05, decay: 0.8 };

  it('never penalizes an honest miner, catches every always-wrong cheater, and is reproducible', () => {
    const a = simulateVerification(small);
    expect(a.answered + a.failed).toBe(small.requests);
    expect(a.honestPenalized).toBe(0);
    expect(a.catchRateByRate['1']).toBe(1);
    expect(a.extraExecutionShare).toBeGreaterThan(0);
    expect(a.extraExecutionShare).toBeLessThan(1.1);
    const b = simulateVerification(small);
    expect({ ...b, wallSeconds: 0 }).toEqual({ ...a, wallSeconds: 0 });
  });

  it('full duplication (floor 1) serves no wrong answer and checks every one', () => {
    const r = simulateVerification({ ...small, floor: 1 });
    expect(r.wrongAnswersServed).toBe(0);
    expect(r.extraExecutionShare).toBeGreaterThanOrEqual(1);
    expect(r.honestPenalized).toBe(0);
  });
});
