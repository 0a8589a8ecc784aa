/**
 * Placement for work of accounts limited to data regions: instances start in those regions, an
 * instance starting elsewhere is no answer for them, and work without regions makes the demand
 * "anywhere" again.
 */
import { describe, expect, it } from 'vitest';
import { parseDescriptor, type Frame, type OutgoingFrame } from '@cgn/protocol';
import { PlacementController, type ConnectedMiner, type DemandRegions } from './controller.js';
import { resolvePlacementOptions } from './options.js';

const DIGEST = 'a'.repeat(64);
const echo = parseDescriptor({ name: 'echo', version: '0.1.0', entry: 'server.js', developer: 'dev-1', resources: { cpus: 1, memoryMb: 64 }, concurrency: 4 });

const minerIn = (id: string, region?: string): ConnectedMiner => ({
  id, tier: 'open', dservices: [], draining: false,
  advert: { tier: 'open', slots: 4, dservices: [], resources: { cpus: 4, memoryMb: 4096 }, ...(region !== undefined ? { region } : {}) },
});

function setup() {
  let now = 1_000_000;
  const miners: ConnectedMiner[] = [];
  const sent: { to: string; f: OutgoingFrame }[] = [];
  let waiting: DemandRegions = { anywhere: false, regions: [] };
  let depth = 0;
  const c = new PlacementController(
    {
      clock: { now: () => now },
      miners: () => miners,
      dservices: () => [echo],
      packages: { packageOf: () => ({ digest: DIGEST, sizeBytes: 1000, packagePath: `/v1/packages/${DIGEST}` }) },
      queueOf: () => ({ depth, oldestMs: 0 }),
      inFlightOf: () => 0,
      send: (to, f) => sent.push({ to, f }),
      log: () => {},
      defaultTier: 'open',
      timers: { setInterval: () => 0, clearInterval: () => {} },
      regionsWaiting: () => waiting,
    },
    resolvePlacementOptions({ autoscale: { idleToZeroMs: 30_000 }, coldStartTimeoutMs: 20_000, probe: false }),
  );
  const places = () => sent.filter((s) => s.f.t === 'place').map((s) => ({ to: s.to, f: s.f as Extract<Frame, { t: 'place' }> }));
  return {
    c, miners, places,
    advance: (ms: number) => (now += ms),
    setWaiting: (w: DemandRegions, d: number) => ((waiting = w), (depth = d)),
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

  it('the queue\'s waiting accounts shape the demand: all fenced to eu places in eu; work anywhere again places anywhere', () => {
    const s = setup();
    s.miners.push(minerIn('a-us', 'us'), minerIn('z-eu', 'eu'));
    s.setWaiting({ anywhere: false, regions: ['eu'] }, 3);
    s.c.tick();
    expect(s.places().map((p) => p.to)).toEqual(['z-eu']);
    // Past the region memory, with work of an account without regions waiting: anywhere.
    s.advance(61_000);
    s.setWaiting({ anywhere: true, regions: [] }, 30);
    s.c.tick();
    expect(s.places().slice(1).every((p) => p.to === 'a-us' || p.to === 'z-eu')).toBe(true);
    expect(s.places().some((p) => p.to === 'a-us')).toBe(true);
  });
});
