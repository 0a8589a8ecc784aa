/**
 * The controller with a real miner (real echo DService) against a test peer playing the node,
 * its clock and its /proc/stat readings injected: "only while idle" pauses the miner once the
 * owner is busy long enough and resumes it once idle long enough; a time window holds it; the CPU
 * ceiling lowers the advertised slots; the owner's pause wins; stop and start keep the counts.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, type AdvertiseFrame, type Frame, type WorkFrame } from '@cgn/protocol';
import { startMiner, type Miner, type MinerOptions } from '../index.js';
import { NodePeer, type PeerConn } from '../../test/node-peer.js';
import { ECHO, ensureEchoBuilt, silent, tempDir } from '../../test/fixtures.js';
import { MinerController } from './controller.js';
import type { CpuTimes } from './idle.js';

const tmp = tempDir();
let peer: NodePeer;
let conn: PeerConn;
let controller: MinerController;
const started: Miner[] = [];

// Injected time and CPU: each tick advances the clock by 1 s and the CPU counters by 2 CPU-seconds,
// `busyShare` of them busy.
let now = new Date(2026, 11, 7, 12, 0, 0).getTime();
let cpu: CpuTimes = { totalMs: 0, idleMs: 0 };
let busyShare = 0;
function tick(times = 1): void {
  for (let i = 0; i < times; i++) {
    now += 1000;
    cpu = { totalMs: cpu.totalMs + 2000, idleMs: cpu.idleMs + 2000 * (1 - busyShare) };
    controller.tick();
  }
}
const after = (from: number, pred: (f: Frame) => boolean): Promise<Frame> => conn.waitFrame(pred, 20_000, from);

const options = (): MinerOptions => ({ nodeUrl: peer.url, keyFile: join(tmp.path, 'key.pem'), dservices: [ECHO], sandbox: 'none', logger: silent(), reconnectBaseMs: 20, reconnectCapMs: 200 });

beforeAll(async () => {
  ensureEchoBuilt();
  peer = new NodePeer({ heartbeatMs: 1000 });
  await peer.start();
  const next = peer.next();
  const miner = await startMiner(options());
  started.push(miner);
  conn = await next;
  await conn.advertised();
  controller = new MinerController({
    miner,
    restart: async () => {
      const m = await startMiner(options());
      started.push(m);
      return m;
    },
    settingsFile: join(tmp.path, 'key.pem.control.json'),
    cpus: 4,
    now: () => now,
    readCpu: () => cpu,
    ownCpuMs: () => 0,
    busyAfterMs: 3000,
    idleAfterMs: 5000,
  });
  tick();
});

afterAll(async () => {
  controller?.close();
  await Promise.all(started.map((m) => m.stop()));
  await peer?.stop();
  tmp.cleanup();
});

describe('MinerController', () => {
  it('only while idle: paused after the owner is busy long enough, resumed after idle long enough', async () => {
    controller.updateSettings({ onlyWhenIdle: true, idleThresholdPct: 30 });
    busyShare = 0.8;
    tick(2);
    expect(controller.status()).toMatchObject({ hold: null, state: 'connected' });
    const from = conn.frames.length;
    tick(2);
    expect(controller.status()).toMatchObject({ hold: 'busy', state: 'paused', reason: expect.stringMatching(/using the machine \(80% CPU\)/) });
    expect(controller.status().dservices).toMatchObject([{ name: 'echo', advertised: false }]);
    await after(from, (f) => f.t === 'drain');

    busyShare = 0.1;
    tick(4);
    expect(controller.status().hold).toBe('busy');
    const from2 = conn.frames.length;
    tick(2);
    expect(controller.status()).toMatchObject({ hold: null, state: 'connected' });
    await after(from2, (f) => f.t === 'advertise');
    controller.updateSettings({ onlyWhenIdle: false });
  });

  it("a time window holds it outside, and the owner's pause wins inside", async () => {
    const from = conn.frames.length;
    controller.updateSettings({ windows: ['22:00-07:00'] });
    expect(controller.status()).toMatchObject({ hold: 'schedule', reason: 'outside its time windows (22:00-07:00)' });
    await after(from, (f) => f.t === 'drain');
    now = new Date(2026, 11, 7, 23, 0, 0).getTime();
    tick();
    expect(controller.status().hold).toBe(null);
    controller.pause();
    expect(controller.status().hold).toBe('owner');
    tick();
    expect(controller.status().hold).toBe('owner');
    controller.resume();
    controller.updateSettings({ windows: [] });
    expect(controller.status()).toMatchObject({ hold: null, state: 'connected' });
  });

  it('the CPU ceiling lowers the advertised slots; 100% lifts it', async () => {
    const from = conn.frames.length;
    controller.updateSettings({ cpuCeilingPct: 25 });
    // 25% of 4 CPUs = 1 CPU: one echo unit (echo declares 1 CPU per unit).
    // (An advertisement of the resume before may still be on its way: wait for the capped one.)
    const ad = (await after(from, (f) => f.t === 'advertise' && f.slots === 1)) as AdvertiseFrame;
    expect(ad.dservices).toMatchObject([{ name: 'echo', slots: 1 }]);
    expect(controller.status().slots.advertised).toBe(1);
    const from2 = conn.frames.length;
    controller.updateSettings({ cpuCeilingPct: 100 });
    const full = (await after(from2, (f) => f.t === 'advertise' && f.slots > 1)) as AdvertiseFrame;
    expect(full.slots).toBe(controller.status().slots.configured);
    expect(controller.status().slots.advertised).toBe(full.slots);
  });

  it('stop and start: the work done carries over', async () => {
    const from = conn.frames.length;
    conn.send(frame({ t: 'work', id: 'w1', dservice: 'echo', method: 'POST', path: '/', headers: [], body: new Uint8Array(1), timeoutMs: 10_000 }) as WorkFrame);
    await after(from, (f) => f.t === 'result');
    expect(controller.status().work.byDService['echo']).toBe(1);
    await controller.stop();
    expect(controller.status().state).toBe('stopped');
    expect(() => controller.pause()).toThrow(/stopped/);
    const next = peer.next();
    await controller.startMiner();
    conn = await next;
    await conn.advertised();
    expect(() => controller.startMiner()).toThrow(/already/);
    // Metrics and the console read `current`: it follows the new miner.
    const seen: string[] = [];
    controller.current.on('work-done', (w) => seen.push(w.id));
    expect(controller.current.status().minerId).toBe(controller.miner!.minerId);
    const from2 = conn.frames.length;
    conn.send(frame({ t: 'work', id: 'w2', dservice: 'echo', method: 'POST', path: '/', headers: [], body: new Uint8Array(1), timeoutMs: 10_000 }) as WorkFrame);
    await after(from2, (f) => f.t === 'result');
    expect(controller.status().work).toMatchObject({ total: 2, byDService: { echo: 2 } });
    expect(seen).toEqual(['w2']);
    expect(controller.current.status().connected).toBe(true);
  });
});
