import { describe, expect, it } from 'vitest';
import { ReputationNotifier, standingMessage, type MinerStanding } from './reputation-notices.js';

describe('reputation notices to miners', () => {
  it('says what the node counted for the miner', () => {
    expect(standingMessage('n1', { id: 'm', completed: 0, failed: 0, latencyMs: null })).toBe('node n1: 0 units completed, 0 failed here (no units yet); latency not measured yet');
    expect(standingMessage('n1', { id: 'm', completed: 99, failed: 1, latencyMs: 12.345 })).toBe('node n1: 99 units completed, 1 failed here (99.0% answered); latency 12.3 ms');
  });

  it('sends only when the figures changed, and forgets miners that left', () => {
    let miners: MinerStanding[] = [{ id: 'a', completed: 1, failed: 0, latencyMs: 5 }, { id: 'b', completed: 0, failed: 0, latencyMs: null }];
    const sent: [string, string][] = [];
    const r = new ReputationNotifier({ nodeId: 'n1', miners: () => miners, send: (id, msg) => sent.push([id, msg]), resendEvery: 3 });
    expect(r.check()).toBe(2);
    expect(r.check()).toBe(0);
    expect(r.check()).toBe(0);
    // Unchanged figures go again every third check.
    expect(r.check()).toBe(2);
    miners = [{ id: 'a', completed: 2, failed: 0, latencyMs: 5 }];
    expect(r.check()).toBe(1);
    expect(sent.at(-1)).toEqual(['a', expect.stringContaining('2 units completed')]);
    // b left; when it comes back it hears its standing again.
    miners = [...miners, { id: 'b', completed: 0, failed: 0, latencyMs: null }];
    expect(r.check()).toBe(1);
    expect(sent.at(-1)![0]).toBe('b');
  });
});
