/**
 * Graceful drain: a node told to stop finishes the work it owns and takes no new work.
 */
import { describe, expect, it } from 'vitest';
import { ScriptedMiner, startTestNode, waitFor } from './harness.js';

describe('node drain', () => {
  it('finishes in-flight work, refuses new work, then closes the miner tunnels', async () => {
    const t = await startTestNode();
    const m = new ScriptedMiner({ ack: true, answer: false });
    await m.connect(t.node.minerUrl);
    await waitFor(() => t.node.broker.snapshot().miners.length === 1, 'the miner to join');
    const inflight = fetch(t.url('echo'), { method: 'POST', body: 'in flight', headers: { authorization: `Bearer ${t.apiKey}` } });
    await waitFor(() => m.workIds().length === 1, 'the miner to get the work');

    const stopped = t.node.stop(10_000);
    // New work on an open connection is refused with 503 while draining (or the socket is closed).
    const late = await fetch(t.url('echo'), { method: 'POST', body: 'late', headers: { authorization: `Bearer ${t.apiKey}` } }).then(
      (r) => r.status,
      () => 'refused',
    );
    expect([503, 'refused']).toContain(late);

    m.answerPending();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('in flight');
    await stopped;
    const closed = await m.closed;
    expect(closed.code).toBe(1001);
    expect(m.received.some((f) => f.t === 'drain')).toBe(true);
    await t.cleanup();
  });
});
