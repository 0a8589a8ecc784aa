import { describe, expect, it } from 'vitest';
import { ReputationNotifier, standingMessage, type MinerStanding } from './reputation-notices.js';

describe('reputation notices to miners', () => {
  it('says what the node counted for the miner', () => {
    expect(standingMessage('n1', { id: 'm', completed: 0, failed: 0, latencyMs: null })).toBe('node n1: 0 units completed, 0 failed here (no units yet); latency not measured yet');
    expect(standingMessage('n1', { id: 'm', completed: 99, failed: 1, latencyMs: 12.345 })).toBe('node n1: 99 units completed, 1 failed here (99.0% answered); latency 12.3 ms');
  });

  it('sends only when the figures changed, never unchanged again, and again after the miner left and came back', () => {
    let miners: MinerStanding[] = [{ id: 'a', completed: 1, failed: 0, latencyMs: 5 }, { id: 'b', completed: 0, failed: 0, latencyMs: null }];
    const sent: [string, string][] = [];
    const r = new ReputationNotifier({ nodeId: 'n1', miners: () => miners, send: (id, msg) => sent.push([id, msg]) });
    expect(r.check()).toBe(2);
    for (let i = 0; i < 20; i++) expect(r.check()).toBe(0);
    // A latency change below what the message shows is no news; one it shows is.
    miners = [{ id: 'a', completed: 1, failed: 0, latencyMs: 5.01 }, miners[1]!];
    expect(r.check()).toBe(0);
    miners = [{ id: 'a', completed: 2, failed: 0, latencyMs: 5.01 }, miners[1]!];
    expect(r.check()).toBe(1);
    expect(sent.at(-1)).toEqual(['a', expect.stringContaining('2 units completed')]);
    // b left (its tunnel closed): forgotten; when it comes back it hears its standing again.
    r.forget('b');
    expect(r.tracked).toBe(1);
    expect(r.check()).toBe(1);
    expect(sent.at(-1)![0]).toBe('b');
    expect(r.tracked).toBe(2);
  });
});
