/**
 * The placement controller with an injected clock and in-memory collaborators: what it sends to
 * miners for requests, advertisements, `placed` frames, idleness and departures. The decisions
 * themselves are the scheduler's (tested there); these tests pin the wiring around them.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseDescriptor, type Frame, type OutgoingFrame, type Tier } from '@cgn/protocol';
import { PlacementController, type ConnectedMiner, type PackageRef } from './controller.js';
import { resolvePlacementOptions, type PlacementOptionsInput } from './options.js';
import type { ProbeResult } from './probe-runner.js';
import type { ReputationInputs } from '@cgn/scheduler';

const DIGEST = 'a'.repeat(64);
const echo = parseDescriptor({ name: 'echo', version: '0.1.0', entry: 'server.js', developer: 'dev-1', resources: { cpus: 1, memoryMb: 64 }, concurrency: 4 });
const big = parseDescriptor({ name: 'big', version: '1', entry: 'server.js', resources: { cpus: 1, memoryMb: 100_000 } });

function minerOf(id: string, over: Partial<ConnectedMiner> & { cpus?: number; memoryMb?: number } = {}): ConnectedMiner {
  const { cpus, memoryMb, ...rest } = over;
  return { id, tier: 'open', dservices: [], draining: false, advert: { tier: 'open', slots: 4, dservices: [], resources: { cpus: cpus ?? 4, memoryMb: memoryMb ?? 4096 } }, ...rest };
}

/** A probe that measured what the miner claims. */
function provenAsClaimed(m: ConnectedMiner): ProbeResult {
  const r = m.advert.resources;
  return { ok: true, at: 0, measured: { cpus: r.cpus, memoryMb: r.memoryMb, diskMb: r.diskMb ?? 0, gpus: r.gpus ?? 0, bandwidthMbps: r.bandwidthMbps ?? 100 }, measurement: { cpus: r.cpus, hashesPerSec: 1, bandwidthMbps: 100, rttMs: 1 }, selfReported: ['memoryMb', 'diskMb', 'gpus'] };
}

function setup(opts: PlacementOptionsInput = {}, quiet?: () => { membership: number; work: number }) {
  let now = 1_000_000;
  let timer: (() => void) | null = null;
  const miners: ConnectedMiner[] = [];
  const sent: { to: string; f: OutgoingFrame }[] = [];
  const queues = new Map<string, number>();
  const probes = new Map<string, ProbeResult>();
  const reps = new Map<string, ReputationInputs>();
  const packages = new Map<string, PackageRef>([['echo', { digest: DIGEST, sizeBytes: 1000, packagePath: `/v1/packages/${DIGEST}` }], ['big', { digest: 'b'.repeat(64), sizeBytes: 10, packagePath: '/v1/packages/b' }]]);
  const c = new PlacementController(
    {
      clock: { now: () => now },
      miners: () => miners,
      dservices: () => [echo, big],
      packages: { packageOf: (n) => packages.get(n) ?? null },
      queueOf: (d, t) => ({ depth: queues.get(`${d}/${t}`) ?? 0, oldestMs: 0 }),
      inFlightOf: () => 0,
      send: (to, f) => sent.push({ to, f }),
      log: () => {},
      probes: { resultOf: (id) => probes.get(id), probe: () => {}, forget: () => {} },
      reputationOf: (id) => reps.get(id),
      defaultTier: 'open',
      timers: { setInterval: (fn) => (timer = fn), clearInterval: () => (timer = null) },
      ...(quiet !== undefined ? { quiet } : {}),
    },
    resolvePlacementOptions({ autoscale: { idleToZeroMs: 30_000 }, coldStartTimeoutMs: 20_000, ...opts }),
  );
  const frames = (t: Frame['t']) => sent.filter((s) => s.f.t === t) as { to: string; f: Extract<Frame, { t: typeof t }> }[];
  const places = () => sent.filter((s) => s.f.t === 'place').map((s) => ({ to: s.to, f: s.f as Extract<Frame, { t: 'place' }> }));
  /** The miner now advertises the DService (as a miner does once the placed instance is ready). */
  const advertises = (id: string, name: string) => {
    const m = miners.find((x) => x.id === id)!;
    m.dservices = [...m.dservices, name];
    m.advert = { ...m.advert, dservices: [...m.advert.dservices, { name, version: '0.1.0', digest: DIGEST }] };
  };
  /** What the started controller's interval timer would run. */
  const fireTimer = () => timer?.();
  return { c, miners, sent, queues, probes, reps, frames, places, advertises, fireTimer, advance: (ms: number) => (now += ms), at: () => now };
}

describe('placement controller', () => {
  it('believes no claim a failed probe leaves unproven, and scores no price floor (miners are paid the DService\'s price)', () => {
    const s = setup();
    const liar = minerOf('liar', { cpus: 64 });
    liar.advert = { ...liar.advert, priceFloor: 0, resources: { ...liar.advert.resources, gpus: 4, bandwidthMbps: 10_000 } };
    const honest = minerOf('honest');
    honest.advert = { ...honest.advert, priceFloor: 500 };
    s.probes.set('liar', { ok: false, at: s.at(), reason: 'timed out' });
    s.probes.set('honest', provenAsClaimed(honest));
    const [l, h] = s.c.minerViews([liar, honest]);
    expect(l!.measured).toMatchObject({ cpus: 1, gpus: 0, bandwidthMbps: 1 });
    expect(h!.measured).toMatchObject({ cpus: 4 });
    expect(l!.priceFloor).toBe(h!.priceFloor);
  });

  it('believes no claim while the probe is pending: an unprobed miner counts as the least it could be', () => {
    const s = setup();
    const liar = minerOf('liar', { cpus: 64 });
    liar.advert = { ...liar.advert, resources: { ...liar.advert.resources, gpus: 4, bandwidthMbps: 10_000 } };
    const [l] = s.c.minerViews([liar]);
    expect(l!.measured).toEqual({ cpus: 1, memoryMb: 4096, diskMb: 0, gpus: 0, bandwidthMbps: 1 });
    // With probes off (the operator's choice) nothing is measured and the claim stands.
    const deps = (s.c as unknown as { deps: ConstructorParameters<typeof PlacementController>[0] }).deps;
    const off = new PlacementController({ ...deps, probes: null }, s.c.options);
    expect(off.minerViews([liar])[0]!.measured).toBeUndefined();
  });

  it("skips the timer's rounds while nothing could change, and runs one when a miner joins, work arrives or a while has passed", () => {
    const q = { membership: 1, work: 0 };
    const s = setup({}, () => q);
    s.miners.push(minerOf('m1'));
    s.c.start();
    s.fireTimer();
    expect(s.c.counters).toMatchObject({ ticks: 1, skipped: 0 });
    s.advance(1000);
    s.fireTimer();
    s.advance(1000);
    s.fireTimer();
    expect(s.c.counters).toMatchObject({ ticks: 1, skipped: 2 });
    q.membership++; // a miner joined (or left, drained, advertised again)
    s.fireTimer();
    expect(s.c.counters).toMatchObject({ ticks: 2, skipped: 2 });
    q.work = 3; // requests held by the broker
    s.fireTimer();
    expect(s.c.counters.ticks).toBe(3);
    q.work = 0;
    s.fireTimer();
    expect(s.c.counters.ticks).toBe(3);
    s.advance(15_000); // a full round however quiet
    s.fireTimer();
    expect(s.c.counters.ticks).toBe(4);
    // A request's own wake-up is never skipped.
    s.c.wake('echo', 'open');
    expect(s.places()).toHaveLength(1);
    s.c.stop();
  });

  it('under load, reads the miners and runs place only when the miners, the demands or its own instances changed', () => {
    const q = { membership: 1, work: 5 };
    const s = setup({}, () => q);
    let reads = 0;
    const deps = (s.c as unknown as { deps: ConstructorParameters<typeof PlacementController>[0] }).deps;
    const c = new PlacementController({ ...deps, miners: () => (reads++, s.miners) }, s.c.options);
    const m1 = minerOf('m1');
    s.miners.push(m1, minerOf('m2'));
    for (const m of s.miners) s.probes.set(m.id, provenAsClaimed(m));
    s.advertises('m1', 'echo'); // hand-started: ready capacity
    s.queues.set('echo/open', 2);
    c.tick(true);
    expect(reads).toBe(1);
    for (let i = 0; i < 5; i++) s.advance(1000), c.tick(true);
    expect(reads).toBe(1); // the same miners and demands: the plan would be the same (empty) one
    expect(c.counters.settled).toBe(5);
    q.membership++;
    c.tick(true);
    expect(reads).toBe(2);
    s.queues.set('echo/open', 10); // autoscale wants more instances: place runs and starts one
    s.advance(1000);
    c.tick(true);
    expect(reads).toBe(3);
    const placed = s.sent.filter((x) => x.f.t === 'place');
    expect(placed).toHaveLength(2);
    s.advance(1000);
    c.tick(true); // its instances are starting: every round is a full one
    expect(reads).toBe(4);
    s.advance(15_000);
    c.tick(true);
    expect(reads).toBe(5);
    c.tick(); // a round asked for outside the timer (a request's wake-up) is always full
    expect(reads).toBe(6);
  });

  it('counts a plan that only stops hand-started instances (more than autoscale wants) as nothing to do', () => {
    const q = { membership: 1, work: 5 };
    const s = setup({}, () => q);
    let reads = 0;
    const deps = (s.c as unknown as { deps: ConstructorParameters<typeof PlacementController>[0] }).deps;
    const c = new PlacementController({ ...deps, miners: () => (reads++, s.miners) }, s.c.options);
    for (let i = 0; i < 20; i++) {
      s.miners.push(minerOf(`m${i}`));
      s.advertises(`m${i}`, 'echo');
    }
    s.queues.set('echo/open', 1);
    for (let i = 0; i < 5; i++) s.advance(1000), c.tick(true);
    expect(reads).toBe(1);
    expect(s.sent).toHaveLength(0);
  });

  it('does not retry every round what it could not place while nothing changed (no room), and tells requests the same', () => {
    const q = { membership: 1, work: 5 };
    const s = setup({}, () => q);
    let reads = 0;
    const deps = (s.c as unknown as { deps: ConstructorParameters<typeof PlacementController>[0] }).deps;
    const c = new PlacementController({ ...deps, miners: () => (reads++, s.miners) }, s.c.options);
    s.miners.push(minerOf('tiny', { cpus: 1, memoryMb: 32 }));
    s.queues.set('echo/open', 3);
    c.tick(true);
    for (let i = 0; i < 5; i++) s.advance(1000), c.tick(true);
    expect(reads).toBe(1);
    expect(c.view('echo', 'open')).toMatchObject({ state: 'blocked', reason: 'no_eligible_miner' });
    s.miners.push(minerOf('roomy')); // a miner that can run it joins
    q.membership++;
    c.tick(true);
    expect(s.sent.filter((x) => x.f.t === 'place').map((x) => x.to)).toEqual(['roomy']);
  });

  it('a round that skips reading the miners sends exactly what a full round would (random joins, leaves, queues, starts)', () => {
    type Op = { k: 'join' } | { k: 'leave'; i: number } | { k: 'queue'; depth: number } | { k: 'advance'; ms: number } | { k: 'ready'; i: number } | { k: 'tick' };
    const op = fc.oneof(
      fc.constant<Op>({ k: 'join' }),
      fc.record({ k: fc.constant('leave' as const), i: fc.nat() }),
      fc.record({ k: fc.constant('queue' as const), depth: fc.integer({ min: 0, max: 30 }) }),
      fc.record({ k: fc.constant('advance' as const), ms: fc.integer({ min: 100, max: 20_000 }) }),
      fc.record({ k: fc.constant('ready' as const), i: fc.nat() }),
      fc.constant<Op>({ k: 'tick' }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const q = { membership: 1, work: 1 };
        const s = setup({}, () => q);
        const deps = (s.c as unknown as { deps: ConstructorParameters<typeof PlacementController>[0] }).deps;
        const got: { full: string[]; settled: string[] } = { full: [], settled: [] };
        const say = (to: string, f: OutgoingFrame) => `${f.t}:${to}:${'name' in f ? f.name : 'reason' in f ? f.reason : ''}`;
        const full = new PlacementController({ ...deps, quiet: undefined, send: (to, f) => got.full.push(say(to, f)) }, s.c.options);
        const settled = new PlacementController({ ...deps, send: (to, f) => got.settled.push(say(to, f)) }, s.c.options);
        let n = 0;
        s.miners.push(minerOf(`m${n++}`));
        s.advertises('m0', 'echo');
        for (const o of ops) {
          if (o.k === 'join') s.miners.push(minerOf(`m${n++}`)), q.membership++;
          else if (o.k === 'leave' && s.miners.length > 0) s.miners.splice(o.i % s.miners.length, 1), q.membership++;
          else if (o.k === 'queue') s.queues.set('echo/open', o.depth);
          else if (o.k === 'advance') s.advance(o.ms);
          else if (o.k === 'ready' && s.miners.length > 0) {
            const m = s.miners[o.i % s.miners.length]!;
            if (!m.dservices.includes('echo')) s.advertises(m.id, 'echo'), q.membership++;
          } else if (o.k === 'tick') {
            full.tick();
            settled.tick(true);
            expect(got.settled).toEqual(got.full);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('places an instance at once when a request arrives for a DService nobody runs, and says when it should be ready', () => {
    const s = setup();
    s.miners.push(minerOf('m1'));
    expect(s.c.view('echo', 'open')).toMatchObject({ state: 'placeable', eligible: 1, estimateMs: 5000 });
    const v = s.c.wake('echo', 'open');
    expect(v).toMatchObject({ state: 'placing', minerId: 'm1', estimateMs: 5000 });
    const [p] = s.places();
    expect(p).toMatchObject({ to: 'm1', f: { name: 'echo', version: '0.1.0', digest: DIGEST, packagePath: `/v1/packages/${DIGEST}`, sizeBytes: 1000 } });
    // A burst of requests during the cold start places nothing more.
    for (let i = 0; i < 5; i++) s.c.wake('echo', 'open');
    expect(s.places()).toHaveLength(1);
    s.advance(1200);
    expect(s.c.view('echo', 'open')).toMatchObject({ state: 'placing', estimateMs: 3800 });
  });

  it('counts the instance ready when its miner advertises the DService, and learns the cold start from it', () => {
    const s = setup();
    s.miners.push(minerOf('m1'));
    s.c.wake('echo', 'open');
    s.advance(1500);
    s.advertises('m1', 'echo');
    s.c.tick();
    expect(s.c.instances()).toMatchObject([{ minerId: 'm1', dservice: 'echo', state: 'ready' }]);
    expect(s.c.coldStarts.list()).toEqual([1500]);
    expect(s.c.view('echo', 'open')).toMatchObject({ state: 'placeable', estimateMs: 1500 });
  });

  it('scales to zero after the idle window: unplace sent, the instance forgotten', () => {
    const s = setup();
    s.miners.push(minerOf('m1'));
    s.c.wake('echo', 'open');
    s.advance(1000);
    s.advertises('m1', 'echo');
    s.c.tick();
    for (let t = 0; t < 29; t++) {
      s.advance(1000);
      s.c.tick();
    }
    expect(s.frames('unplace')).toHaveLength(0);
    s.advance(2000);
    s.c.tick();
    expect(s.frames('unplace')).toMatchObject([{ to: 'm1', f: { instanceId: s.places()[0]!.f.instanceId, reason: 'excess' } }]);
    expect(s.c.instances()).toHaveLength(0);
  });

  it('places elsewhere when the miner cannot start it (placed ok false), and does not ask that miner again at once', () => {
    const s = setup();
    s.miners.push(minerOf('m1'), minerOf('m2'));
    s.c.wake('echo', 'open');
    const first = s.places()[0]!;
    s.c.onPlaced(first.to, { t: 'placed', v: 1, instanceId: first.f.instanceId, digest: DIGEST, ok: false, message: 'digest mismatch', coldStartMs: 5, fetched: true });
    const second = s.places()[1]!;
    expect(second.to).not.toBe(first.to);
    expect(s.c.instances().filter((i) => i.failed === undefined)).toMatchObject([{ minerId: second.to, state: 'starting' }]);
  });

  it('grows with the queue (spread over miners, at most instances.max) and honours instances.min when idle', () => {
    const s = setup();
    s.miners.push(minerOf('m1'), minerOf('m2'), minerOf('m3'), minerOf('m4'));
    // echo takes 4 units at once per instance: 10 queued need 3 instances.
    s.queues.set('echo/open', 10);
    s.c.tick();
    expect(new Set(s.places().map((p) => p.to)).size).toBe(3);
    const capped = parseDescriptor({ name: 'echo', version: '0.1.0', entry: 'server.js', resources: { cpus: 1, memoryMb: 64 }, concurrency: 1, instances: { min: 1, max: 2 } });
    const deps = (s.c as unknown as { deps: ConstructorParameters<typeof PlacementController>[0] }).deps;
    const sent: string[] = [];
    const c = new PlacementController({ ...deps, dservices: () => [capped], send: (to, f) => sent.push(`${f.t}:${to}`) }, s.c.options);
    c.tick(); // the minimum first (autoscale's rule), then the queue's need, capped at max
    s.advance(1000);
    c.tick();
    c.tick();
    expect(sent.filter((x) => x.startsWith('place:'))).toHaveLength(2);
    s.queues.set('echo/open', 0);
    s.advance(600_000);
    c.tick();
    c.tick();
    expect(c.instances()).toHaveLength(1);
  });

  it('asks the only miner again after a failure, once the back-off passed (1 s, then 2 s, ...)', () => {
    const s = setup();
    s.miners.push(minerOf('m1'));
    s.queues.set('echo/open', 1);
    s.c.tick();
    const fail = (n: number) => {
      const p = s.places()[n]!;
      s.c.onPlaced('m1', { t: 'placed', v: 1, instanceId: p.f.instanceId, digest: DIGEST, ok: false, message: 'crashed', coldStartMs: 5, fetched: false });
    };
    fail(0);
    expect(s.places()).toHaveLength(1);
    s.advance(999);
    s.c.tick();
    expect(s.places()).toHaveLength(1);
    s.advance(1);
    s.c.tick();
    expect(s.places()).toHaveLength(2);
    fail(1);
    s.advance(1000);
    s.c.tick();
    expect(s.places()).toHaveLength(2);
    s.advance(1000);
    s.c.tick();
    expect(s.places()).toHaveLength(3);
  });

  it('places a DService again at once on the miner it was just unplaced from (the miner waits for the old instance to stop)', () => {
    const s = setup();
    s.miners.push(minerOf('m1'));
    s.c.wake('echo', 'open');
    s.advance(1000);
    s.advertises('m1', 'echo');
    s.c.tick();
    s.advance(31_000);
    s.c.tick();
    expect(s.frames('unplace')).toHaveLength(1);
    s.miners[0]!.dservices = [];
    s.advance(100);
    expect(s.c.wake('echo', 'open')).toMatchObject({ state: 'placing', minerId: 'm1' });
    expect(s.places()).toHaveLength(2);
  });

  it('gives up a start that outlives the cold-start budget and places it on another miner', () => {
    const s = setup();
    s.miners.push(minerOf('m1'), minerOf('m2'));
    s.queues.set('echo/open', 1);
    s.c.tick();
    const first = s.places()[0]!;
    s.advance(20_001);
    s.c.tick();
    expect(s.frames('unplace')).toMatchObject([{ to: first.to, f: { instanceId: first.f.instanceId, reason: 'cold_start_timeout' } }]);
    expect(s.places()[1]!.to).not.toBe(first.to);
    expect(s.c.counters.timedOut).toBe(1);
  });

  it('counts a hand-started miner\'s DService as capacity: no placement for it, and never stops it', () => {
    const s = setup();
    const m = minerOf('m1');
    s.miners.push(m);
    s.advertises('m1', 'echo');
    s.queues.set('echo/open', 1);
    s.c.tick();
    expect(s.places()).toHaveLength(0);
    s.queues.set('echo/open', 0);
    s.advance(120_000);
    s.c.tick();
    expect(s.frames('unplace')).toHaveLength(0);
  });

  it('refuses at once what no miner can ever run, with the scheduler\'s reason, and places nothing', () => {
    const s = setup();
    s.miners.push(minerOf('m1', { memoryMb: 2048 }), minerOf('m2', { memoryMb: 4096 }));
    const v = s.c.wake('big', 'open');
    expect(v).toMatchObject({ state: 'blocked', reason: 'no_eligible_miner', blocking: 'memory' });
    expect(v.state === 'blocked' && v.message).toMatch(/an instance needs 100000 MB of memory, the largest has 4096/);
    expect(s.places()).toHaveLength(0);
    expect(s.c.wake('echo', 'dedicated')).toMatchObject({ state: 'blocked', blocking: 'tier' });
  });

  it('believes the probe over the claim: a miner claiming 64 CPUs measured at 1 does not get a 2-CPU DService', () => {
    const two = parseDescriptor({ name: 'two', version: '1', entry: 's.js', resources: { cpus: 2, memoryMb: 64 } });
    const s = setup();
    const c2 = new PlacementController({ ...(s.c as unknown as { deps: ConstructorParameters<typeof PlacementController>[0] }).deps, dservices: () => [two], packages: { packageOf: () => ({ digest: DIGEST, sizeBytes: 1, packagePath: '/p' }) } }, s.c.options);
    s.miners.push(minerOf('liar', { cpus: 64 }));
    s.probes.set('liar', { ok: true, at: 0, measured: { cpus: 1, memoryMb: 4096, diskMb: 100, gpus: 0, bandwidthMbps: 100 }, measurement: { cpus: 1, hashesPerSec: 1, bandwidthMbps: 100, rttMs: 1 }, selfReported: ['memoryMb', 'diskMb', 'gpus'] });
    expect(c2.wake('two', 'open')).toMatchObject({ state: 'blocked', blocking: 'cpus' });
    s.probes.delete('liar'); // probed again (reconnected): pending, so still the least it could be
    s.advance(1000);
    // Nothing is placed on the claim, but the work waits for the probe instead of being refused.
    expect(c2.wake('two', 'open')).toMatchObject({ state: 'placeable', eligible: 1, basis: expect.stringContaining('once the capability probe of a miner that claims enough confirms it') });
    expect(s.places()).toHaveLength(0);
    s.probes.set('liar', provenAsClaimed(s.miners[0]!));
    s.advance(1000);
    c2.tick(); // a finished probe wakes a full round (the node's quiet() counts probe versions)
    expect(c2.wake('two', 'open')).toMatchObject({ state: 'placing', minerId: 'liar' });
  });

  it('a DService no probed miner can take waits while miners that claim enough are being probed, and is refused once their probes fail', () => {
    const two = parseDescriptor({ name: 'two', version: '1', entry: 's.js', resources: { cpus: 2, memoryMb: 64 } });
    const s = setup();
    const c2 = new PlacementController({ ...(s.c as unknown as { deps: ConstructorParameters<typeof PlacementController>[0] }).deps, dservices: () => [two], packages: { packageOf: () => ({ digest: DIGEST, sizeBytes: 1, packagePath: '/p' }) } }, s.c.options);
    s.miners.push(minerOf('small', { cpus: 1 }), minerOf('new1', { cpus: 4 }), minerOf('new2', { cpus: 8 }), minerOf('new3', { cpus: 1 }));
    s.probes.set('small', provenAsClaimed(s.miners[0]!));
    expect(c2.wake('two', 'open')).toMatchObject({ state: 'placeable', eligible: 2, basis: expect.stringContaining('of 2 miners that claim enough') });
    expect(s.places()).toHaveLength(0);
    s.probes.set('new1', { ok: false, at: 0, reason: 'timed out' });
    s.probes.set('new2', { ok: false, at: 0, reason: 'implausible' });
    s.probes.set('new3', provenAsClaimed(s.miners[3]!));
    s.advance(1000);
    c2.tick();
    expect(c2.view('two', 'open')).toMatchObject({ state: 'blocked', blocking: 'cpus' });
  });

  it('prefers the miner with the better service level in the ledger', () => {
    for (const bad of ['m1', 'm2']) {
      const s = setup();
      s.miners.push(minerOf('m1'), minerOf('m2'));
      s.reps.set(bad, { records: 100, success: 0.2, latency: 0.3, uptime: 1, verificationsPassed: 0, verificationsFailed: 0 });
      s.reps.set(bad === 'm1' ? 'm2' : 'm1', { records: 100, success: 1, latency: 1, uptime: 1, verificationsPassed: 0, verificationsFailed: 0 });
      s.c.wake('echo', 'open');
      expect(s.places()[0]!.to).not.toBe(bad);
    }
  });

  it('forgets the instances of a miner that left, and places again on demand', () => {
    const s = setup();
    s.miners.push(minerOf('m1'), minerOf('m2'));
    s.c.wake('echo', 'open');
    const first = s.places()[0]!;
    s.miners.splice(s.miners.findIndex((m) => m.id === first.to), 1);
    s.queues.set('echo/open', 1);
    s.advance(1000);
    s.c.tick();
    expect(s.places()).toHaveLength(2);
    expect(s.places()[1]!.to).not.toBe(first.to);
  });

  it('ignores a placed frame for an instance it did not place on that miner', () => {
    const s = setup();
    s.miners.push(minerOf('m1'), minerOf('m2'));
    s.c.wake('echo', 'open');
    const first = s.places()[0]!;
    const other = first.to === 'm1' ? 'm2' : 'm1';
    s.c.onPlaced(other, { t: 'placed', v: 1, instanceId: first.f.instanceId, digest: DIGEST, ok: false, message: 'x', coldStartMs: 0, fetched: false });
    expect(s.places()).toHaveLength(1);
    expect(s.c.counters.failed).toBe(0);
  });

  it('does nothing for a DService without a package (only hand-started miners run it)', () => {
    const s = setup();
    s.miners.push(minerOf('m1'));
    const c = new PlacementController({ ...(s.c as unknown as { deps: ConstructorParameters<typeof PlacementController>[0] }).deps, packages: { packageOf: () => null } }, s.c.options);
    expect(c.wake('echo', 'open' as Tier)).toEqual({ state: 'none' });
    expect(s.places()).toHaveLength(0);
  });
});
