import { describe, expect, it } from 'vitest';
import { probeChain } from '@cgn/protocol';
import { answerProbe, selfReport } from './probe.js';

describe('the miner answers the capability probe', () => {
  it('computes every chain in its own worker thread, as the protocol defines the chain, and echoes the payload', async () => {
    const seed = new Uint8Array(32).map((_, i) => i);
    const payload = new Uint8Array([1, 2, 3]);
    const a = await answerProbe({ id: 'p1', seed, chains: 3, steps: 200, every: 20, payload });
    const want = Buffer.concat([0, 1, 2].map((c) => probeChain(seed, c, 200, 20)));
    expect(Buffer.from(a.checkpoints)).toEqual(want);
    expect(a.payload).toEqual(payload);
    expect(a.id).toBe('p1');
  });

  it('only echoes a probe without chains, and reports memory, disk and GPUs as it sees them', async () => {
    const a = await answerProbe({ id: 'p2', seed: new Uint8Array(32), chains: 0, steps: 0, every: 1, payload: new Uint8Array(10) });
    expect(a.checkpoints.length).toBe(0);
    const self = selfReport();
    for (const k of ['memoryMb', 'diskMb', 'gpus'] as const) {
      expect(Number.isInteger(a[k]) && a[k] >= 0).toBe(true);
      expect(Number.isInteger(self[k])).toBe(true);
    }
  });
});
