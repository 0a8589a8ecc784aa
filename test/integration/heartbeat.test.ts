import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedMiner, minersOf, startTestNode, waitFor, type TestNode } from './harness.js';

describe('heartbeats (one wheel for all tunnels)', () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode({ heartbeatMs: 100 });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('pings each miner about once per interval, and drops one silent for 3 intervals', async () => {
    const live = new ScriptedMiner({ ack: true, answer: true });
    const mute = new ScriptedMiner({ ack: true, answer: true });
    await live.connect(t.node.minerUrl);
    await mute.connect(t.node.minerUrl);
    // From now on `mute` hears but never answers.
    mute.ws.removeAllListeners('message');
    const silentSince = Date.now();
    let mutePings = 0;
    mute.ws.on('message', () => mutePings++);
    const pingsBefore = live.received.filter((f) => f.t === 'ping').length;
    const closed = await mute.closed;
    const silentFor = Date.now() - silentSince;
    expect(silentFor).toBeGreaterThanOrEqual(300);
    expect(silentFor).toBeLessThan(1500);
    expect(closed.code).toBe(1006); // terminated, no close frame
    expect(mutePings).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 1000 - silentFor % 1000));
    const pings = live.received.filter((f) => f.t === 'ping').length - pingsBefore;
    const elapsed = Date.now() - silentSince;
    expect(pings).toBeGreaterThanOrEqual(Math.floor(elapsed / 100) - 3);
    expect(pings).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 2);
    await waitFor(() => !minersOf(t.node).some((m) => m.id === mute.id), 'the silent miner left the pool');
    expect(minersOf(t.node).some((m) => m.id === live.id)).toBe(true);
    live.ws.close();
  });
});
