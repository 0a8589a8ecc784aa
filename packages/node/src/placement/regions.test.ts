/**
 * Placement for work of accounts limited to data regions: instances start in those regions, an
 * instance starting elsewhere is no answer for them, and fenced and unfenced work of one DService
 * are demanded in parts, each fence getting its instances in its regions.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDescriptor, type Frame, type OutgoingFrame } from '@cgn/protocol';
import { PlacementController, type ConnectedMiner, type HeldFence } from './controller.js';
import { resolvePlacementOptions } from './options.js';

const DIGEST = 'a'.repeat(64);
const echoOf = (max?: number) => parseDescriptor({ name: 'echo', version: '0.1.0', entry: 'server.js', developer: 'dev-1', resources: { cpus: 1, memoryMb: 64 }, concurrency: 4, ...(max !== undefined ? { instances: { max } } : {}) });

const minerIn = (id: string, region?: string): ConnectedMiner => ({
  id, tier: 'open', dservices: [], draining: false,
  advert: { tier: 'open', slots: 4, dservices: [], resources: { cpus: 4, memoryMb: 4096 }, ...(region !== undefined ? { region } : {}) },
});

function setup(max?: number, idleToZeroMs = 30_000) {
  const echo = echoOf(max);
  let now = 1_000_000;
  const miners: ConnectedMiner[] = [];
  const sent: { to: string; f: OutgoingFrame }[] = [];
  let waiting: HeldFence[] | null = null;
  let depth = 0;
  const c = new PlacementController(
    {
      clock: { now: () => now },
      miners: () => miners,
      dservices: () => [echo],
      packages: { packageOf: () => ({ digest: DIGEST, sizeBytes: 1000, packagePath: `/v1/packages/${DIGEST}` }) },
      queueOf: (_d, t) => ({ depth: t === 'open' ? depth : 0, oldestMs: 0 }),
      inFlightOf: () => 0,
      send: (to, f) => sent.push({ to, f }),
      log: () => {},
      defaultTier: 'open',
      timers: { setInterval: () => 0, clearInterval: () => {} },
      fencesWaiting: (_d, t) => (t === 'open' ? waiting : null),
    },
    resolvePlacementOptions({ autoscale: { idleToZeroMs }, coldStartTimeoutMs: 20_000, probe: false }),
  );
  const places = () => sent.filter((s) => s.f.t === 'place').map((s) => ({ to: s.to, f: s.f as Extract<Frame, { t: 'place' }> }));
  const unplaces = () => sent.filter((s) => s.f.t === 'unplace');
  return {
    c, miners, places, unplaces,
    advance: (ms: number) => (now += ms),
    setWaiting: (w: HeldFence[] | null, d: number) => ((waiting = w), (depth = d)),
  };
}

describe('placement in the account\'s regions', () => {
  it('a request of an account limited to eu starts its instance on the eu miner, not on the others', () => {
    const s = setup();
    // Ids sort the outside miners first: without the fence the scheduler's tie-break would pick one.
    s.miners.push(minerIn('a-us', 'us-east'), minerIn('b-none'), minerIn('z-eu', 'eu-west'));
    const v = s.c.wake('echo', 'open', ['eu']);
    expect(s.places().map((p) => p.to)).toEqual(['z-eu']);
    expect(v).toMatchObject({ state: 'placing', minerId: 'z-eu' });
  });

  it('an instance starting outside the regions is no answer for fenced work; nowhere to place in them is blocked, naming the regions', () => {
    const s = setup();
    s.miners.push(minerIn('a-us', 'us-east'));
    s.c.wake('echo', 'open'); // work without regions: placed on the us miner
    expect(s.places().map((p) => p.to)).toEqual(['a-us']);
    expect(s.c.view('echo', 'open')).toMatchObject({ state: 'placing' });
    const fenced = s.c.view('echo', 'open', ['ap']);
    expect(fenced).toMatchObject({ state: 'blocked', reason: 'no_eligible_miner', blocking: 'region' });
    expect((fenced as { message: string }).message).toMatch(/in the account's regions \(ap\)/);
  });

  it('fenced and unfenced work waiting together: an instance in the fence\'s regions, and one anywhere', () => {
    const s = setup();
    s.miners.push(minerIn('a-us', 'us'), minerIn('z-eu', 'eu-west'));
    s.setWaiting([{ regions: ['eu'], queued: 3, running: 0, oldestMs: 10 }, { regions: null, queued: 3, running: 0, oldestMs: 10 }], 6);
    s.c.tick();
    const places = s.places();
    expect(places).toHaveLength(2);
    const fenced = s.c.instances().filter((i) => i.minerId === 'z-eu');
    expect(fenced).toHaveLength(1);
    expect(places.map((p) => p.to).sort()).toEqual(['a-us', 'z-eu']);
    // Both instances count: the same waiting work asks for nothing more.
    s.c.tick();
    expect(s.places()).toHaveLength(2);
  });

  it('with room for one instance only, the fence gets it (work without regions may run on it too)', () => {
    const s = setup(1);
    // The outside miner sorts first: placed anywhere, the instance would land there.
    s.miners.push(minerIn('a-us', 'us'), minerIn('z-eu', 'eu'));
    s.setWaiting([{ regions: null, queued: 3, running: 0, oldestMs: 5000 }, { regions: ['eu'], queued: 1, running: 0, oldestMs: 10 }], 4);
    s.c.tick();
    expect(s.places().map((p) => p.to)).toEqual(['z-eu']);
  });

  it('with miners only inside the fence, the instance started for anywhere stays anywhere\'s: no start after start', () => {
    const s = setup();
    s.miners.push(minerIn('eu1', 'eu-west'), minerIn('eu2', 'eu-west'), minerIn('eu3', 'eu-north'));
    s.setWaiting([{ regions: ['eu'], queued: 3, running: 0, oldestMs: 10 }, { regions: null, queued: 3, running: 0, oldestMs: 10 }], 6);
    s.c.tick();
    expect(s.places()).toHaveLength(2);
    for (let round = 0; round < 5; round++) {
      for (const p of s.places()) s.miners.find((m) => m.id === p.to)!.dservices = ['echo']; // ready
      s.advance(1000);
      s.c.tick();
    }
    // Counted by where they sit, both would be the fence's, and the anywhere demand would start one
    // more each round up to maxInstances.
    expect(s.places()).toHaveLength(2);
    expect(s.unplaces()).toEqual([]);
  });

  it('many fences: at most 16 parts of their own and one union of the rest; every start inside a fence', () => {
    const s = setup(40);
    const regions = Array.from({ length: 24 }, (_, i) => `r${String(i).padStart(2, '0')}`);
    for (const r of regions) s.miners.push(minerIn(`m-${r}`, `${r}-1`));
    s.miners.push(minerIn('a-none'));
    // r00-r07 have the least work (one unit each, the others 2-4; an instance takes 4 at once).
    s.setWaiting(regions.map((r, i) => ({ regions: [r], queued: i < 8 ? 1 : 2 + (i % 3), running: 0, oldestMs: 5 })), 60);
    s.c.tick();
    const places = s.places();
    expect(places.map((p) => p.to)).not.toContain('a-none');
    // 16 own parts, one instance each, and the union of the 8 least loaded (8 units: two instances in its regions).
    expect(places).toHaveLength(18);
    for (const r of regions.slice(8)) expect(places.map((p) => p.to)).toContain(`m-${r}`);
    expect(places.filter((p) => regions.slice(0, 8).some((r) => p.to === `m-${r}`))).toHaveLength(2);
  });

  it('a fence whose work went keeps its instance past the region memory, until its own idle rule stops it', () => {
    const s = setup(undefined, 120_000);
    s.miners.push(minerIn('z-eu', 'eu'));
    s.setWaiting([{ regions: ['eu'], queued: 1, running: 0, oldestMs: 0 }], 1);
    s.c.tick();
    expect(s.places().map((p) => p.to)).toEqual(['z-eu']);
    s.miners[0]!.dservices = ['echo']; // ready
    s.setWaiting(null, 0);
    for (let t = 0; t < 11; t++) {
      s.advance(10_000);
      s.c.tick();
    }
    expect(s.c.instances()).toMatchObject([{ minerId: 'z-eu', state: 'ready' }]); // 110 s: past the 60 s region memory
    expect(s.unplaces()).toEqual([]);
    s.advance(10_000); // 120 s idle
    s.c.tick();
    expect(s.unplaces()).toHaveLength(1);
    expect(s.c.instances()).toEqual([]);
    // The fence and its last request are forgotten in the rounds after.
    s.c.tick();
    s.c.tick();
    expect(s.c.keptSizes().lastRequest).toBe(0);
  });

  it('property: after one round, every fence with work has an instance starting in its regions when a miner there can take one, and at most maxInstances start', () => {
    const REGIONS = ['eu', 'us', 'ap', 'sa'];
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.subarray(REGIONS),
        fc.uniqueArray(fc.constantFrom(...REGIONS), { maxLength: 4 }),
        fc.boolean(),
        fc.boolean(),
        (max, hosted, fences, anywhere, outside) => {
          fc.pre(fences.length + (anywhere ? 1 : 0) <= max);
          const s = setup(max);
          for (const r of hosted) s.miners.push(minerIn(`m-${r}`, `${r}-1`));
          if (outside) s.miners.push(minerIn('a-none')); // no region: sorts first, takes no fenced instance
          const held: HeldFence[] = fences.map((r) => ({ regions: [r], queued: 2, running: 0, oldestMs: 5 }));
          if (anywhere) held.push({ regions: null, queued: 2, running: 0, oldestMs: 5 });
          s.setWaiting(held, held.length * 2);
          s.c.tick();
          const places = s.places();
          expect(places.length).toBeLessThanOrEqual(max);
          for (const r of fences) if (hosted.includes(r)) expect(places.map((p) => p.to)).toContain(`m-${r}`);
          if (anywhere && (hosted.length > 0 || outside)) expect(places.length).toBeGreaterThanOrEqual(1);
        },
      ),
      { numRuns: 200 },
    );
  });
});
