import { describe, expect, it } from 'vitest';
import { brokerHarness as harness } from './testing.js';

describe('Broker: a drained miner that advertises again', () => {
  it('is back in the pool and takes the work that queued while it was out', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(2));
    const a = h.submit();
    h.broker.drainMiner('m1');
    const b = h.submit();
    expect(h.workSentTo('m1')).toEqual([a]);
    expect(h.broker.snapshot().miners[0]).toMatchObject({ id: 'm1', draining: true });
    h.broker.onResult('m1', h.result(a));
    expect(h.outcomes.get(a)?.kind).toBe('result');

    h.broker.addMiner('m1', h.ad(2));
    expect(h.broker.snapshot().miners[0]).toMatchObject({ id: 'm1', draining: false });
    expect(h.workSentTo('m1')).toEqual([a, b]);
    h.broker.onResult('m1', h.result(b));
    expect(h.outcomes.get(b)?.kind).toBe('result');
  });
});
