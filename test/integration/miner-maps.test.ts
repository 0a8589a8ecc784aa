/**
 * What the node keeps per miner goes when the miner leaves: miners' ids are anyone's fresh keys,
 * so a map keyed by them that only grows is a memory leak a stranger can drive. Here: the payout
 * addresses the node registered (kept so an unchanged address is not registered again on every
 * advertisement) return to none once the miners that gave them are gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO, ScriptedMiner, minersOf, startTestNode, waitFor, type TestNode } from './harness.js';

describe('per-miner state of the node', () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode({ dservices: [ECHO], placement: { enabled: false, probe: false } });
  });
  afterAll(async () => t?.cleanup());

  const kept = () => (t.node.status() as { payoutAddressesKept: number }).payoutAddressesKept;

  it('forgets a miner\'s payout address when it leaves', async () => {
    const miners = Array.from({ length: 8 }, (_, i) => new ScriptedMiner({ ack: true, answer: true, advert: { payoutAddress: `0x${(i + 1).toString(16).padStart(40, '0')}` } }));
    for (const m of miners) await m.connect(t.node.minerUrl);
    await waitFor(() => kept() === 8, `the 8 payout addresses to be registered (kept: ${kept()})`);
    for (const m of miners) m.ws.close();
    await waitFor(() => minersOf(t.node).length === 0, 'the miners to be gone');
    expect(kept()).toBe(0);
  });
});
