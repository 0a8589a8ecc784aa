import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame } from '@cgn/protocol';
import { ScriptedMiner, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type TestNode } from './harness.js';

describe('heartbeats (one wheel for all tunnels)', () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode({ heartbeatMs: 100 });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('pings an idle miner about every other interval, and drops one silent for 3 intervals', async () => {
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
    expect(mutePings).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 1000 - silentFor % 1000));
    const pings = live.received.filter((f) => f.t === 'ping').length - pingsBefore;
    const elapsed = Date.now() - silentSince;
    // The visit after a ping finds the ping sent and its pong heard, so an idle miner is pinged every other visit.
    expect(pings).toBeGreaterThanOrEqual(Math.floor(elapsed / 200) - 3);
    expect(pings).toBeLessThanOrEqual(Math.ceil(elapsed / 200) + 2);
    await waitFor(() => !minersOf(t.node).some((m) => m.id === mute.id), 'the silent miner left the pool');
    expect(minersOf(t.node).some((m) => m.id === live.id)).toBe(true);
    live.ws.close();
  });

  it('a real idle miner, pinged every other interval, keeps its tunnel (its own watchdog wants a frame every 3)', async () => {
    const dir = tempDir();
    const miner = spawnMiner(t.node.minerUrl, dir.path, { name: 'idle' });
    try {
      await waitFor(() => minersOf(t.node).some((m) => m.id === miner.id), 'the real miner joined');
      const tunnels = () => (t.node.status() as { counters: { tunnels: { pings: number } } }).counters.tunnels;
      const from = tunnels().pings;
      // About 40 intervals: each ping in turn goes to it and the scripted miners still connected.
      await waitFor(() => tunnels().pings - from >= 20, 'twenty more pings', 30_000);
      expect(miner.stderr(), 'the miner log').not.toMatch(/tunnel is dead|heartbeat lost/);
      expect(miner.stderr().match(/connected to the node/g)).toHaveLength(1);
      expect(minersOf(t.node).some((m) => m.id === miner.id)).toBe(true);
    } finally {
      miner.kill();
      await miner.exited;
      dir.cleanup();
    }
  });

  it('does not ping a miner that keeps talking and is answered (its traffic is the heartbeat)', async () => {
    const chatty = new ScriptedMiner({ ack: true, answer: true });
    await chatty.connect(t.node.minerUrl);
    const pongsBefore = chatty.received.filter((f) => f.t === 'pong').length;
    const pingsBefore = chatty.received.filter((f) => f.t === 'ping').length;
    // It pings the node every 30 ms: the node hears it and answers, so neither side is ever quiet for 1.5 intervals.
    const timer = setInterval(() => chatty.send(frame({ t: 'ping', ts: Date.now() })), 30);
    try {
      await waitFor(() => chatty.received.filter((f) => f.t === 'pong').length - pongsBefore >= 20, 'twenty pongs (six intervals)');
    } finally {
      clearInterval(timer);
    }
    expect(chatty.received.filter((f) => f.t === 'ping').length - pingsBefore).toBe(0);
    // Once quiet, it is pinged again.
    await waitFor(() => chatty.received.filter((f) => f.t === 'ping').length > pingsBefore, 'a ping once the miner is quiet');
    chatty.ws.close();
  });
});
