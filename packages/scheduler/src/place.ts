/**
 * place(state, demands, clock): what to start and stop so that each DService has the instances it
 * wants, on miners that meet its requirements, with contended capacity shared by weighted DRF.
 *
 * 1. Stops, first (the node applies them before the starts): instances on miners gone offline, of
 *    DServices no longer demanded, on miners that no longer qualify (banned, draining, tier or region
 *    changed), still `starting` after the cold-start budget (replaced elsewhere), above the wanted
 *    count (starting ones first, then the lowest-scored miners), and older versions once enough
 *    instances of the current version are ready.
 * 2. Starts, by progressive filling (drf.ts): first every DService's minimum instances, then up to
 *    `desiredInstances` (clamped to min..max; when undefined, the current count), one instance at a
 *    time to the account with the lowest weighted dominant share. An instance goes to the eligible
 *    miner (filter.ts) with room for it that hosts the fewest instances of that DService (spreading
 *    them over machines), then the highest score (score.ts), then one that cached the package, then
 *    the smallest id.
 * 3. What could not be placed is reported with the reason (no eligible miner, with the diagnosis; or
 *    no room on the eligible ones).
 *
 * Deterministic: the same state and demands, in any order, give the same plan (exactly so when
 * resource amounts are integers or binary fractions, as CPUs and megabytes are: sums of them do
 * not depend on order). Stateless: each call reads the whole state, O(miners + instances), then
 * O(miners) per DService that needs a start and O(log miners + log accounts) per instance placed;
 * a node should call it once per tick with everything that changed, not once per instance.
 */
import { CgnError } from '@cgn/protocol';
import { ShareQueue } from './drf.js';
import { diagnose, isEligible, type Diagnosis } from './filter.js';
import { Heap } from './heap.js';
import { add, addInto, capacityOf, checkResources, subtractInto, ZERO } from './resources.js';
import { checkScoreWeights, DEFAULT_SCORE_WEIGHTS, priceScore, reputationScore, score, type ScoreWeights } from './score.js';
import type { Clock, ClusterState, Decision, DServiceDemand, InstanceView, MinerView, Resources, StartDecision, StopDecision, Tier } from './types.js';

export interface PlaceOptions {
  weights?: ScoreWeights;
  /** An instance still `starting` after this long is stopped and placed elsewhere (default 120 s). */
  coldStartTimeoutMs?: number;
  /** Weight of an account absent from `state.accounts` (default 1). */
  defaultAccountWeight?: number;
}

export const DEFAULT_COLD_START_TIMEOUT_MS = 120_000;

export interface Unplaced {
  dservice: string;
  tier: Tier;
  account: string;
  /** Instances wanted but not placed. */
  missing: number;
  /** Of those, needed to reach minInstances. */
  missingMin: number;
  reason: 'no_eligible_miner' | 'no_free_capacity';
  message: string;
  /** With `no_eligible_miner`: which requirement left no miner. */
  diagnosis?: Diagnosis;
}

export interface PlacementPlan {
  at: number;
  /** Stops first, then starts in the order they were decided. */
  decisions: Decision[];
  unplaced: Unplaced[];
  /** Weighted dominant share of each account once the plan is applied, by account id. */
  shares: { account: string; share: number }[];
}

interface Group {
  demand: DServiceDemand;
  /** Sort key: name, then tier. */
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
  avoid?: Set<string>;
  /** What the instances that stay take, when they belong to the demand's account. */
  held: Resources;
  /** Instances that stay but belong to another account (the DService changed hands). */
  others?: InstanceView[];
  candidates?: Candidates;
  eligibleCount: number;
}

/** The miners with room for one more instance of a DService, best first. */
interface Candidates {
  /** Candidate number -> miner index. */
  at: number[];
  /** Instances of the DService on each candidate. */
  counts: Int32Array;
  heap: Heap<number>;
}

const tierSlot = (t: string) => (t === 'open' ? 0 : t === 'attested' ? 1 : t === 'dedicated' ? 2 : 3);

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function validate(state: ClusterState, demands: readonly DServiceDemand[]): void {
  for (const m of state.miners) {
    checkResources(m.claimed, () => `miner ${m.id} claimed`);
    if (m.measured !== undefined) checkResources(m.measured, () => `miner ${m.id} measured`);
    if (m.free !== undefined) checkResources(m.free, () => `miner ${m.id} free`);
  }
  for (const d of demands) {
    checkResources(d.requirements.resources, () => `${d.name} requirements`);
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

/** Resources as five numbers at `5 * index` in a Float64Array: the per-miner books of one call. */
const N = 5;
function addAt(a: Float64Array, k: number, r: Resources, sign: 1 | -1): void {
  a[k] = a[k]! + sign * r.cpus;
  a[k + 1] = a[k + 1]! + sign * r.memoryMb;
  a[k + 2] = a[k + 2]! + sign * r.diskMb;
  a[k + 3] = a[k + 3]! + sign * r.gpus;
  a[k + 4] = a[k + 4]! + sign * r.bandwidthMbps;
}
function fitsAt(r: Resources, a: Float64Array, k: number): boolean {
  return r.cpus <= a[k]! && r.memoryMb <= a[k + 1]! && r.diskMb <= a[k + 2]! && r.gpus <= a[k + 3]! && r.bandwidthMbps <= a[k + 4]!;
}

/**
 * Per-miner books of one call, reused from call to call so that a call leaves no garbage in
 * proportion to the miners (place is synchronous and calls out to nothing while it uses them).
 */
let books = { used: new Float64Array(0), free: new Float64Array(0), known: new Uint8Array(0), reputationOf: new Float64Array(0) };
function scratch(miners: number): typeof books {
  if (books.known.length < miners) {
    const n = Math.max(miners, Math.ceil(books.known.length * 1.5));
    books = { used: new Float64Array(n * N), free: new Float64Array(n * N), known: new Uint8Array(n), reputationOf: new Float64Array(n) };
  }
  books.used.fill(0, 0, miners * N);
  books.known.fill(0, 0, miners);
  books.reputationOf.fill(NaN, 0, miners);
  return books;
}

export function place(state: ClusterState, demands: readonly DServiceDemand[], clock: Clock, options: PlaceOptions = {}): PlacementPlan {
  const now = clock.now();
  const weights = options.weights ?? DEFAULT_SCORE_WEIGHTS;
  checkScoreWeights(weights);
  const coldStartTimeoutMs = options.coldStartTimeoutMs ?? DEFAULT_COLD_START_TIMEOUT_MS;
  const defaultWeight = options.defaultAccountWeight ?? 1;
  if (!(Number.isFinite(defaultWeight) && defaultWeight > 0)) throw new CgnError('bad_request', `defaultAccountWeight must be > 0 (got ${defaultWeight})`);
  validate(state, demands);

  const miners = state.miners;
  const indexOf = new Map<string, number>();
  miners.forEach((m, k) => {
    if (indexOf.has(m.id)) throw new CgnError('bad_request', `miner ${m.id} appears twice in the state`);
    indexOf.set(m.id, k);
  });
  // Groups by DService name, then tier (a small array: no string building per instance).
  const groups = new Map<string, (Group | undefined)[]>();
  const allGroups: Group[] = [];
  for (const d of demands) {
    const tier = d.requirements.tier;
    let byTier = groups.get(d.name);
    if (byTier === undefined) groups.set(d.name, (byTier = []));
    const t = tierSlot(tier);
    if (byTier[t] !== undefined) throw new CgnError('bad_request', `DService ${d.name} is demanded twice in tier ${tier}; give one demand per (DService, tier)`);
    const g: Group = { demand: d, key: `${d.name}\u0000${tier}`, current: [], old: [], before: 0, target: 0, placed: 0, blocked: false, eligibleCount: 0, held: { ...ZERO } };
    byTier[t] = g;
    allGroups.push(g);
  }
  allGroups.sort((a, b) => byString(a.key, b.key));

  // 1. Stops. `used` books what the instances that stay take on each miner; `freed` what stops give
  // back on miners that report their own `free` room.
  const { used, free, known, reputationOf } = scratch(miners.length);
  const freed = new Map<number, Resources>();
  const stops: StopDecision[] = [];
  const stop = (i: InstanceView, reason: StopDecision['reason'], at: number | undefined, keptIn?: Group) => {
    stops.push({ kind: 'stop', instanceId: i.id, dservice: i.dservice, tier: i.tier, minerId: i.minerId, reason });
    if (at === undefined) return;
    if (keptIn !== undefined) {
      addAt(used, at * N, i.resources, -1);
      if (i.account === keptIn.demand.account) subtractInto(keptIn.held, i.resources);
      else keptIn.others = keptIn.others!.filter((o) => o !== i);
    }
    if (miners[at]!.free !== undefined) freed.set(at, add(freed.get(at) ?? ZERO, i.resources));
  };
  for (const i of state.instances) {
    checkResources(i.resources, () => `instance ${i.id} resources`);
    const g = groups.get(i.dservice)?.[tierSlot(i.tier)];
    const isCurrent = g !== undefined && i.version === g.demand.version;
    if (isCurrent) g.before++;
    const at = indexOf.get(i.minerId);
    const m = at === undefined ? undefined : miners[at]!;
    if (m === undefined || m.status === 'offline') {
      stop(i, 'miner_offline', undefined);
      continue;
    }
    if (g === undefined) {
      stop(i, 'not_demanded', at);
      continue;
    }
    const qualifies = isCurrent ? isEligible(m, g.demand.requirements) : m.status === 'online' && m.banned !== true;
    if (!qualifies) {
      stop(i, 'miner_ineligible', at);
      continue;
    }
    if (i.state === 'starting' && now - i.since > coldStartTimeoutMs) {
      stop(i, 'cold_start_timeout', at);
      (g.avoid ??= new Set()).add(i.minerId);
      continue;
    }
    (isCurrent ? g.current : g.old).push(i);
    addAt(used, at! * N, i.resources, 1);
    if (i.account === g.demand.account) addInto(g.held, i.resources);
    else (g.others ??= []).push(i);
  }
  for (const g of allGroups) {
    const d = g.demand;
    const wanted = d.desiredInstances ?? g.before;
    g.target = Math.min(d.maxInstances, Math.max(d.minInstances, wanted));
    if (g.current.length > g.target) {
      // Cheapest to lose first: not yet serving, then on the lowest-scored miner.
      let cheapest = Infinity;
      for (const i of g.current) cheapest = Math.min(cheapest, miners[indexOf.get(i.minerId)!]!.priceFloor);
      const ranked = g.current
        .map((i) => ({ i, s: score(miners[indexOf.get(i.minerId)!]!, cheapest, weights) }))
        .sort((a, b) => (a.i.state !== b.i.state ? (a.i.state === 'starting' ? -1 : 1) : a.s !== b.s ? a.s - b.s : -byString(a.i.id, b.i.id)));
      const excess = new Set(ranked.slice(0, g.current.length - g.target).map((r) => r.i));
      for (const i of excess) stop(i, 'excess', indexOf.get(i.minerId), g);
      g.current = g.current.filter((i) => !excess.has(i));
    }
    if (g.old.length > 0) {
      let ready = 0;
      for (const i of g.current) if (i.state === 'ready') ready++;
      if (g.target === 0 || ready >= g.target) {
        for (const i of g.old) stop(i, g.target === 0 ? 'excess' : 'superseded', indexOf.get(i.minerId), g);
        g.old = [];
      }
    }
  }
  stops.sort((a, b) => byString(a.instanceId, b.instanceId));

  // 2. Room per miner, computed when first needed: its own report plus what stops freed, or what
  // it is believed to have minus what stays on it.
  const roomAt = (at: number): number => {
    const k = at * N;
    if (known[at] === 0) {
      known[at] = 1;
      const m = miners[at]!;
      free.fill(0, k, k + N);
      if (m.free !== undefined) {
        addAt(free, k, m.free, 1);
        const back = freed.get(at);
        if (back !== undefined) addAt(free, k, back, 1);
      } else {
        addAt(free, k, capacityOf(m), 1);
        for (let j = 0; j < N; j++) free[k + j] = free[k + j]! - used[k + j]!;
      }
    }
    return k;
  };

  const total: Resources = { ...ZERO };
  for (const m of miners) {
    if (m.status !== 'online' || m.banned === true) continue;
    const c = m.claimed;
    const p = m.measured;
    if (p === undefined) addInto(total, c);
    else {
      total.cpus += Math.min(c.cpus, p.cpus);
      total.memoryMb += Math.min(c.memoryMb, p.memoryMb);
      total.diskMb += Math.min(c.diskMb, p.diskMb);
      total.gpus += Math.min(c.gpus, p.gpus);
      total.bandwidthMbps += Math.min(c.bandwidthMbps, p.bandwidthMbps);
    }
  }
  const weightOf = new Map<string, number>();
  for (const a of state.accounts) weightOf.set(a.account, a.weight);
  const shares = new ShareQueue(total, (a) => weightOf.get(a) ?? defaultWeight);
  const accounts = new Set<string>(weightOf.keys());
  for (const g of allGroups) {
    accounts.add(g.demand.account);
    shares.hold(g.demand.account, g.held);
    for (const i of g.others ?? []) {
      shares.hold(i.account, i.resources);
      accounts.add(i.account);
    }
  }

  const candidatesOf = (g: Group): Candidates => {
    if (g.candidates !== undefined) return g.candidates;
    const req = g.demand.requirements;
    const need = req.resources;
    const hosting = new Map<number, number>();
    for (const list of [g.current, g.old]) {
      for (const i of list) {
        const at = indexOf.get(i.minerId)!;
        hosting.set(at, (hosting.get(at) ?? 0) + 1);
      }
    }
    let cheapest = Infinity;
    let eligible = 0;
    const roomy: number[] = [];
    for (let at = 0; at < miners.length; at++) {
      const m = miners[at]!;
      if (!isEligible(m, req) || g.avoid?.has(m.id) === true) continue;
      eligible++;
      if (m.priceFloor < cheapest) cheapest = m.priceFloor;
      if (fitsAt(need, free, roomAt(at))) roomy.push(at);
    }
    g.eligibleCount = eligible;
    // Parallel arrays indexed by candidate number (no object per candidate: this runs per DService).
    const digest = g.demand.digest;
    const n = roomy.length;
    const scores = new Float64Array(n);
    const counts = new Int32Array(n);
    const cached = new Uint8Array(n);
    for (let c = 0; c < n; c++) {
      const at = roomy[c]!;
      const m = miners[at]!;
      let rep = reputationOf[at]!;
      if (Number.isNaN(rep)) reputationOf[at] = rep = reputationScore(m.reputation, weights);
      scores[c] = weights.price * priceScore(m.priceFloor, cheapest) + weights.reputation * rep;
      counts[c] = hosting.get(at) ?? 0;
      cached[c] = digest !== undefined && m.cachedPackages?.includes(digest) === true ? 1 : 0;
    }
    // Fewest instances of this DService on the miner, then the best score, then a cached package,
    // then the smallest id. A candidate's count changes only while it is out of the heap.
    const less = (a: number, b: number) =>
      counts[a] !== counts[b]
        ? counts[a]! < counts[b]!
        : scores[a] !== scores[b]
          ? scores[a]! > scores[b]!
          : cached[a] !== cached[b]
            ? cached[a] === 1
            : miners[roomy[a]!]!.id < miners[roomy[b]!]!.id;
    const order: number[] = new Array<number>(n);
    for (let c = 0; c < n; c++) order[c] = c;
    return (g.candidates = { at: roomy, counts, heap: new Heap(less, order) });
  };

  /** Places one instance of `g`; undefined when no eligible miner has room. */
  const placeOne = (g: Group): MinerView | undefined => {
    const { at, counts, heap } = candidatesOf(g);
    const need = g.demand.requirements.resources;
    for (let c = heap.pop(); c !== undefined; c = heap.pop()) {
      const k = roomAt(at[c]!);
      if (!fitsAt(need, free, k)) continue; // room only shrinks while placing: drop it for good
      addAt(free, k, need, -1);
      counts[c] = counts[c]! + 1;
      if (fitsAt(need, free, k)) heap.push(c);
      return miners[at[c]!]!;
    }
    return undefined;
  };

  // 3. Progressive filling: minimums first, then the rest of the wanted instances.
  const starts: StartDecision[] = [];
  const unplaced: Group[] = [];
  const byAccount = new Map<string, Group[]>();
  for (const g of allGroups) {
    const list = byAccount.get(g.demand.account);
    if (list === undefined) byAccount.set(g.demand.account, [g]);
    else list.push(g);
  }
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
        unplaced.push(pick);
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
          reason: n < d.minInstances ? 'min' : n < Math.min(pick.before, pick.target) ? 'replace' : 'demand',
        });
      }
      if (list.some(open)) shares.enqueue(account);
    }
  }

  const report: Unplaced[] = [];
  for (const g of unplaced.sort((a, b) => byString(a.key, b.key))) {
    const d = g.demand;
    const missing = g.target - count(g);
    const missingMin = Math.max(0, Math.min(d.minInstances, g.target) - count(g));
    if (g.eligibleCount === 0) {
      const diagnosis = diagnose(miners, d.requirements);
      const message = diagnosis.message ?? `every eligible miner for ${d.name} was just found to fail its cold start; retrying elsewhere`;
      report.push({ dservice: d.name, tier: d.requirements.tier, account: d.account, missing, missingMin, reason: 'no_eligible_miner', message: `${d.name}: ${message}`, diagnosis });
    } else {
      report.push({
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
  return {
    at: now,
    decisions: [...stops, ...starts],
    unplaced: report,
    shares: [...accounts].sort(byString).map((account) => ({ account, share: shares.share(account) })),
  };
}

function describe(r: Resources): string {
  const parts = [`${r.cpus} CPUs`, `${r.memoryMb} MB memory`];
  if (r.diskMb > 0) parts.push(`${r.diskMb} MB disk`);
  if (r.gpus > 0) parts.push(`${r.gpus} GPU`);
  if (r.bandwidthMbps > 0) parts.push(`${r.bandwidthMbps} Mbit/s`);
  return parts.join(', ');
}
