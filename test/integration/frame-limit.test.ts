/**
 * The node announces its tunnel frame limit in welcome, and it is the limit it holds to: a result
 * whose body leaves exactly the room `resultFits` keeps for the rest of the frame reaches the
 * client whole, over the real node's tunnel, and the miner stays connected.
 */
import { describe, expect, it } from 'vitest';
import { RESULT_FRAME_ROOM_BYTES, resultFits, type WelcomeFrame } from '@cgn/protocol';
import { ScriptedMiner, minersOf, startTestNode, waitFor } from './harness.js';

describe('tunnel frame limit', () => {
  it('is announced in welcome, and the largest result that fits by it is carried', async () => {
    const t = await startTestNode();
    let largest = 0;
    const m = new ScriptedMiner({ ack: true, answer: true, tamper: () => new Uint8Array(largest).fill(1) });
    try {
      await m.connect(t.node.minerUrl);
      const welcome = m.received.find((f): f is WelcomeFrame => f.t === 'welcome');
      expect(welcome?.maxFrameBytes).toBeGreaterThanOrEqual(11 * 1024 * 1024); // the descriptor default body, and a frame around it
      largest = welcome!.maxFrameBytes! - RESULT_FRAME_ROOM_BYTES;
      expect(resultFits(largest, welcome!.maxFrameBytes!)).toBe(true);
      await waitFor(() => minersOf(t.node).length === 1, 'the miner in the pool');
      const res = await fetch(t.url('echo', '/'), { method: 'POST', body: 'x', headers: { authorization: `Bearer ${t.apiKey}` } });
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(largest);
      expect(minersOf(t.node)).toHaveLength(1);
    } finally {
      m.ws.close();
      await t.cleanup();
    }
  });
});
