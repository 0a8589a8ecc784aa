import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { refusalReasons } from './filter.js';
import { place, type PlacementPlan } from './place.js';
import { capacityOf, resources } from './resources.js';
import { clockAt, demand, instance, miner } from './test-fixtures/builders.js';
import type { ClusterState, DServiceDemand, InstanceView, MinerView, StartDecision, StopDecision } from './types.js';

const clock = clockAt(1_000_000);
const state = (miners: MinerView[], instances: InstanceView[] = [], accounts: ClusterState['accounts'] = []): ClusterState => ({ miners, instances, accounts });
const starts = (p: PlacementPlan) => p.decisions.filter((d): d is StartDecision => d.kind === 'start');
const stops = (p: PlacementPlan) => p.decisions.filter((d): d is StopDecision => d.kind === 'stop');
const miners = (n: number, over: Partial<MinerView> & { cap?: Partial<MinerView['claimed']> } = {}) =>
  Array.from({ length: n }, (_, i) => miner(`m${String(i).padStart(3, '0')}`, over));

describe('place', () => {
  it('starts the minimum instances on distinct miners, and nothing more without demand', () => {
    const d = demand('echo', { minInstances: 3 });
    const p = place(state(miners(5)), [d], clock);
    const s = starts(p);
    expect(s).toHaveLength(3);
    expect(new Set(s.map((x) => x.minerId)).size).toBe(3);
    expect(s.every((x) => x.reason === 'min')).toBe(true);
    expect(p.unplaced).toEqual([]);
  });

  it('grows to desiredInstances but never above maxInstances', () => {
    const d = demand('echo', { minInstances: 1, maxInstances: 4, desiredInstances: 9 });
    const p = place(state(miners(10)), [d], clock);
    expect(starts(p)).toHaveLength(4);
    expect(starts(p).filter((x) => x.reason === 'demand')).toHaveLength(3);
  });

  it('stays at the current count when no desired count is given', () => {
    const d = demand('echo', { maxInstances: 5 });
    const ms = miners(3);
    const p = place(state(ms, [instance(d, 'm000'), instance(d, 'm001')]), [d], clock);
    expect(p.decisions).toEqual([]);
  });

  it('prefers the cheaper miner when reputations are equal, the more reputable when prices are', () => {
    const rep = { records: 100, success: 1, latency: 1, uptime: 1, verificationsPassed: 10, verificationsFailed: 0 };
    const cheap = place(state([miner('a', { priceFloor: 20 }), miner('b', { priceFloor: 10 })]), [demand('x', { minInstances: 1 })], clock);
    expect(starts(cheap)[0]!.minerId).toBe('b');
    const good = place(
      state([miner('a', { reputation: rep }), miner('b', { reputation: { ...rep, success: 0.5 } })]),
      [demand('x', { minInstances: 1 })],
      clock,
    );
    expect(starts(good)[0]!.minerId).toBe('a');
  });

  it('believes the smaller of claimed and measured resources', () => {
    const m = miner('liar', { cap: { memoryMb: 65_536 }, measured: resources({ cpus: 4, memoryMb: 1024, diskMb: 20_000, bandwidthMbps: 100 }) });
    const p = place(state([m]), [demand('big', { minInstances: 1, need: { memoryMb: 4096 } })], clock);
    expect(starts(p)).toEqual([]);
    expect(p.unplaced[0]!.reason).toBe('no_eligible_miner');
    expect(p.unplaced[0]!.message).toMatch(/no online miner in tier open with enough memory: an instance needs 4096 MB of memory, the largest has 1024/);
  });

  it('says why nothing runs: regions, tier, or no room left', () => {
    const ms = miners(2, { region: 'us-east' });
    const p = place(state(ms), [demand('eu-only', { minInstances: 1, regions: ['eu'] }), demand('safe', { minInstances: 1, tier: 'dedicated' })], clock);
    const why = Object.fromEntries(p.unplaced.map((u) => [u.dservice, u]));
    expect(why['eu-only']!.diagnosis!.blocking).toBe('region');
    expect(why['eu-only']!.message).toMatch(/in the account's regions \(eu\)/);
    expect(why['safe']!.diagnosis!.blocking).toBe('tier');
    const full = place(state(miners(1)), [demand('x', { minInstances: 5, need: { cpus: 2 } })], clock);
    expect(starts(full)).toHaveLength(2);
    expect(full.unplaced[0]).toMatchObject({ reason: 'no_free_capacity', missing: 3, missingMin: 3 });
  });

  it('shares contended capacity by weighted DRF between accounts', () => {
    // 10 miners x 4 CPUs; two accounts each wanting 100 one-CPU instances.
    const a = demand('a-svc', { account: 'A', maxInstances: 100, desiredInstances: 100 });
    const b = demand('b-svc', { account: 'B', maxInstances: 100, desiredInstances: 100 });
    const even = place(state(miners(10)), [a, b], clock);
    const count = (p: PlacementPlan, acct: string) => starts(p).filter((s) => s.account === acct).length;
    expect([count(even, 'A'), count(even, 'B')]).toEqual([20, 20]);
    const weighted = place(state(miners(10), [], [{ account: 'A', weight: 3 }, { account: 'B', weight: 1 }]), [a, b], clock);
    expect([count(weighted, 'A'), count(weighted, 'B')]).toEqual([30, 10]);
  });

  it('counts what an account already runs: the newcomer gets the free room first', () => {
    const a = demand('a-svc', { account: 'A', maxInstances: 100, desiredInstances: 30 });
    const b = demand('b-svc', { account: 'B', maxInstances: 100, desiredInstances: 8 });
    const ms = miners(10);
    const running = Array.from({ length: 30 }, (_, i) => instance(a, ms[i % 10]!.id));
    const p = place(state(ms, running), [a, b], clock);
    expect(starts(p).map((s) => s.account)).toEqual(Array(8).fill('B'));
  });

  it('gives every DService its minimum before anyone grows beyond it', () => {
    const big = demand('big', { account: 'A', maxInstances: 50, desiredInstances: 50 });
    const small = demand('small', { account: 'A', minInstances: 2, maxInstances: 2 });
    const p = place(state(miners(2)), [big, small], clock); // 8 CPUs
    expect(starts(p).filter((s) => s.dservice === 'small')).toHaveLength(2);
    expect(starts(p).filter((s) => s.dservice === 'big')).toHaveLength(6);
  });

  it('stops excess instances, those still starting first', () => {
    const d = demand('x', { desiredInstances: 1 });
    const ms = miners(3);
    const inst = [instance(d, 'm000'), instance(d, 'm001', { state: 'starting', since: clock.now() }), instance(d, 'm002')];
    const p = place(state(ms, inst), [d], clock);
    expect(stops(p).map((s) => [s.instanceId, s.reason])).toHaveLength(2);
    expect(stops(p).map((s) => s.instanceId)).toContain(inst[1]!.id);
    expect(starts(p)).toEqual([]);
  });

  it('replaces instances on offline or banned miners and those whose cold start ran over', () => {
    const d = demand('x', { minInstances: 0 });
    const ms = [miner('gone', { status: 'offline' }), miner('bad', { banned: true }), miner('slow'), miner('ok1'), miner('ok2'), miner('ok3')];
    const inst = [instance(d, 'gone'), instance(d, 'bad'), instance(d, 'slow', { state: 'starting', since: clock.now() - 200_000 })];
    const p = place(state(ms, inst), [d], clock, { coldStartTimeoutMs: 60_000 });
    expect(stops(p).map((s) => s.reason).sort()).toEqual(['cold_start_timeout', 'miner_ineligible', 'miner_offline']);
    expect(starts(p).map((s) => s.reason)).toEqual(['replace', 'replace', 'replace']);
    expect(starts(p).map((s) => s.minerId).sort()).toEqual(['ok1', 'ok2', 'ok3']); // not back on 'slow'
  });

  it('stops instances of DServices nobody demands any more', () => {
    const d = demand('old');
    const p = place(state(miners(1), [instance(d, 'm000')]), [], clock);
    expect(stops(p).map((s) => s.reason)).toEqual(['not_demanded']);
  });

  it('keeps an older version until enough of the new one are ready', () => {
    const v1 = demand('x', { version: '1', minInstances: 2, maxInstances: 2 });
    const v2 = { ...v1, version: '2' };
    const ms = miners(4);
    const old = [instance(v1, 'm000'), instance(v1, 'm001')];
    const rolling = place(state(ms, old), [v2], clock);
    expect(stops(rolling)).toEqual([]);
    expect(starts(rolling)).toHaveLength(2);
    const fresh = [instance(v2, 'm002'), instance(v2, 'm003')];
    const done = place(state(ms, [...old, ...fresh]), [v2], clock);
    expect(stops(done).map((s) => s.reason)).toEqual(['superseded', 'superseded']);
    expect(starts(done)).toEqual([]);
  });

  it('prefers a miner that cached the package when all else is equal', () => {
    const d = { ...demand('x', { minInstances: 1 }), digest: 'sha256:abc' };
    const p = place(state([miner('a'), miner('b', { cachedPackages: ['sha256:abc'] })]), [d], clock);
    expect(starts(p)[0]!.minerId).toBe('b');
  });

  it('refuses malformed input with a message naming what to fix', () => {
    expect(() => place(state(miners(1)), [demand('x', { minInstances: 3, maxInstances: 1 })], clock)).toThrow(/minInstances \(3\) and maxInstances \(1\)/);
    expect(() => place(state([miner('a'), miner('a')]), [], clock)).toThrow(/miner a appears twice/);
    expect(() => place(state(miners(1), [], [{ account: 'A', weight: -1 }]), [], clock)).toThrow(/account A: weight/);
    expect(() => place(state([miner('a', { cap: { cpus: -1 } })]), [], clock)).toThrow(/miner a claimed.cpus/);
    expect(() => place(state(miners(1), [{ ...instance(demand('x'), 'm000'), id: 'bad', resources: resources({ memoryMb: NaN }) }]), [], clock)).toThrow(
      /instance bad resources.memoryMb must be a finite number/,
    );
  });

  it('follows the miners of each call, whatever the call before it saw (the id index it keeps)', () => {
    const d = demand('x', { maxInstances: 5 });
    const a = miner('a', { cap: { cpus: 1 } });
    const b = miner('b', { cap: { cpus: 2 } });
    // One instance on `a` (1 CPU, full); a second wanted: only `b` has room, in either order.
    const want = { ...d, desiredInstances: 2 };
    for (const ms of [[a, b], [b, a], [a, b]]) {
      const p = place(state(ms, [instance(d, 'a')]), [want], clock);
      expect(starts(p).map((s) => s.minerId)).toEqual(['b']);
    }
    // Same length, another id: the instance's miner is gone.
    expect(stops(place(state([a, miner('c')], [instance(d, 'b')]), [want], clock))[0]!.reason).toBe('miner_offline');
    place(state([a, b]), [], clock);
    expect(() => place(state([a, a]), [], clock)).toThrow(/miner a appears twice/);
  });
});

describe('place, on random small clusters', () => {
  // Skewed towards miners that qualify, so that most cases place something.
  const tiers = ['open', 'open', 'open', 'attested', 'dedicated'] as const;
  const regions = ['eu-west', 'eu-west', 'eu-north', 'us-east', undefined] as const;
  const arbMiner = (i: number) =>
    fc.record({
      tier: fc.constantFrom(...tiers),
      region: fc.constantFrom(...regions),
      status: fc.constantFrom('online', 'online', 'online', 'draining', 'offline') as fc.Arbitrary<MinerView['status']>,
      banned: fc.boolean(),
      cpus: fc.integer({ min: 1, max: 8 }),
      memoryMb: fc.integer({ min: 1, max: 8 }).map((x) => x * 1024),
      gpus: fc.constantFrom(0, 1, 1),
      measuredCpus: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
      priceFloor: fc.integer({ min: 0, max: 30 }),
    }).map((r): MinerView => ({
      id: `m${i}`,
      tier: r.tier,
      ...(r.region !== undefined ? { region: r.region } : {}),
      status: r.status,
      banned: r.banned && r.cpus % 3 === 0,
      claimed: resources({ cpus: r.cpus, memoryMb: r.memoryMb, diskMb: 10_000, gpus: r.gpus, bandwidthMbps: 100 }),
      ...(r.measuredCpus !== undefined ? { measured: resources({ cpus: r.measuredCpus, memoryMb: r.memoryMb, diskMb: 10_000, gpus: r.gpus, bandwidthMbps: 100 }) } : {}),
      priceFloor: r.priceFloor,
    }));
  const arbDemand = (i: number) =>
    fc.record({
      account: fc.constantFrom('A', 'B', 'C'),
      tier: fc.constantFrom(...tiers),
      regions: fc.option(fc.subarray(['eu', 'us-east'], { minLength: 1 }), { nil: undefined, freq: 2 }),
      cpus: fc.integer({ min: 1, max: 4 }),
      memoryMb: fc.integer({ min: 1, max: 6 }).map((x) => x * 512),
      gpus: fc.constantFrom(0, 0, 0, 1),
      maxPrice: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined, freq: 2 }),
      min: fc.integer({ min: 0, max: 3 }),
      extra: fc.integer({ min: 0, max: 4 }),
      desired: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined, freq: 4 }),
    }).map((r): DServiceDemand => ({
      ...demand(`svc${i}`, { account: r.account, tier: r.tier, need: { cpus: r.cpus, memoryMb: r.memoryMb, gpus: r.gpus }, minInstances: r.min, maxInstances: r.min + r.extra }),
      requirements: {
        resources: resources({ cpus: r.cpus, memoryMb: r.memoryMb, gpus: r.gpus }),
        tier: r.tier,
        ...(r.regions !== undefined ? { regions: r.regions } : {}),
        ...(r.maxPrice !== undefined ? { maxPrice: r.maxPrice } : {}),
      },
      ...(r.desired !== undefined ? { desiredInstances: r.desired } : {}),
    }));
  const arbCluster = fc
    .tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 5 }))
    .chain(([nm, nd]) => fc.tuple(fc.tuple(...Array.from({ length: nm }, (_, i) => arbMiner(i))), fc.tuple(...Array.from({ length: nd }, (_, i) => arbDemand(i)))))
    .chain(([ms, ds]) =>
      fc
        .array(fc.tuple(fc.nat(), fc.nat(), fc.boolean(), fc.integer({ min: 0, max: 300_000 })), { maxLength: 10 })
        .map((raw) => {
          const inst: InstanceView[] = [];
          if (ms.length > 0 && ds.length > 0) {
            raw.forEach(([mi, di, starting, age], k) => {
              const d = ds[di % ds.length]!;
              inst.push({ ...instance(d, ms[mi % ms.length]!.id, { state: starting ? 'starting' : 'ready', since: clock.now() - age }), id: `r${k}` });
            });
          }
          return { miners: ms as MinerView[], demands: ds as DServiceDemand[], instances: inst };
        }),
    );

  it('never starts an instance on a miner that fails one of its requirements', () => {
    fc.assert(
      fc.property(arbCluster, ({ miners: ms, demands, instances }) => {
        const p = place(state(ms, instances), demands, clock);
        const byId = new Map(ms.map((m) => [m.id, m]));
        const byName = new Map(demands.map((d) => [d.name, d]));
        return starts(p).every((s) => refusalReasons(byId.get(s.minerId)!, byName.get(s.dservice)!.requirements).length === 0);
      }),
      { numRuns: 500 },
    );
  });

  it('never fills a miner beyond the capacity it is believed to have', () => {
    fc.assert(
      fc.property(arbCluster, ({ miners: ms, demands, instances }) => {
        // Start from a consistent state: drop instances that would already overfill their miner.
        const load = new Map<string, number>();
        const fitting = instances.filter((i) => {
          const m = ms.find((x) => x.id === i.minerId)!;
          const cpu = (load.get(m.id) ?? 0) + i.resources.cpus;
          if (cpu > capacityOf(m).cpus) return false;
          load.set(m.id, cpu);
          return true;
        });
        const p = place(state(ms, fitting), demands, clock);
        const stopped = new Set(stops(p).map((s) => s.instanceId));
        const used = new Map<string, { cpus: number; memoryMb: number; gpus: number }>();
        const addTo = (id: string, r: { cpus: number; memoryMb: number; gpus: number }) => {
          const u = used.get(id) ?? { cpus: 0, memoryMb: 0, gpus: 0 };
          used.set(id, { cpus: u.cpus + r.cpus, memoryMb: u.memoryMb + r.memoryMb, gpus: u.gpus + r.gpus });
        };
        for (const i of fitting) if (!stopped.has(i.id)) addTo(i.minerId, i.resources);
        for (const s of starts(p)) addTo(s.minerId, s.resources);
        for (const s of starts(p)) {
          const m = ms.find((x) => x.id === s.minerId)!;
          const u = used.get(m.id)!;
          const c = capacityOf(m);
          if (u.cpus > c.cpus || u.memoryMb > c.memoryMb || u.gpus > c.gpus) return false;
        }
        return true;
      }),
      { numRuns: 500 },
    );
  });

  it('ends within min..max for every DService, or reports what is missing', () => {
    fc.assert(
      fc.property(arbCluster, ({ miners: ms, demands, instances }) => {
        const p = place(state(ms, instances), demands, clock);
        const stopped = new Set(stops(p).map((s) => s.instanceId));
        return demands.every((d) => {
          const mine = (i: InstanceView) => i.dservice === d.name && i.version === d.version && !stopped.has(i.id);
          const n = instances.filter(mine).length + starts(p).filter((s) => s.dservice === d.name).length;
          const missing = p.unplaced.find((u) => u.dservice === d.name)?.missing ?? 0;
          return n <= d.maxInstances && n + missing >= d.minInstances;
        });
      }),
      { numRuns: 500 },
    );
  });

  it('gives the same plan whatever the order of miners, instances and demands', () => {
    fc.assert(
      fc.property(arbCluster, ({ miners: ms, demands, instances }) => {
        const a = place(state(ms, instances), demands, clock);
        const b = place(state([...ms].reverse(), [...instances].reverse()), [...demands].reverse(), clock);
        expect(b).toEqual(a);
      }),
      { numRuns: 300 },
    );
  });
});
