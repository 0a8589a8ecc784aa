/**
 * The broker's membership version moves only when the pool changes: a miner joining, leaving,
 * draining, resuming, or advertising something new. A miner repeating its advertisement (the same
 * tier, slots, DServices and resources) leaves it as it was, so it cannot force placement rounds.
 */
import { describe, expect, it } from 'vitest';
import { brokerHarness as harness } from './testing.js';

describe('Broker membership version', () => {
  it('does not move when a miner re-advertises the same thing, and moves on every real change', () => {
    const h = harness();
    const v = () => h.broker.membershipVersion;
    h.broker.addMiner('m1', h.ad(2));
    const joined = v();
    expect(joined).toBeGreaterThan(0);
    for (let i = 0; i < 100; i++) h.broker.addMiner('m1', h.ad(2));
    expect(v()).toBe(joined);

    h.broker.addMiner('m1', h.ad(3));
    expect(v()).toBe(joined + 1);
    const more = h.ad(3);
    h.broker.addMiner('m1', { ...more, resources: { ...more.resources, cpus: more.resources.cpus + 1 } });
    expect(v()).toBe(joined + 2);
    h.broker.addMiner('m1', { ...more, resources: { ...more.resources, cpus: more.resources.cpus + 1 }, region: 'eu-west' });
    expect(v()).toBe(joined + 3);

    h.broker.drainMiner('m1');
    expect(v()).toBe(joined + 4);
    // The same advertisement again resumes a drained miner: that is a change.
    h.broker.addMiner('m1', { ...more, resources: { ...more.resources, cpus: more.resources.cpus + 1 }, region: 'eu-west' });
    expect(v()).toBe(joined + 5);
    h.broker.removeMiner('m1', 'gone');
    expect(v()).toBe(joined + 6);
  });
});
