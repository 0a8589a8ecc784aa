/**
 * The optimised `place` gives the same plan as the straightforward reference
 * (test-fixtures/reference-place.ts) — every stop, every start in the same order on the same miner,
 * every unplaced report and every share — on random small clusters: miners of two tiers, several
 * regions, online / draining / offline / banned, with and without a measured capacity, a reported
 * `free` room, reputations and cached packages; DServices with minimums, maximums, desired counts,
 * regions, price caps, digests and two versions; instances on live, draining and unknown miners,
 * some of undemanded DServices or of another account, some stuck starting.
 * All amounts are integers, so sums do not depend on order and the comparison is exact.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { place } from './place.js';
import { referencePlace } from './test-fixtures/reference-place.js';
import type { ClusterState, DServiceDemand, InstanceView, MinerView, Resources, Tier } from './types.js';

const NOW = 1_000_000;
const clock = { now: () => NOW };
const REGIONS = ['eu-west', 'eu-north', 'us-east', undefined];
const ACCOUNTS = ['A', 'B', 'C'];
const DIGESTS = ['sha256:aa', 'sha256:bb'];

/** A bundle between `min` and `max` (memory in steps of 256 MB); GPUs 0 or 1, a GPU rarely at the low end. */
const res = (min: { cpus: number; memoryMb: number; diskMb: number }, max: { cpus: number; memoryMb: number; diskMb: number; gpus: number[]; bandwidthMbps: number[] }): fc.Arbitrary<Resources> =>
  fc.record({
    cpus: fc.integer({ min: min.cpus, max: max.cpus }),
    memoryMb: fc.integer({ min: min.memoryMb / 256, max: max.memoryMb / 256 }).map((x) => x * 256),
    diskMb: fc.integer({ min: min.diskMb, max: max.diskMb }),
    gpus: fc.constantFrom(...max.gpus),
    bandwidthMbps: fc.constantFrom(...max.bandwidthMbps),
  });
const machine = res({ cpus: 2, memoryMb: 2048, diskMb: 20 }, { cpus: 8, memoryMb: 8192, diskMb: 50, gpus: [0, 0, 1], bandwidthMbps: [10, 100] });
const room = res({ cpus: 0, memoryMb: 0, diskMb: 0 }, { cpus: 4, memoryMb: 4096, diskMb: 30, gpus: [0, 1], bandwidthMbps: [0, 10, 100] });
const need = res({ cpus: 0, memoryMb: 0, diskMb: 0 }, { cpus: 2, memoryMb: 1024, diskMb: 5, gpus: [0, 0, 0, 1], bandwidthMbps: [0, 10] });

const arbMiner = fc.record(
  {
    tier: fc.constantFrom('open', 'open', 'attested') as fc.Arbitrary<Tier>,
    region: fc.constantFrom(...REGIONS),
    status: fc.constantFrom('online', 'online', 'online', 'online', 'online', 'draining', 'offline'),
    banned: fc.constantFrom(false, false, false, true),
    claimed: machine,
    measured: machine,
    free: room,
    priceFloor: fc.integer({ min: 0, max: 20 }),
    reputation: fc.record({
      records: fc.integer({ min: 0, max: 5 }),
      success: fc.constantFrom(0, 0.5, 0.75, 1),
      latency: fc.constantFrom(0, 0.5, 1),
      uptime: fc.constantFrom(0.5, 1),
      verificationsPassed: fc.integer({ min: 0, max: 3 }),
      verificationsFailed: fc.integer({ min: 0, max: 1 }),
    }),
    cachedPackages: fc.subarray(DIGESTS),
  },
  { requiredKeys: ['tier', 'status', 'claimed', 'priceFloor'] },
);

const arbDemand = fc.record({
  tier: fc.constantFrom('open', 'open', 'attested') as fc.Arbitrary<Tier>,
  version: fc.constantFrom('1', '2'),
  account: fc.constantFrom(...ACCOUNTS),
  need,
  regions: fc.constantFrom(undefined, undefined, undefined, ['eu'], ['us-east'], ['eu-west', 'us']),
  maxPrice: fc.constantFrom(undefined, undefined, undefined, 8, 15, 30),
  requireMeasured: fc.constantFrom(undefined, undefined, false, true),
  min: fc.integer({ min: 0, max: 3 }),
  extra: fc.integer({ min: 0, max: 5 }),
  desired: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
  digest: fc.option(fc.constantFrom(...DIGESTS), { nil: undefined }),
});

const arbInstance = fc.record({
  /** Most instances are of a demand as it stands (tier, account, size), some of its other version. */
  like: fc.constantFrom('demand', 'demand', 'demand', 'other-version', 'random'),
  dservice: fc.integer({ min: 0, max: 6 }),
  version: fc.constantFrom('1', '2'),
  tier: fc.constantFrom('open', 'open', 'attested') as fc.Arbitrary<Tier>,
  account: fc.constantFrom(...ACCOUNTS),
  miner: fc.integer({ min: 0, max: 14 }),
  resources: need,
  state: fc.constantFrom('ready', 'ready', 'starting'),
  since: fc.constantFrom(0, NOW - 1000),
  /** The demand it was started for: unknown, anywhere, or a fence (some of them demanded). */
  fence: fc.constantFrom(undefined, undefined, '', 'eu', 'us-east', 'eu-west,us', 'ap'),
});

const arbCase = fc.record({
  miners: fc.array(arbMiner, { minLength: 1, maxLength: 10, size: 'max' }),
  demands: fc.array(arbDemand, { minLength: 1, maxLength: 6 }),
  instances: fc.array(arbInstance, { maxLength: 25, size: 'max' }),
  weights: fc.array(fc.tuple(fc.constantFrom(...ACCOUNTS), fc.integer({ min: 1, max: 4 }))),
  coldStartTimeoutMs: fc.option(fc.constantFrom(500, 120_000), { nil: undefined }),
});

type Case = typeof arbCase extends fc.Arbitrary<infer T> ? T : never;

function build(c: Case): { state: ClusterState; demands: DServiceDemand[] } {
  const miners: MinerView[] = c.miners.map((m, k) => ({ ...m, id: `m${String(k).padStart(2, '0')}` }) as MinerView);
  const seen = new Set<string>();
  const demands: DServiceDemand[] = [];
  c.demands.forEach((d, k) => {
    const name = `s${k % 3}`;
    // One demand per (DService, tier, fence): fenced and unfenced demands of one DService meet.
    const key = `${name}/${d.tier}/${[...(d.regions ?? [])].sort().join(',')}`;
    if (seen.has(key)) return;
    seen.add(key);
    demands.push({
      name,
      version: d.version,
      account: d.account,
      requirements: {
        resources: d.need,
        tier: d.tier,
        ...(d.regions !== undefined ? { regions: d.regions } : {}),
        ...(d.maxPrice !== undefined ? { maxPrice: d.maxPrice } : {}),
        ...(d.requireMeasured !== undefined ? { requireMeasured: d.requireMeasured } : {}),
      },
      minInstances: d.min,
      maxInstances: d.min + d.extra,
      ...(d.desired !== undefined ? { desiredInstances: d.desired } : {}),
      ...(d.digest !== undefined ? { digest: d.digest } : {}),
      queueDepth: 0,
      queueWaitMs: 0,
    });
  });
  const instances: InstanceView[] = c.instances.map((i, k) => {
    const d = i.like === 'random' ? undefined : demands[i.dservice % (demands.length + 1)];
    return {
      id: `i${String(k).padStart(3, '0')}`,
      dservice: d?.name ?? `s${i.dservice}`,
      version: d === undefined ? i.version : i.like === 'demand' ? d.version : `${d.version}-old`,
      tier: d?.requirements.tier ?? i.tier,
      account: d?.account ?? i.account,
      minerId: `m${String(i.miner % (miners.length + 1)).padStart(2, '0')}`, // one in n+1 on a miner not in the state
      resources: d?.requirements.resources ?? i.resources,
      state: i.state as InstanceView['state'],
      since: i.since,
      ...(i.fence !== undefined ? { fence: i.fence } : {}),
    };
  });
  const weights = new Map(c.weights);
  return { state: { miners, instances, accounts: [...weights].map(([account, weight]) => ({ account, weight })) }, demands };
}

describe('place: the optimised path and the straightforward reference', () => {
  it('give the same plan on random clusters', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const { state, demands } = build(c);
        const options = c.coldStartTimeoutMs !== undefined ? { coldStartTimeoutMs: c.coldStartTimeoutMs } : {};
        const reference = referencePlace(state, demands, clock, options);
        expect(place(state, demands, clock, options)).toEqual(reference);
        // Demands in another order change nothing either.
        expect(place(state, [...demands].reverse(), clock, options)).toEqual(reference);
      }),
      { numRuns: Number(process.env.SCHEDULER_PROPERTY_RUNS ?? 500) },
    );
  });

  it('agree when calls reuse the books of an earlier, larger call', () => {
    fc.assert(
      fc.property(arbCase, arbCase, (big, small) => {
        const a = build(big);
        place(a.state, a.demands, clock);
        const b = build(small);
        expect(place(b.state, b.demands, clock)).toEqual(referencePlace(b.state, b.demands, clock));
      }),
      { numRuns: 300 },
    );
  });
});
