import { describe, expect, it } from 'vitest';
import { checkScoreWeights, DEFAULT_SCORE_WEIGHTS, NEUTRAL_REPUTATION, priceScore, reputationScore, score } from './score.js';
import { miner } from './test-fixtures/builders.js';
import type { ReputationInputs } from './types.js';

const perfect: ReputationInputs = { records: 1000, success: 1, latency: 1, uptime: 1, verificationsPassed: 100, verificationsFailed: 0 };

describe('score', () => {
  it('price score: the cheapest eligible miner scores 1, twice its price 0.5, a free miner 1', () => {
    expect(priceScore(10, 10)).toBe(1);
    expect(priceScore(20, 10)).toBe(0.5);
    expect(priceScore(0, 0)).toBe(1);
  });

  it('reputation: a miner with no history gets the neutral prior', () => {
    expect(reputationScore(undefined)).toBe(NEUTRAL_REPUTATION);
    expect(reputationScore({ ...perfect, records: 0 })).toBe(NEUTRAL_REPUTATION);
  });

  it('reputation: the success ratio multiplies, so a miner that always fails scores 0', () => {
    expect(reputationScore({ ...perfect, success: 0 })).toBe(0);
    expect(reputationScore({ ...perfect, success: 0.5 })).toBeCloseTo(reputationScore(perfect) / 2, 12);
  });

  it('reputation: the weighted sum of latency, uptime and verification outcomes', () => {
    // base 0.3 + 0.2 * latency + 0.3 * uptime + 0.2 * (passed + 1) / (passed + failed + 2)
    const r = reputationScore({ records: 10, success: 1, latency: 0.5, uptime: 0.5, verificationsPassed: 2, verificationsFailed: 2 });
    expect(r).toBeCloseTo(0.3 + 0.2 * 0.5 + 0.3 * 0.5 + 0.2 * 0.5, 12);
    expect(reputationScore({ ...perfect, verificationsPassed: 0, verificationsFailed: 8 })).toBeLessThan(reputationScore(perfect));
  });

  it('is 0.4 x price + 0.6 x reputation by default', () => {
    expect(score(miner('a', { priceFloor: 20, reputation: perfect }), 10)).toBeCloseTo(0.4 * 0.5 + 0.6 * reputationScore(perfect), 12);
  });

  it('trades price against reputation as the weights say', () => {
    const cheapNew = miner('cheap', { priceFloor: 5 });
    const dearProven = miner('dear', { priceFloor: 10, reputation: perfect });
    expect(score(dearProven, 5)).toBeGreaterThan(score(cheapNew, 5)); // 0.4*0.5 + 0.6*~1 > 0.4 + 0.6*0.5
    const priceOnly = { ...DEFAULT_SCORE_WEIGHTS, price: 1, reputation: 0 };
    expect(score(cheapNew, 5, priceOnly)).toBeGreaterThan(score(dearProven, 5, priceOnly));
  });

  it('refuses weights that do not make sense', () => {
    expect(() => checkScoreWeights({ ...DEFAULT_SCORE_WEIGHTS, price: 0, reputation: 0 })).toThrow(/cannot both be 0/);
    expect(() => checkScoreWeights({ ...DEFAULT_SCORE_WEIGHTS, uptime: 0.9 })).toThrow(/at most 1/);
    expect(() => checkScoreWeights({ ...DEFAULT_SCORE_WEIGHTS, price: 2 })).toThrow(/price must be in 0..1/);
  });
});
