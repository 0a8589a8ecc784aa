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
 * What it keeps between calls is scratch only (typed-array books, the miner id index while the ids
 * are unchanged), so that a call leaves little garbage: the young-generation collections it would
 * otherwise trigger were the tail of its latency. place.equivalence.test.ts holds it to the plans of
 * the straightforward reference in test-fixtures/reference-place.ts.
 */
import { CgnError } from '@cgn/protocol';
import { ShareQueue } from './drf.js';
import { diagnose, isEligible, regionAllowed, type Diagnosis } from './filter.js';
import { Heap } from './heap.js';
import { add, addInto, checkResources, subtractInto, validResources, ZERO } from './resources.js';
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
  /** The demand's data regions, when it was fenced to some. */
  regions?: readonly string[];
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
  /** The demand's fence: its regions, sorted and joined; '' for anywhere. */
  fence: string;
  /** Position among the groups sorted by name, then tier. */
  index: number;
  /** The group of the same DService in another tier (groups are found by name, then along this chain). */
  sameName: Group | undefined;
  /** Instances of the current version that stay. */
  nCurrent: number;
  /** Instances of other versions that stay (for now). */
  nOld: number;
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
  at: Int32Array;
  /** Instances of the DService on each candidate. */
  counts: Int32Array;
  heap: Heap<number>;
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** Name, then tier (the order of the plan's reports and of the picks within an account). */
const byGroup = (a: Group, b: Group) => byString(a.demand.name, b.demand.name) || byString(a.demand.requirements.tier, b.demand.requirements.tier) || byString(a.fence, b.fence);

const fenceOf = (d: DServiceDemand): string => (d.requirements.regions === undefined ? '' : [...d.requirements.regions].sort().join(','));

/**
 * The group an instance of (dservice, tier) on a miner in `region` counts for: the demand it was
 * started for (`fence`) while there is one and its miner is in that fence; else, among the demands
 * of that DService and tier, a fenced one whose regions take the miner (the first fence in order),
 * else the one for anywhere, else any (whose requirements then stop the instance as ineligible).
 * So an instance in eu serves the demand fenced to eu before the one for anywhere, unless it was
 * started for anywhere.
 */
function groupFor(first: Group | undefined, tier: string, region: string | undefined, known: boolean, fence: string | undefined): Group | undefined {
  if (fence !== undefined) {
    for (let g = first; g !== undefined; g = g.sameName) {
      if (g.demand.requirements.tier === tier && g.fence === fence && (fence === '' || (known && regionAllowed(region, g.demand.requirements.regions)))) return g;
    }
  }
  let fenced: Group | undefined;
  let anywhere: Group | undefined;
  let any: Group | undefined;
  for (let g = first; g !== undefined; g = g.sameName) {
    if (g.demand.requirements.tier !== tier) continue;
    if (any === undefined || byString(g.fence, any.fence) < 0) any = g;
    if (g.fence === '') anywhere = g;
    else if (known && regionAllowed(region, g.demand.requirements.regions) && (fenced === undefined || byString(g.fence, fenced.fence) < 0)) fenced = g;
  }
  return fenced ?? anywhere ?? any;
}

function validate(state: ClusterState, demands: readonly DServiceDemand[]): void {
  for (const m of state.miners) {
    if (!validResources(m.claimed)) checkResources(m.claimed, `miner ${m.id} claimed`);
    if (m.measured !== undefined && !validResources(m.measured)) checkResources(m.measured, `miner ${m.id} measured`);
    if (m.free !== undefined && !validResources(m.free)) checkResources(m.free, `miner ${m.id} free`);
  }
  for (const d of demands) {
    if (!validResources(d.requirements.resources)) checkResources(d.requirements.resources, `${d.name} requirements`);
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

/** Miner indices found by one candidate scan, reused likewise (each scan copies out what it keeps). */
let found = new Int32Array(0);
function minerScratch(miners: number): Int32Array {
  if (found.length < miners) found = new Int32Array(Math.max(miners, Math.ceil(found.length * 1.5)));
  return found;
}

/**
 * Per-instance books, reused likewise: `stay` the index of the group an instance stays in (-1 once
 * stopped), `isOld` whether it is of another version than the demand's, `minerAt` its miner's index.
 * Groups keep counts, not lists: the lists are made only for the few groups that need them.
 */
let instanceBooks = { stay: new Int32Array(0), isOld: new Uint8Array(0), minerAt: new Int32Array(0) };
function instanceScratch(instances: number): typeof instanceBooks {
  if (instanceBooks.stay.length < instances) {
    const n = Math.max(instances, Math.ceil(instanceBooks.stay.length * 1.5));
    instanceBooks = { stay: new Int32Array(n), isOld: new Uint8Array(n), minerAt: new Int32Array(n) };
  }
  return instanceBooks;
}

/**
 * Miner id -> index in `state.miners`, kept from the last call while the ids are the same in the
 * same order (a node's miners change far less often than it places): checking that is one pass of
 * string comparisons, where building the map is a hash insertion per miner and its garbage.
 */
let minerIndex: { ids: string[]; map: ReadonlyMap<string, number> } = { ids: [], map: new Map() };
function indexMiners(miners: readonly MinerView[]): ReadonlyMap<string, number> {
  const last = minerIndex;
  if (last.ids.length === miners.length) {
    let k = 0;
    while (k < miners.length && last.ids[k] === miners[k]!.id) k++;
    if (k === miners.length) return last.map;
  }
  const map = new Map<string, number>();
  const ids = new Array<string>(miners.length);
  for (let k = 0; k < miners.length; k++) {
    const id = miners[k]!.id;
    if (map.has(id)) throw new CgnError('bad_request', `miner ${id} appears twice in the state`);
    map.set(id, k);
    ids[k] = id;
  }
  minerIndex = { ids, map };
  return map;
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
  const indexOf = indexMiners(miners);
  // Groups by DService name, then tier along `sameName` (no string built per demand or instance).
  const groups = new Map<string, Group>();
  const allGroups: Group[] = [];
  for (const d of demands) {
    const tier = d.requirements.tier;
    const first = groups.get(d.name);
    const fence = fenceOf(d);
    for (let o = first; o !== undefined; o = o.sameName) {
      if (o.demand.requirements.tier === tier && o.fence === fence) {
        throw new CgnError('bad_request', `DService ${d.name} is demanded twice in tier ${tier}${fence === '' ? '' : ` fenced to ${fence}`}; give one demand per (DService, tier, regions)`);
      }
    }
    const g: Group = {
      demand: d,
      fence,
      index: 0,
      sameName: first,
      nCurrent: 0,
      nOld: 0,
      before: 0,
      target: 0,
      placed: 0,
      blocked: false,
      eligibleCount: 0,
      held: { cpus: 0, memoryMb: 0, diskMb: 0, gpus: 0, bandwidthMbps: 0 },
    };
    groups.set(d.name, g);
    allGroups.push(g);
  }
  allGroups.sort(byGroup);
  for (let k = 0; k < allGroups.length; k++) allGroups[k]!.index = k;

  // 1. Stops. `used` books what the instances that stay take on each miner; `freed` what stops give
  // back on miners that report their own `free` room.
  const { used, free, known, reputationOf } = scratch(miners.length);
  const instances = state.instances;
  const { stay, isOld, minerAt } = instanceScratch(instances.length);
  const freed = new Map<number, Resources>();
  const stops: StopDecision[] = [];
  const stop = (i: InstanceView, reason: StopDecision['reason'], at: number | undefined) => {
    stops.push({ kind: 'stop', instanceId: i.id, dservice: i.dservice, tier: i.tier, minerId: i.minerId, reason });
    if (at !== undefined && miners[at]!.free !== undefined) freed.set(at, add(freed.get(at) ?? ZERO, i.resources));
  };
  /** Stops instance `j`, which was to stay in `g`. */
  const unkeep = (j: number, reason: StopDecision['reason'], g: Group) => {
    const i = instances[j]!;
    const at = minerAt[j]!;
    stop(i, reason, at);
    stay[j] = -1;
    if (isOld[j] === 1) g.nOld--;
    else g.nCurrent--;
    addAt(used, at * N, i.resources, -1);
    if (i.account === g.demand.account) subtractInto(g.held, i.resources);
    else g.others = g.others!.filter((o) => o !== i);
  };
  for (let j = 0; j < instances.length; j++) {
    const i = instances[j]!;
    stay[j] = -1;
    if (!validResources(i.resources)) checkResources(i.resources, `instance ${i.id} resources`);
    const at = indexOf.get(i.minerId);
    const m = at === undefined ? undefined : miners[at]!;
    const g = groupFor(groups.get(i.dservice), i.tier, m?.region, m !== undefined, i.fence);
    const isCurrent = g !== undefined && i.version === g.demand.version;
    if (isCurrent) g!.before++;
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
    stay[j] = g.index;
    minerAt[j] = at!;
    if (isCurrent) {
      isOld[j] = 0;
      g.nCurrent++;
    } else {
      isOld[j] = 1;
      g.nOld++;
    }
    addAt(used, at! * N, i.resources, 1);
    if (i.account === g.demand.account) addInto(g.held, i.resources);
    else (g.others ??= []).push(i);
  }
  // The instances that still stay in a group, in state order: from one counting sort of all of
  // them, made the first time a group needs its list.
  let memberStart: Int32Array | undefined;
  let memberOrder: Int32Array | undefined;
  const membersOf = (g: Group): number[] => {
    if (memberStart === undefined || memberOrder === undefined) {
      const start = new Int32Array(allGroups.length + 1);
      for (let j = 0; j < instances.length; j++) if (stay[j]! >= 0) start[stay[j]! + 1] = start[stay[j]! + 1]! + 1;
      for (let k = 0; k < allGroups.length; k++) start[k + 1] = start[k + 1]! + start[k]!;
      const next = start.slice(0, allGroups.length);
      const order = new Int32Array(start[allGroups.length]!);
      for (let j = 0; j < instances.length; j++) {
        const k = stay[j]!;
        if (k < 0) continue;
        order[next[k]!] = j;
        next[k] = next[k]! + 1;
      }
      memberStart = start;
      memberOrder = order;
    }
    const out: number[] = [];
    for (let c = memberStart[g.index]!; c < memberStart[g.index + 1]!; c++) {
      const j = memberOrder[c]!;
      if (stay[j] === g.index) out.push(j);
    }
    return out;
  };
  for (const g of allGroups) {
    const d = g.demand;
    const wanted = d.desiredInstances ?? g.before;
    g.target = Math.min(d.maxInstances, Math.max(d.minInstances, wanted));
    if (g.nCurrent > g.target) {
      // Cheapest to lose first: not yet serving, then on the lowest-scored miner.
      const current = membersOf(g).filter((j) => isOld[j] === 0);
      let cheapest = Infinity;
      for (const j of current) cheapest = Math.min(cheapest, miners[minerAt[j]!]!.priceFloor);
      const ranked = current
        .map((j) => ({ j, i: instances[j]!, s: score(miners[minerAt[j]!]!, cheapest, weights) }))
        .sort((a, b) => (a.i.state !== b.i.state ? (a.i.state === 'starting' ? -1 : 1) : a.s !== b.s ? a.s - b.s : -byString(a.i.id, b.i.id)));
      for (const r of ranked.slice(0, g.nCurrent - g.target)) unkeep(r.j, 'excess', g);
    }
    if (g.nOld > 0) {
      const staying = membersOf(g);
      let ready = 0;
      for (const j of staying) if (isOld[j] === 0 && instances[j]!.state === 'ready') ready++;
      if (g.target === 0 || ready >= g.target) {
        for (const j of staying) if (isOld[j] === 1) unkeep(j, g.target === 0 ? 'excess' : 'superseded', g);
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
        // capacityOf(m) less what stays, without an object per miner.
        const c = m.claimed;
        const p = m.measured;
        free[k] = (p === undefined ? c.cpus : Math.min(c.cpus, p.cpus)) - used[k]!;
        free[k + 1] = (p === undefined ? c.memoryMb : Math.min(c.memoryMb, p.memoryMb)) - used[k + 1]!;
        free[k + 2] = (p === undefined ? c.diskMb : Math.min(c.diskMb, p.diskMb)) - used[k + 2]!;
        free[k + 3] = (p === undefined ? c.gpus : Math.min(c.gpus, p.gpus)) - used[k + 3]!;
        free[k + 4] = (p === undefined ? c.bandwidthMbps : Math.min(c.bandwidthMbps, p.bandwidthMbps)) - used[k + 4]!;
      }
    }
    return k;
  };

  const total: Resources = { cpus: 0, memoryMb: 0, diskMb: 0, gpus: 0, bandwidthMbps: 0 };
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
    if (g.nCurrent + g.nOld > 0) {
      for (const j of membersOf(g)) hosting.set(minerAt[j]!, (hosting.get(minerAt[j]!) ?? 0) + 1);
    }
    let cheapest = Infinity;
    let eligible = 0;
    const found = minerScratch(miners.length);
    let n = 0;
    for (let at = 0; at < miners.length; at++) {
      const m = miners[at]!;
      if (!isEligible(m, req) || g.avoid?.has(m.id) === true) continue;
      eligible++;
      if (m.priceFloor < cheapest) cheapest = m.priceFloor;
      if (fitsAt(need, free, roomAt(at))) found[n++] = at;
    }
    g.eligibleCount = eligible;
    const roomy = found.slice(0, n);
    // Parallel arrays indexed by candidate number (no object per candidate: this runs per DService).
    const digest = g.demand.digest;
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
  const count = (g: Group) => g.nCurrent + g.placed;

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
        const start: StartDecision = {
          kind: 'start',
          dservice: d.name,
          version: d.version,
          tier: d.requirements.tier,
          account,
          minerId: m.id,
          resources: { ...d.requirements.resources },
          reason: n < d.minInstances ? 'min' : n < Math.min(pick.before, pick.target) ? 'replace' : 'demand',
        };
        if (d.requirements.regions !== undefined) start.regions = d.requirements.regions;
        starts.push(start);
      }
      if (list.some(open)) shares.enqueue(account);
    }
  }

  const report: Unplaced[] = [];
  for (const g of unplaced.sort(byGroup)) {
    const d = g.demand;
    const missing = g.target - count(g);
    const missingMin = Math.max(0, Math.min(d.minInstances, g.target) - count(g));
    if (g.eligibleCount === 0) {
      const diagnosis = diagnose(miners, d.requirements);
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
