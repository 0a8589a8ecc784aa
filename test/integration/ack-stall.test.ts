/**
 * The node's ack sweep after its own event loop stalled: an ack that arrived during the stall lies
 * in the socket unread, and must be read before the miner is judged (the sweep runs after the
 * poll phase). The stall is the condition under test: this process runs the node, so blocking it
 * is how a loaded machine looks to the node.
 */
import { describe, expect, it } from 'vitest';
import { frame } from '@cgn/protocol';
import { ScriptedMiner, minersOf, startTestNode, waitFor } from './harness.js';

describe("a miner's ack that arrives while the node's event loop is stalled", () => {
  it('is read before the sweep judges the miner, which stays', async () => {
    const ackTimeoutMs = 300;
    const t = await startTestNode({ broker: { ackTimeoutMs } });
    const m = new ScriptedMiner({ ack: false, answer: false, slots: 1 });
    await m.connect(t.node.minerUrl);
    try {
      await waitFor(() => minersOf(t.node).length === 1, 'the miner to join');
      const res = fetch(t.url('echo'), { method: 'POST', body: 'stalled', headers: { authorization: `Bearer ${t.apiKey}`, 'cgn-deadline-ms': '10000' } });
      await waitFor(() => m.workIds().length === 1, 'the work to reach the miner');
      const id = m.workIds()[0]!;
      // One synchronous block: the miner acks and answers (the frames reach the node's socket at
      // once), then the node's loop is held for twice its ack timeout, past the miner's deadline
      // (not measured yet: the base) and past hearing from it within that base.
      m.send(frame({ t: 'ack', id }));
      m.answerPending();
      const until = performance.now() + 2 * ackTimeoutMs;
      while (performance.now() < until);
      const answer = await res;
      expect(answer.status).toBe(200);
      expect(await answer.text()).toBe('stalled');
      expect(m.ws.readyState).toBe(m.ws.OPEN);
      expect(t.node.broker.snapshot().counters.minersLost).toBe(0);
    } finally {
      m.ws.close();
      await t.cleanup();
    }
  });
});
