import { describe, expect, it } from 'vitest';
import { pickMiner, type AssignCandidate } from './assign.js';

const c = (id: string, slots: number, inFlight: number, latencyMs: number | null, active = true): AssignCandidate => ({ id, slots, inFlight, latencyMs, active });

describe('pickMiner', () => {
  it('returns null when no miner has a free slot', () => {
    expect(pickMiner([c('a', 1, 1, 5), c('b', 2, 2, 1)])).toBeNull();
  });

  it('skips inactive (down or draining) miners', () => {
    expect(pickMiner([c('a', 4, 0, 1, false), c('b', 4, 3, 50)])?.id).toBe('b');
  });

  it('prefers the faster miner at equal load', () => {
    expect(pickMiner([c('slow', 4, 0, 20), c('fast', 4, 0, 5)])?.id).toBe('fast');
  });

  it('prefers the emptier miner at equal latency', () => {
    expect(pickMiner([c('busy', 4, 3, 10), c('idle', 4, 0, 10)])?.id).toBe('idle');
  });

  it('trades latency against load: a fast miner that is full enough loses', () => {
    // fast: 2ms * 4/4 = 2; slow: 6ms * 1/4 = 1.5
    expect(pickMiner([c('fast', 4, 3, 2), c('slow', 4, 0, 6)])?.id).toBe('slow');
  });

  it('scores an unknown miner with the mean latency of the others', () => {
    // a: 10 * 2/4 = 5; new: mean(10) * 1/4 = 2.5
    expect(pickMiner([c('a', 4, 1, 10), c('new', 4, 0, null)])?.id).toBe('new');
  });

  it('breaks exact ties by lower id, deterministically', () => {
    expect(pickMiner([c('b', 4, 0, 3), c('a', 4, 0, 3)])?.id).toBe('a');
  });

  it('uses a miner that failed this unit only when no other is free', () => {
    expect(pickMiner([c('a', 4, 0, 1), c('b', 4, 3, 100)], ['a'])?.id).toBe('b');
    expect(pickMiner([c('a', 4, 0, 1), c('b', 4, 4, 1)], ['a'])?.id).toBe('a');
  });
});
