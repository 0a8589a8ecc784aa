import { describe, expect, it } from 'vitest';
import { hash } from 'node:crypto';
import { LIMITS, frameProblem } from './validate.js';
import { probeAdvance, probeChain, probeChainStart } from './probe.js';

const probe = (over: Record<string, unknown> = {}) => ({ t: 'probe', v: 1, id: 'p1', seed: new Uint8Array(32), chains: 2, steps: 100, every: 10, payload: new Uint8Array(0), ...over });
const probed = (over: Record<string, unknown> = {}) => ({ t: 'probed', v: 1, id: 'p1', checkpoints: new Uint8Array(64), payload: new Uint8Array(0), memoryMb: 1, diskMb: 2, gpus: 0, ...over });
const field = (v: unknown) => frameProblem(v)?.details?.['field'];

describe('probe frames are bounded', () => {
  it('takes a well-formed probe and answer', () => {
    expect(frameProblem(probe())).toBeNull();
    expect(frameProblem(probe({ chains: 0, steps: 0, every: 1, payload: new Uint8Array(1024) }))).toBeNull();
    expect(frameProblem(probed())).toBeNull();
  });

  it('refuses chains, steps and checkpoints past the limits, and an interval that does not divide the steps', () => {
    expect(field(probe({ chains: LIMITS.maxProbeChains + 1 }))).toBe('chains');
    expect(field(probe({ steps: LIMITS.maxProbeSteps + 1 }))).toBe('steps');
    expect(field(probe({ every: 7 }))).toBe('every');
    expect(field(probe({ steps: 100_000, every: 10 }))).toBe('every');
    expect(field(probe({ seed: new Uint8Array(31) }))).toBe('seed');
    expect(field(probe({ payload: new Uint8Array(LIMITS.maxProbePayloadBytes + 1) }))).toBe('payload');
  });

  it('refuses an answer of partial hashes, too many of them, or odd self-reports', () => {
    expect(field(probed({ checkpoints: new Uint8Array(33) }))).toBe('checkpoints');
    expect(field(probed({ checkpoints: new Uint8Array(LIMITS.maxProbeChains * LIMITS.maxProbeCheckpoints * 32 + 32) }))).toBe('checkpoints');
    expect(field(probed({ memoryMb: -1 }))).toBe('memoryMb');
    expect(field(probed({ gpus: 1.5 }))).toBe('gpus');
  });
});

describe('probe hash chains', () => {
  it('link k+1 is the sha256 of link k and the chain index, from sha256(seed || chain)', () => {
    const seed = new Uint8Array(32).fill(7);
    const start = probeChainStart(seed, 3);
    expect(start).toEqual(hash('sha256', Buffer.concat([Buffer.from(seed), Buffer.from([0, 0, 0, 3])]), 'buffer'));
    const cps = probeChain(seed, 3, 12, 4);
    expect(cps.length).toBe(3 * 32);
    expect(probeAdvance(start, 1, 3)).toEqual(hash('sha256', Buffer.concat([start, Buffer.from([0, 0, 0, 3])]), 'buffer'));
    expect(cps.subarray(0, 32)).toEqual(probeAdvance(start, 4, 3));
    expect(cps.subarray(64, 96)).toEqual(probeAdvance(cps.subarray(32, 64), 4, 3));
    // The same link advanced as another chain goes elsewhere: chains cannot be spliced.
    expect(probeAdvance(cps.subarray(32, 64), 4, 2)).not.toEqual(cps.subarray(64, 96));
    expect(probeChain(seed, 2, 12, 4)).not.toEqual(cps);
  });
});
