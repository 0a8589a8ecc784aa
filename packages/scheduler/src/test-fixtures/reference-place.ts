/**
 * The straightforward form of `place` (the first version of place.ts, before any optimisation:
 * objects per candidate, Maps keyed by id, the whole heap of eligible miners per DService), kept as
 * the reference that the optimised `place` must agree with decision for decision
 * (place.equivalence.test.ts). The one change from that version: stops are listed by instance id,
 * as `place` documents. Not exported from the package.
 */
import { CgnError } from '@cgn/protocol';
import { ShareQueue } from '../drf.js';
import { diagnose, isEligible, regionAllowed } from '../filter.js';
import type { PlacementPlan, Unplaced } from '../place.js';
import { Heap } from '../heap.js';
import { add, addInto, capacityOf, checkResources, fits, subtractInto, ZERO } from '../resources.js';
import { checkScoreWeights, DEFAULT_SCORE_WEIGHTS, score, type ScoreWeights } from '../score.js';
import type { Clock, ClusterState, DServiceDemand, InstanceView, MinerView, Resources, StartDecision, StopDecision } from '../types.js';

interface PlaceOptions {
  weights?: ScoreWeights;
  /** An instance still `starting` after this long is stopped and placed elsewhere (default 120 s). */
  coldStartTimeoutMs?: number;
  /** Weight of an account absent from `state.accounts` (default 1). */
  defaultAccountWeight?: number;
}

const DEFAULT_COLD_START_TIMEOUT_MS = 120_000;

const fenceOf = (d: DServiceDemand) => (d.requirements.regions === undefined ? '' : [...d.requirements.regions].sort().join(','));
const keyOf = (d: DServiceDemand) => `${d.name}\u0000${d.requirements.tier}\u0000${fenceOf(d)}`;

/**
 * The demand an instance counts for: the one it was started for while its miner is in that fence,
 * else a fenced one taking its miner's region (first by key), else the one for anywhere, else the first.
 */
function groupOf(groups: Map<string, Group>, i: InstanceView, m: MinerView | undefined): Group | undefined {
  const same = [...groups.values()].filter((g) => g.demand.name === i.dservice && g.demand.requirements.tier === i.tier).sort((a, b) => (a.key < b.key ? -1 : 1));
  const own = i.fence === undefined ? undefined : same.find((g) => fenceOf(g.demand) === i.fence && (i.fence === '' || (m !== undefined && regionAllowed(m.region, g.demand.requirements.regions))));
  if (own !== undefined) return own;
  return (
    (m === undefined ? undefined : same.find((g) => g.demand.requirements.regions !== undefined && regionAllowed(m.region, g.demand.requirements.regions))) ??
    same.find((g) => g.demand.requirements.regions === undefined) ??
    same[0]
  );
}

interface Group {
  demand: DServiceDemand;
  key: string;
  /** Instances of the current version that stay. */
  current: InstanceView[];
  /** Instances of other versions that stay (for now). */
  old: InstanceView[];
  /** Current-version instances before any stop (the count to restore when desiredInstances is undefined). */
  before: number;
  target: number;
  placed: number;
  blocked: boolean;
  /** Miners this DService must not go to in this plan (a start there just timed out). */
  avoid: Set<string>;
  /** Instances of this DService per miner id. */
  perMiner: Map<string, number>;
  candidates?: Heap<Candidate>;
  eligibleCount: number;
}

interface Candidate {
  miner: MinerView;
  score: number;
  cached: boolean;
  /** Instances of this DService on the miner when the entry was pushed. */
  count: number;
}

const candidateLess = (a: Candidate, b: Candidate) =>
  a.count !== b.count ? a.count < b.count : a.score !== b.score ? a.score > b.score : a.cached !== b.cached ? a.cached : a.miner.id < b.miner.id;

function validate(state: ClusterState, demands: readonly DServiceDemand[]): void {
  const ids = new Set<string>();
  for (const m of state.miners) {
    if (ids.has(m.id)) throw new CgnError('bad_request', `miner ${m.id} appears twice in the state`);
    ids.add(m.id);
    checkResources(m.claimed, `miner ${m.id} claimed`);
    if (m.measured !== undefined) checkResources(m.measured, `miner ${m.id} measured`);
    if (m.free !== undefined) checkResources(m.free, `miner ${m.id} free`);
  }
  const keys = new Set<string>();
  for (const d of demands) {
    const k = keyOf(d);
    if (keys.has(k)) throw new CgnError('bad_request', `DService ${d.name} is demanded twice in tier ${d.requirements.tier}${fenceOf(d) === '' ? '' : ` fenced to ${fenceOf(d)}`}; give one demand per (DService, tier, regions)`);
    keys.add(k);
    checkResources(d.requirements.resources, `${d.name} requirements`);
    const int = (x: number) => Number.isSafeInteger(x) && x >= 0;
    if (!int(d.minInstances) || !int(d.maxInstances) || d.minInstances > d.maxInstances) {
      throw new CgnError('bad_request', `${d.name}: minInstances (${d.minInstances}) and maxInstances (${d.maxInstances}) must be integers with 0 <= min <= max`);
    }
    if (d.desiredInstances !== undefined && !int(d.desiredInstances)) {
      throw new CgnError('bad_request', `${d.name}: desiredInstances must be an integer >= 0 (got ${d.desiredInstances})`);
    }
  }
  for (const a of state.accounts) {
    if (!(Number.isFinite(a.weight) && a.weight > 0)) throw new CgnError('bad_request', `account ${a.account}: weight must be a finite number > 0 (got ${a.weight})`);
  }
}

export function referencePlace(state: ClusterState, demands: readonly DServiceDemand[], clock: Clock, options: PlaceOptions = {}): PlacementPlan {
  const now = clock.now();
  const weights = options.weights ?? DEFAULT_SCORE_WEIGHTS;
  checkScoreWeights(weights);
  const coldStartTimeoutMs = options.coldStartTimeoutMs ?? DEFAULT_COLD_START_TIMEOUT_MS;
  const defaultWeight = options.defaultAccountWeight ?? 1;
  if (!(Number.isFinite(defaultWeight) && defaultWeight > 0)) throw new CgnError('bad_request', `defaultAccountWeight must be > 0 (got ${defaultWeight})`);
  validate(state, demands);

  const minerById = new Map<string, MinerView>();
  for (const m of state.miners) minerById.set(m.id, m);
  const groups = new Map<string, Group>();
  for (const d of demands) {
    const key = keyOf(d);
    groups.set(key, { demand: d, key, current: [], old: [], before: 0, target: 0, placed: 0, blocked: false, avoid: new Set(), perMiner: new Map(), eligibleCount: 0 });
  }

  // 1. Stops.
  const stops: StopDecision[] = [];
  const stop = (i: InstanceView, reason: StopDecision['reason']) =>
    stops.push({ kind: 'stop', instanceId: i.id, dservice: i.dservice, tier: i.tier, minerId: i.minerId, reason });
  /** Resources freed on each miner by stops (only matters for miners that report `free`). */
  const freedOn = new Map<string, Resources>();
  const kept: InstanceView[] = [];
  const instances = [...state.instances].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const release = (i: InstanceView) => {
    const f = freedOn.get(i.minerId);
    freedOn.set(i.minerId, f === undefined ? { ...i.resources } : add(f, i.resources));
  };
  for (const i of instances) {
    const m = minerById.get(i.minerId);
    const g = groupOf(groups, i, m);
    const isCurrent = g !== undefined && i.version === g.demand.version;
    if (isCurrent) g.before++;
    if (m === undefined || m.status === 'offline') {
      stop(i, 'miner_offline');
      continue;
    }
    if (g === undefined) {
      stop(i, 'not_demanded');
      release(i);
      continue;
    }
    const qualifies = isCurrent ? isEligible(m, g.demand.requirements) : m.status === 'online' && m.banned !== true;
    if (!qualifies) {
      stop(i, 'miner_ineligible');
      release(i);
      continue;
    }
    if (i.state === 'starting' && now - i.since > coldStartTimeoutMs) {
      stop(i, 'cold_start_timeout');
      release(i);
      g.avoid.add(i.minerId);
      continue;
    }
    (isCurrent ? g.current : g.old).push(i);
  }
  for (const g of groups.values()) {
    const d = g.demand;
    const wanted = d.desiredInstances ?? g.before;
    g.target = Math.min(d.maxInstances, Math.max(d.minInstances, wanted));
    if (g.current.length > g.target) {
      // Cheapest to lose first: not yet serving, then on the lowest-scored miner.
      const hosts = g.current.map((i) => minerById.get(i.minerId)!);
      const cheapest = Math.min(...hosts.map((m) => m.priceFloor));
      const ranked = g.current
        .map((i) => ({ i, s: score(minerById.get(i.minerId)!, cheapest, weights) }))
        .sort((a, b) =>
          a.i.state !== b.i.state ? (a.i.state === 'starting' ? -1 : 1) : a.s !== b.s ? a.s - b.s : a.i.id < b.i.id ? 1 : a.i.id > b.i.id ? -1 : 0,
        );
      const excess = ranked.slice(0, g.current.length - g.target).map((r) => r.i);
      const gone = new Set(excess);
      for (const i of excess) {
        stop(i, 'excess');
        release(i);
      }
      g.current = g.current.filter((i) => !gone.has(i));
    }
    if (g.old.length > 0) {
      const ready = g.current.filter((i) => i.state === 'ready').length;
      if (g.target === 0 || ready >= g.target) {
        for (const i of g.old) {
          stop(i, g.target === 0 ? 'excess' : 'superseded');
          release(i);
        }
        g.old = [];
      }
    }
    for (const i of [...g.current, ...g.old]) g.perMiner.set(i.minerId, (g.perMiner.get(i.minerId) ?? 0) + 1);
    for (const i of [...g.current, ...g.old]) kept.push(i);
  }

  // 2. Free room per miner, computed when first needed.
  const keptOn = new Map<string, Resources>();
  for (const i of kept) {
    const u = keptOn.get(i.minerId);
    if (u === undefined) keptOn.set(i.minerId, { ...i.resources });
    else addInto(u, i.resources);
  }
  const freeCache = new Map<string, Resources>();
  const freeOf = (m: MinerView): Resources => {
    let f = freeCache.get(m.id);
    if (f === undefined) {
      if (m.free !== undefined) {
        f = { ...m.free };
        const back = freedOn.get(m.id);
        if (back !== undefined) addInto(f, back);
      } else {
        f = capacityOf(m);
        const u = keptOn.get(m.id);
        if (u !== undefined) subtractInto(f, u);
      }
      freeCache.set(m.id, f);
    }
    return f;
  };

  const total: Resources = { ...ZERO };
  for (const m of state.miners) if (m.status === 'online' && m.banned !== true) addInto(total, capacityOf(m));
  const weightOf = new Map<string, number>();
  for (const a of state.accounts) weightOf.set(a.account, a.weight);
  const shares = new ShareQueue(total, (a) => weightOf.get(a) ?? defaultWeight);
  for (const i of kept) shares.hold(i.account, i.resources);

  const candidatesOf = (g: Group): Heap<Candidate> => {
    if (g.candidates !== undefined) return g.candidates;
    const req = g.demand.requirements;
    const eligible: MinerView[] = [];
    let cheapest = Infinity;
    for (const m of state.miners) {
      if (!isEligible(m, req) || g.avoid.has(m.id)) continue;
      eligible.push(m);
      if (m.priceFloor < cheapest) cheapest = m.priceFloor;
    }
    g.eligibleCount = eligible.length;
    const digest = g.demand.digest;
    const items = eligible.map((m) => ({
      miner: m,
      score: score(m, cheapest, weights),
      cached: digest !== undefined && (m.cachedPackages?.includes(digest) ?? false),
      count: g.perMiner.get(m.id) ?? 0,
    }));
    return (g.candidates = new Heap(candidateLess, items));
  };

  /** Places one instance of `g`; undefined when no eligible miner has room. */
  const placeOne = (g: Group): MinerView | undefined => {
    const heap = candidatesOf(g);
    const need = g.demand.requirements.resources;
    for (let c = heap.pop(); c !== undefined; c = heap.pop()) {
      const f = freeOf(c.miner);
      if (!fits(need, f)) continue; // room only shrinks while placing: drop it for good
      subtractInto(f, need);
      const count = c.count + 1;
      g.perMiner.set(c.miner.id, count);
      heap.push({ ...c, count });
      return c.miner;
    }
    return undefined;
  };

  // 3. Progressive filling: minimums first, then the rest of the wanted instances.
  const starts: StartDecision[] = [];
  const unplaced = new Map<string, Group>();
  const byAccount = new Map<string, Group[]>();
  for (const g of groups.values()) {
    const list = byAccount.get(g.demand.account);
    if (list === undefined) byAccount.set(g.demand.account, [g]);
    else list.push(g);
  }
  for (const list of byAccount.values()) list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const count = (g: Group) => g.current.length + g.placed;

  for (const phase of ['min', 'demand'] as const) {
    const goal = (g: Group) => (phase === 'min' ? Math.min(g.demand.minInstances, g.target) : g.target);
    const open = (g: Group) => !g.blocked && count(g) < goal(g);
    for (const [account, list] of byAccount) if (list.some(open)) shares.enqueue(account);
    for (let account = shares.pop(); account !== undefined; account = shares.pop()) {
      const list = byAccount.get(account)!;
      // Within an account: the DService furthest from its goal, relatively; ties by key.
      let pick: Group | undefined;
      let pickRatio = Infinity;
      for (const g of list) {
        if (!open(g)) continue;
        const ratio = count(g) / goal(g);
        if (ratio < pickRatio) {
          pick = g;
          pickRatio = ratio;
        }
      }
      if (pick === undefined) continue;
      const m = placeOne(pick);
      if (m === undefined) {
        pick.blocked = true;
        unplaced.set(pick.key, pick);
      } else {
        const d = pick.demand;
        const n = count(pick);
        pick.placed++;
        shares.hold(account, d.requirements.resources);
        starts.push({
          kind: 'start',
          dservice: d.name,
          version: d.version,
          tier: d.requirements.tier,
          account,
          minerId: m.id,
          resources: { ...d.requirements.resources },
          reason: n < d.minInstances ? 'min' : n < g0(pick) ? 'replace' : 'demand',
          ...(d.requirements.regions !== undefined ? { regions: d.requirements.regions } : {}),
        });
      }
      if (list.some(open)) shares.enqueue(account);
    }
  }

  const report: Unplaced[] = [];
  for (const g of [...unplaced.values()].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const d = g.demand;
    const missing = g.target - count(g);
    const missingMin = Math.max(0, Math.min(d.minInstances, g.target) - count(g));
    if (g.eligibleCount === 0) {
      const diagnosis = diagnose(state.miners, d.requirements);
      const message = diagnosis.message ?? `every eligible miner for ${d.name} was just found to fail its cold start; retrying elsewhere`;
      report.push({ dservice: d.name, tier: d.requirements.tier, account: d.account, missing, missingMin, reason: 'no_eligible_miner', message: `${d.name}: ${message}`, diagnosis, ...(d.requirements.regions !== undefined ? { regions: d.requirements.regions } : {}) });
    } else {
      report.push({
        ...(d.requirements.regions !== undefined ? { regions: d.requirements.regions } : {}),
        dservice: d.name,
        tier: d.requirements.tier,
        account: d.account,
        missing,
        missingMin,
        reason: 'no_free_capacity',
        message: `${d.name}: ${g.eligibleCount} miner(s) could run it but none has room for another instance (${describe(d.requirements.resources)}); ${missing} instance(s) wait for capacity`,
      });
    }
  }
  const accounts = new Set<string>([...state.accounts.map((a) => a.account), ...byAccount.keys(), ...kept.map((i) => i.account)]);
  return {
    at: now,
    decisions: [...stops.sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0)), ...starts],
    unplaced: report,
    shares: [...accounts].sort().map((account) => ({ account, share: shares.share(account) })),
  };
}

/** The count a group had before stops: up to it, a new instance replaces one stopped. */
function g0(g: Group): number {
  return Math.min(g.before, g.target);
}

function describe(r: Resources): string {
  const parts = [`${r.cpus} CPUs`, `${r.memoryMb} MB memory`];
  if (r.diskMb > 0) parts.push(`${r.diskMb} MB disk`);
  if (r.gpus > 0) parts.push(`${r.gpus} GPU`);
  if (r.bandwidthMbps > 0) parts.push(`${r.bandwidthMbps} Mbit/s`);
  return parts.join(', ');
}
