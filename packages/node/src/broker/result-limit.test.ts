import { describe, expect, it } from 'vitest';
import { brokerHarness } from './testing.js';

describe('a result larger than its DService may answer with', () => {
  const limits: Record<string, number> = { echo: 1024 };
  const harness = () => brokerHarness({}, { maxResultBytesOf: (d) => limits[d] });

  it('fails the unit with 502 naming the limit and the size, and the miner takes the next unit', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(1));
    const big = h.submit();
    const next = h.submit();
    expect(h.workSentTo('m1')).toEqual([big]);
    h.broker.onResult('m1', h.result(big, 200, new Uint8Array(1025)));
    const o = h.outcomes.get(big);
    expect(o?.kind).toBe('error');
    if (o?.kind !== 'error') return;
    expect(o.error.code).toBe('miner_failed');
    expect(o.error.httpStatus).toBe(502);
    expect(o.error.message).toContain('1025 bytes');
    expect(o.error.message).toContain('maxBodyBytes 1024');
    expect(o.error.details).toEqual({ limit: 1024, bytes: 1025 });
    // The slot is free again: the queued unit went to the miner, and its in-limit result passes.
    expect(h.workSentTo('m1')).toEqual([big, next]);
    h.broker.onResult('m1', h.result(next, 200, new Uint8Array(1024)));
    expect(h.outcomes.get(next)?.kind).toBe('result');
    expect(h.broker.snapshot().miners[0]!.failed).toBe(1);
  });

  it('a DService without a known limit is bounded only by the tunnel', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(1, ['other']));
    const id = h.submit({ dservice: 'other' });
    h.broker.onResult('m1', h.result(id, 200, new Uint8Array(4096)));
    expect(h.outcomes.get(id)?.kind).toBe('result');
  });
});
