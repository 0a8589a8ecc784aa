import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame } from '@cgn/protocol';
import { ScriptedMiner, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type TestNode } from './harness.js';

describe('heartbeats (one wheel for all tunnels; beating miners are not pinged)', () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode({ heartbeatMs: 100 });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const tunnels = () => (t.node.status() as { counters: { tunnels: { pings: number; beats: number; beatsSent: number; tooManyBeats: number } } }).counters.tunnels;

  it('pings an idle older miner (no beats in its hello) about every other interval, and drops one silent for 3 intervals', async () => {
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

  it('a real idle miner beats: the node never pings it, answers a beat now and then, and it keeps its tunnel', async () => {
    // A node of its own with a 250 ms interval: the miner beats every 500 ms, and a beat more than
    // two intervals late drops it (a process timer 100 ms late is common on a loaded test machine).
    const own = await startTestNode({ heartbeatMs: 250 });
    const dir = tempDir();
    const miner = spawnMiner(own.node.minerUrl, dir.path, { name: 'idle' });
    const counters = () => (own.node.status() as { counters: { tunnels: { pings: number; beats: number; beatsSent: number; heartbeatLost: number } } }).counters.tunnels;
    try {
      await waitFor(() => minersOf(own.node).some((m) => m.id === miner.id), 'the real miner joined');
      const from = { ...counters() };
      // 40 intervals (a beat every other one); the node answers a beat once nothing went to the miner for 10.
      await waitFor(() => counters().beats - from.beats >= 20, 'twenty beats', 60_000);
      await waitFor(() => counters().beatsSent - from.beatsSent >= 2, 'two beats from the node', 60_000);
      expect(counters().pings - from.pings).toBe(0);
      expect(counters().heartbeatLost).toBe(0);
      expect(miner.stderr(), 'the miner log').not.toMatch(/tunnel is dead|heartbeat lost/);
      expect(miner.stderr().match(/connected to the node/g)).toHaveLength(1);
      expect(minersOf(own.node).some((m) => m.id === miner.id)).toBe(true);
    } finally {
      miner.kill();
      await miner.exited;
      dir.cleanup();
      await own.cleanup();
    }
  });

  it('asks a miner that says it beats for beats, never pings it, and drops it once it stops for BEAT_DROP_INTERVALS (4) intervals', async () => {
    const beater = new ScriptedMiner({ ack: true, answer: true, beats: true });
    await beater.connect(t.node.minerUrl);
    const welcome = beater.received.find((f) => f.t === 'welcome');
    expect(welcome).toMatchObject({ beatMs: 200, heartbeatMs: 1300 });
    let lastBeatAt = 0;
    const timer = setInterval(() => {
      beater.send(frame({ t: 'beat' }));
      lastBeatAt = Date.now();
    }, 50);
    const from = tunnels().beats;
    try {
      await waitFor(() => tunnels().beats - from >= 20, 'twenty beats (ten intervals)');
    } finally {
      clearInterval(timer);
    }
    expect(beater.received.filter((f) => f.t === 'ping')).toHaveLength(0);
    expect(minersOf(t.node).some((m) => m.id === beater.id)).toBe(true);
    const closed = await beater.closed;
    // Dropped only once silent for more than 4 intervals (BEAT_DROP_INTERVALS) since its last beat.
    expect(Date.now() - lastBeatAt).toBeGreaterThanOrEqual(400);
    expect(closed.code).toBe(1006); // terminated, no close frame
    await waitFor(() => !minersOf(t.node).some((m) => m.id === beater.id), 'the silent miner left the pool');
  });

  it('closes the tunnel of a miner that beats more than 4 times an interval, saying why', async () => {
    const flood = new ScriptedMiner({ ack: true, answer: true, beats: true });
    await flood.connect(t.node.minerUrl);
    const before = tunnels().tooManyBeats;
    for (let i = 0; i < 10; i++) flood.send(frame({ t: 'beat' }));
    const closed = await flood.closed;
    expect(closed.code).toBe(4003);
    expect(closed.reason).toMatch(/too many heartbeats/);
    expect(flood.received.some((f) => f.t === 'error' && /too many heartbeats: more than 4 beats or pings/.test(f.message))).toBe(true);
    expect(tunnels().tooManyBeats - before).toBe(1);
  });

  it('does not ping a miner that keeps talking and is answered (its traffic is the heartbeat)', async () => {
    const chatty = new ScriptedMiner({ ack: true, answer: true });
    await chatty.connect(t.node.minerUrl);
    const pongsBefore = chatty.received.filter((f) => f.t === 'pong').length;
    const pingsBefore = chatty.received.filter((f) => f.t === 'ping').length;
    // It pings the node every 40 ms (at most 4 an interval are allowed): the node hears it and answers, so neither side is ever quiet for 1.5 intervals.
    const timer = setInterval(() => chatty.send(frame({ t: 'ping', ts: Date.now() })), 40);
    try {
      await waitFor(() => chatty.received.filter((f) => f.t === 'pong').length - pongsBefore >= 20, 'twenty pongs (eight intervals)');
    } finally {
      clearInterval(timer);
    }
    expect(chatty.received.filter((f) => f.t === 'ping').length - pingsBefore).toBe(0);
    // Once quiet, it is pinged again.
    await waitFor(() => chatty.received.filter((f) => f.t === 'ping').length > pingsBefore, 'a ping once the miner is quiet');
    chatty.ws.close();
  });
});
