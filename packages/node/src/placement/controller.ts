/**
 * The node's placement controller: every tick (and at once when a request arrives for a DService
 * with no instance), it reads what the node knows — connected miners with their advertisements
 * and capability probes, the approved DServices that have a package, their queues — runs the
 * scheduler (`autoscale`, then `place`) and sends the decisions to miners as `place` / `unplace`
 * frames. The decisions are the scheduler's; this file only gathers inputs and applies outputs.
 *
 * Instances: `starting` from the place frame until the miner advertises the DService (then
 * `ready`, and the time it took is a measured cold start); a `placed` frame with ok false, or a
 * start that outlives the cold-start budget, is given up and placed elsewhere. DServices a miner
 * was started with by hand (`--dservice`) count as ready instances the controller never stops.
 *
 * Regions: work of accounts limited to data regions may run only on miners there. Each (DService,
 * tier) is measured and demanded in parts: one for anywhere, and one per fence (a set of regions)
 * whose work the broker holds, that woke placement, or was seen in the last `REGION_MEMORY_MS` (or
 * later, while an instance in its regions is left).
 * autoscale splits the instances among the parts (its rule: each part on its own queue, at most
 * maxInstances together, fences first when they must share), and `place` starts a fenced part's
 * instances in its regions. An instance counts for the part it was started for while its miner is
 * in that fence, else for the first fence whose regions take its miner, else for anywhere
 * (`fenceFor`, as `place` counts). At most `MAX_FENCED_PARTS` fences per (DService,
 * tier): the rest, the least loaded, are demanded as one fence, the union of their regions.
 */
import { randomBytes } from 'node:crypto';
import { frame, TIERS, type AdvertiseFrame, type DServiceDescriptor, type OutgoingFrame, type PlacedFrame, type Tier } from '@cgn/protocol';
import {
  autoscale, diagnose as diagnoseMiners, fenceFor, fenceKey, partKey, place, regionAllowed, scaleKey,
  type AutoscaleMemory, type Clock, type DServiceDemand, type DServiceMetrics, type InstanceView, type MinerView, type ReputationInputs, type Requirements, type Resources, type Unplaced,
} from '@cgn/scheduler';
import { ColdStarts } from './cold-starts.js';
import type { PlacementOptions } from './options.js';
import type { ProbeResult } from './probe-runner.js';

/** Where miners fetch a DService's package (served on the node's miner endpoint). */
export interface PackageRef {
  digest: string;
  sizeBytes: number;
  packagePath: string;
}

/** The DServices whose package the node can hand out; null: none (only hand-started miners run it). */
export interface PackageSource {
  packageOf(name: string): PackageRef | null;
  /** The `packagePath` to send: the package's own, with a download grant for this placement only. */
  grant?(minerId: string, instanceId: string, ref: PackageRef): string;
  /** The placement ended: its download grant goes. */
  revoke?(instanceId: string): void;
}

export const NO_PACKAGES: PackageSource = { packageOf: () => null };

/** A connected, admitted miner as the controller sees it. */
export interface ConnectedMiner {
  id: string;
  tier: Tier;
  /** The DServices it was admitted to run (advertised, digest allowed). */
  dservices: readonly string[];
  draining: boolean;
  advert: Omit<AdvertiseFrame, 't' | 'v'>;
}

export interface ProbeSource {
  resultOf(minerId: string): ProbeResult | undefined;
  /** `group`: miners of one group (tier) wait in one line; the lines take turns. */
  probe(minerId: string, claimedCpus: number, group?: string): void;
  forget(minerId: string): void;
}

export interface PlacementDeps {
  /** Epoch milliseconds. */
  clock: Clock;
  miners: () => ConnectedMiner[];
  /** The approved DServices this node routes to. */
  dservices: () => readonly DServiceDescriptor[];
  packages: PackageSource;
  queueOf: (dservice: string, tier: Tier) => { depth: number; oldestMs: number };
  inFlightOf: (dservice: string, tier: Tier) => number;
  send: (minerId: string, f: OutgoingFrame) => void;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
  probes?: ProbeSource | null;
  /** A miner's record from the ledger's service level; undefined: the scheduler's neutral prior. */
  reputationOf?: (minerId: string) => ReputationInputs | undefined;
  defaultTier: Tier;
  timers?: { setInterval: (fn: () => void, ms: number) => unknown; clearInterval: (t: unknown) => void };
  /**
   * Cheap facts that say whether a timer round can change anything: the pool's membership
   * version and the work units the broker holds. Without it every tick is a full round.
   */
  quiet?: () => { membership: number; work: number };
  /**
   * The work the broker holds for (dservice, tier), queued or running, per fence (regions null:
   * anywhere); null when none of it is fenced (then `queueOf` and `inFlightOf` are the anywhere part).
   */
  fencesWaiting?: (dservice: string, tier: Tier) => readonly HeldFence[] | null;
}

/** Work held under one fence (see `PlacementDeps.fencesWaiting`). */
export interface HeldFence {
  regions: readonly string[] | null;
  queued: number;
  running: number;
  oldestMs: number;
}

/** How long a fence of work seen for a (DService, tier) keeps its own part (and its instances) after the work went. */
const REGION_MEMORY_MS = 60_000;

/** Fenced parts per (DService, tier) at most; the least loaded of the rest are demanded as one, the union of their regions. */
const MAX_FENCED_PARTS = 16;

/** One part of a (DService, tier)'s demand: its fence and its work. */
interface Part {
  /** Sorted; undefined: anywhere. */
  regions: string[] | undefined;
  fence: string;
  queued: number;
  running: number;
  oldestMs: number;
  /** A request for it woke placement in the last `KICK_HOLD_MS` (it may not be in the queue yet). */
  kicked: boolean;
}

const newPart = (regions: string[] | undefined): Part => ({ regions, fence: fenceKey(regions), queued: 0, running: 0, oldestMs: 0, kicked: false });

/** However quiet the node, a full round at least this often (approvals, prices, reputation). */
const FULL_ROUND_EVERY_MS = 15_000;

/** What placement can do for a (DService, tier) that no connected miner runs now. */
export type PlacementView =
  /** Placement does not apply: no package (or placement is off). */
  | { state: 'none' }
  /** An instance is starting; `estimateMs` until it should be ready. */
  | { state: 'placing'; minerId: string; instanceId: string; estimateMs: number; basis: string }
  /** Nothing starting, but a request would start an instance on one of `eligible` miners. */
  | { state: 'placeable'; eligible: number; estimateMs: number; basis: string }
  /** No miner could take an instance: the scheduler's reason. */
  | { state: 'blocked'; reason: 'no_eligible_miner' | 'no_free_capacity'; blocking: string | null; message: string };

interface Tracked {
  view: InstanceView;
  /** Region its miner advertised when it was placed. */
  region?: string;
  digest: string;
  placedAt: number;
  /** Why the miner could not start it: a ghost the next plan stops and replaces elsewhere. */
  failed?: string;
}

/** A request arriving counts as queued work for this long, until it is in the broker's queue. */
const KICK_HOLD_MS = 2000;
/** After an unplace, the miner's advertisement may still list the DService for a while. */
const UNPLACE_GRACE_MS = 10_000;
/**
 * A miner that failed to start a DService is not asked again for it for a while: 1 s after the
 * first failure, doubling with each one after, at most 30 s; an instance ready there resets it.
 */
const backoffMs = (failures: number) => Math.min(30_000, 1000 * 2 ** Math.max(0, failures - 1));

export class PlacementController {
  private readonly tracked = new Map<string, Tracked>();
  private memory: AutoscaleMemory = new Map();
  /** Per part (`partKey`): when work for it was last seen. */
  private readonly lastRequest = new Map<string, number>();
  /** Per (DService, tier), per fence key: requests that woke placement, and when. */
  private readonly kicks = new Map<string, Map<string, { regions: string[] | undefined; at: number }>>();
  /** Per (DService, tier), per fence key: when fenced work was last seen (held, or waking placement). */
  private readonly fencesSeen = new Map<string, Map<string, { regions: string[]; at: number }>>();
  private readonly unplacedAt = new Map<string, number>();
  private readonly failures = new Map<string, { at: number; count: number }>();
  private readonly logged = new Map<string, string>();
  private unplaced = new Map<string, Unplaced>();
  /** Whether any miner could take an instance, per (DService, tier): O(miners) to find, kept until the next round. */
  private readonly eligibleCache = new Map<string, { eligible: number; pending: number; blocking: string | null; message: string | null }>();
  private readonly knownMiners = new Set<string>();
  private readonly tag = randomBytes(4).toString('hex');
  private seq = 0;
  private lastTickAt = -Infinity;
  private timer: unknown = null;
  private ticking = false;
  readonly coldStarts: ColdStarts;
  readonly counters = { ticks: 0, skipped: 0, settled: 0, placed: 0, unplaced: 0, ready: 0, failed: 0, timedOut: 0, errors: 0 };
  private lastMembership = -1;
  /** Instances of DServices miners were started with (hand-started), from the last full round. */
  private statics: InstanceView[] = [];
  /** Of those, the region of each one's miner, per (DService, tier) key. */
  private staticRegions = new Map<string, (string | undefined)[]>();
  /**
   * The last full round (miners read, `place` run): when, for which membership and demands, and
   * whether its plan had nothing to do (no start, no stop of an instance of its own).
   */
  private lastFull = { at: -Infinity, membership: -1, demands: '', settled: false };
  private lastUnplaceAt = -Infinity;

  constructor(private readonly deps: PlacementDeps, readonly options: PlacementOptions) {
    this.coldStarts = new ColdStarts(options.defaultColdStartMs);
  }

  start(): void {
    if (this.timer !== null) return;
    const t = this.deps.timers ?? { setInterval: (fn: () => void, ms: number) => setInterval(fn, ms).unref(), clearInterval: (x: unknown) => clearInterval(x as ReturnType<typeof setInterval>) };
    this.timer = t.setInterval(() => this.timerTick(), this.options.tickMs);
  }

  stop(): void {
    if (this.timer === null) return;
    (this.deps.timers?.clearInterval ?? ((x: unknown) => clearInterval(x as ReturnType<typeof setInterval>)))(this.timer);
    this.timer = null;
  }

  /** The instances the controller placed (not the hand-started ones), for status and tests. */
  instances(): (InstanceView & { failed?: string })[] {
    return [...this.tracked.values()].map((t) => ({ ...t.view, ...(t.failed !== undefined ? { failed: t.failed } : {}) }));
  }

  /**
   * A request arrived for a DService no connected miner runs: place an instance now (not at the
   * next tick) and say what placement can do for it.
   */
  wake(dservice: string, tier: Tier, regions: readonly string[] | null = null): PlacementView {
    if (!this.options.enabled || this.descriptorOf(dservice) === undefined || this.deps.packages.packageOf(dservice) === null) return { state: 'none' };
    const key = scaleKey(dservice, tier);
    const now = this.deps.clock.now();
    const sorted = regions === null ? undefined : [...regions].sort();
    const fence = fenceKey(sorted);
    if (sorted !== undefined) this.sawFence(key, fence, sorted, now);
    let kicks = this.kicks.get(key);
    if (kicks === undefined) this.kicks.set(key, (kicks = new Map()));
    const recent = kicks.get(fence);
    // Bounded: fences are accounts' region lists; entries older than KICK_HOLD_MS go at the next round.
    if (recent !== undefined || kicks.size < 1024) kicks.set(fence, { regions: sorted, at: now });
    this.lastRequest.set(partKey(dservice, tier, sorted), now);
    // One tick per burst: later requests of the same cold start only read the state.
    if (recent === undefined || now - this.lastTickAt >= this.options.tickMs) this.tick();
    return this.view(dservice, tier, regions);
  }

  /** Notes fenced work seen for a (DService, tier) key. */
  private sawFence(key: string, fence: string, regions: string[], now: number): void {
    let seen = this.fencesSeen.get(key);
    if (seen === undefined) this.fencesSeen.set(key, (seen = new Map()));
    if (seen.has(fence) || seen.size < 1024) seen.set(fence, { regions, at: now });
  }

  /**
   * The parts of a (DService, tier)'s demand: anywhere (always), and each fence with work held,
   * waking placement, or seen within `REGION_MEMORY_MS`; at most `MAX_FENCED_PARTS` fences plus
   * one union of the rest. Forgets kicks and fences past their time.
   */
  private partsOf(dservice: string, tier: Tier, now: number, instances: readonly { region: string | undefined; fence: string | undefined }[]): Part[] {
    const key = scaleKey(dservice, tier);
    const anywhere = newPart(undefined);
    const parts = new Map<string, Part>([['', anywhere]]);
    const held = this.deps.fencesWaiting?.(dservice, tier) ?? null;
    if (held === null) {
      const q = this.deps.queueOf(dservice, tier);
      anywhere.queued = q.depth;
      anywhere.oldestMs = q.oldestMs;
      anywhere.running = this.deps.inFlightOf(dservice, tier);
    } else {
      for (const f of held) {
        let p = anywhere;
        if (f.regions !== null) {
          const regions = [...f.regions].sort();
          const fence = fenceKey(regions);
          this.sawFence(key, fence, regions, now);
          p = parts.get(fence) ?? newPart(regions);
          parts.set(fence, p);
        }
        p.queued += f.queued;
        p.running += f.running;
        p.oldestMs = Math.max(p.oldestMs, f.oldestMs);
      }
    }
    const kicks = this.kicks.get(key);
    if (kicks !== undefined) {
      for (const [fence, k] of kicks) {
        if (now - k.at > KICK_HOLD_MS) {
          kicks.delete(fence);
          continue;
        }
        let p = parts.get(fence);
        if (p === undefined) parts.set(fence, (p = newPart(k.regions)));
        p.kicked = true;
      }
      if (kicks.size === 0) this.kicks.delete(key);
    }
    const seen = this.fencesSeen.get(key);
    if (seen !== undefined) {
      for (const [fence, f] of seen) {
        // Past its memory a fence keeps its part while an instance of it is left: its own idle rule
        // stops them (not the anywhere part's, whose last request may be much older).
        const left = instances.some((i) => (i.fence === undefined ? regionAllowed(i.region, f.regions) : i.fence === fence));
        if (now - f.at > REGION_MEMORY_MS && !left) seen.delete(fence);
        else if (!parts.has(fence)) parts.set(fence, newPart(f.regions));
      }
      if (seen.size === 0) this.fencesSeen.delete(key);
    }
    if (parts.size - 1 <= MAX_FENCED_PARTS) return [...parts.values()];
    // Too many fences: the most loaded keep their own part, the rest are demanded as one (instances
    // in one of their regions: never outside a fence that asked, though maybe not in each).
    const fenced = [...parts.values()].filter((p) => p.regions !== undefined);
    fenced.sort((a, b) => b.queued + b.running - (a.queued + a.running) || b.oldestMs - a.oldestMs || (a.fence < b.fence ? -1 : a.fence > b.fence ? 1 : 0));
    const out = new Map<string, Part>([['', anywhere]]);
    for (const p of fenced.slice(0, MAX_FENCED_PARTS)) out.set(p.fence, p);
    const rest = fenced.slice(MAX_FENCED_PARTS);
    const union = newPart([...new Set(rest.flatMap((p) => p.regions!))].sort());
    const into = out.get(union.fence) ?? union;
    out.set(into.fence, into);
    for (const p of rest) {
      into.queued += p.queued;
      into.running += p.running;
      into.oldestMs = Math.max(into.oldestMs, p.oldestMs);
      into.kicked ||= p.kicked;
    }
    return [...out.values()];
  }

  /**
   * What placement can do for (dservice, tier) now, without changing anything; with `regions`,
   * for work that may run only there (an instance starting elsewhere does not count).
   */
  view(dservice: string, tier: Tier, regions: readonly string[] | null = null): PlacementView {
    const d = this.descriptorOf(dservice);
    if (!this.options.enabled || d === undefined || this.deps.packages.packageOf(dservice) === null) return { state: 'none' };
    const now = this.deps.clock.now();
    const estimate = this.coldStarts.estimateMs();
    const basis = this.coldStarts.count === 0 ? 'no cold start measured yet: the default' : `the median of the last ${this.coldStarts.count} cold starts`;
    let first: Tracked | undefined;
    for (const t of this.tracked.values()) {
      if (t.failed !== undefined || t.view.state !== 'starting' || t.view.dservice !== dservice || t.view.tier !== tier) continue;
      if (regions !== null && !regionAllowed(t.region, regions)) continue;
      if (first === undefined || t.placedAt < first.placedAt) first = t;
    }
    if (first !== undefined) return { state: 'placing', minerId: first.view.minerId, instanceId: first.view.id, estimateMs: Math.max(0, Math.round(estimate - (now - first.placedAt))), basis };
    const key = scaleKey(dservice, tier);
    const cacheKey = regions === null ? key : `${key}\u0000${regions.join(',')}`;
    let diag = this.eligibleCache.get(cacheKey);
    if (diag === undefined) {
      // A flood of requests nothing can run costs one pass over the miners per round, not one per request.
      const miners = this.deps.miners();
      const requirements = this.requirementsOf(d, tier, regions ?? undefined);
      const full = diagnoseMiners(this.minerViews(miners), requirements);
      // None can take it as believed, but miners whose probe is still running claim enough: the
      // work waits for their probes (a finished probe wakes a round) instead of being refused.
      const probes = this.deps.probes;
      const unprobed = full.eligible > 0 || probes === undefined || probes === null ? [] : miners.filter((m) => probes.resultOf(m.id) === undefined);
      const pending = unprobed.length === 0 ? 0 : diagnoseMiners(this.minerViews(unprobed, true), requirements).eligible;
      diag = { eligible: full.eligible, pending, blocking: full.blocking ?? null, message: full.message ?? null };
      // Bounded: fences are accounts' region lists, and the cache is cleared every full round.
      if (this.eligibleCache.size < 1024) this.eligibleCache.set(cacheKey, diag);
    }
    if (diag.eligible === 0 && diag.pending > 0) {
      const n = diag.pending;
      return { state: 'placeable', eligible: n, estimateMs: Math.round(estimate), basis: `${basis}, once the capability probe of ${n === 1 ? 'a miner' : `${n} miners`} that claim${n === 1 ? 's' : ''} enough confirms it` };
    }
    if (diag.eligible === 0) return { state: 'blocked', reason: 'no_eligible_miner', blocking: diag.blocking, message: diag.message ?? `no miner can run ${dservice}` };
    const u = this.unplaced.get(partKey(dservice, tier, regions === null ? undefined : [...regions].sort()));
    if (u !== undefined && u.reason === 'no_free_capacity') return { state: 'blocked', reason: 'no_free_capacity', blocking: null, message: u.message };
    return { state: 'placeable', eligible: diag.eligible, estimateMs: Math.round(estimate), basis };
  }

  /** A `placed` frame: the miner started the instance (it is ready once it advertises it) or could not. */
  onPlaced(minerId: string, f: PlacedFrame): void {
    const t = this.tracked.get(f.instanceId);
    if (t === undefined || t.view.minerId !== minerId) {
      this.deps.log('warn', 'placed frame for an instance this node did not place there; ignored', { miner: minerId.slice(0, 16), instance: f.instanceId.slice(0, 64) });
      return;
    }
    const now = this.deps.clock.now();
    // Fetched or given up, the download is over.
    this.deps.packages.revoke?.(f.instanceId);
    const failure = !f.ok ? (f.message ?? 'no reason given') : f.digest !== t.digest ? `it started a package of digest ${f.digest.slice(0, 16)}…, not ${t.digest.slice(0, 16)}…` : null;
    if (failure === null) {
      this.deps.log('info', 'instance started on the miner', { miner: minerId.slice(0, 16), instance: f.instanceId, dservice: t.view.dservice, coldStartMs: f.coldStartMs, fetched: f.fetched });
      return;
    }
    this.counters.failed++;
    t.failed = failure.slice(0, 500);
    // A ghost still starting past the budget: the next plan stops it and places elsewhere.
    t.view = { ...t.view, state: 'starting', since: now - this.options.coldStartTimeoutMs - 1 };
    this.failed(`${minerId}\u0000${t.view.dservice}`, now);
    this.deps.log('warn', 'the miner could not start the instance; placing it elsewhere', { miner: minerId.slice(0, 16), instance: f.instanceId, dservice: t.view.dservice, reason: t.failed });
    this.tick();
  }

  /**
   * The timer's round, skipped while it could not change anything: no instance of the
   * controller's own, no request waiting, running or just arrived, and the same miners as at the
   * last round. A round is O(miners); at 10,000 idle miners those rounds were most of the node's
   * idle CPU.
   */
  private timerTick(): void {
    const q = this.deps.quiet?.();
    if (q !== undefined) {
      const now = this.deps.clock.now();
      const same = q.membership === this.lastMembership && q.work === 0 && this.tracked.size === 0 && this.kicks.size === 0;
      if (same && now - this.lastTickAt < FULL_ROUND_EVERY_MS) {
        this.counters.skipped++;
        return;
      }
      this.lastMembership = q.membership;
    }
    this.tick(true);
  }

  /**
   * One round: measure, autoscale, place, apply. Errors are logged; the next tick tries again.
   * `settledOk` (the timer's rounds): when the last full round's plan had nothing to do (no start,
   * no stop of its own instances; what it could not place it reports all the same) and since
   * then neither the miners (membership version), nor the demands (what autoscale wants, versions,
   * digests) changed, nor an instance of the controller's own is starting, failed or just stopped,
   * the round stops after autoscale, without reading the miners or running `place` (both
   * O(miners)): the same inputs would give the same empty plan. A full round still runs at least
   * every 15 s (probe results, reputation, prices). Under load at 10,000 miners, rounds every
   * second were a fifth of the node's CPU per request.
   */
  tick(settledOk = false): void {
    if (this.ticking) return;
    this.ticking = true;
    try {
      this.round(settledOk);
    } catch (err) {
      this.counters.errors++;
      this.deps.log('error', 'placement round failed', { err: err instanceof Error ? err.message : String(err) });
    } finally {
      this.ticking = false;
    }
  }

  private round(settledOk: boolean): void {
    const now = this.deps.clock.now();
    this.lastTickAt = now;
    this.counters.ticks++;
    const membership = this.deps.quiet?.().membership ?? null;
    let unsettled = false;
    for (const t of this.tracked.values()) if (t.failed !== undefined || t.view.state !== 'ready') unsettled = true;
    const mustRead =
      !settledOk || membership === null || membership !== this.lastFull.membership || !this.lastFull.settled || unsettled ||
      now - this.lastFull.at >= FULL_ROUND_EVERY_MS || now - this.lastUnplaceAt < UNPLACE_GRACE_MS + this.options.tickMs;
    let miners: ConnectedMiner[] | null = null;
    const readMiners = (): ConnectedMiner[] => {
      this.eligibleCache.clear();
      const list = this.deps.miners();
      this.probeNewcomers(list);
      this.refreshInstances(new Map(list.map((m) => [m.id, m])), now);
      this.statics = this.staticInstances(list, now);
      this.staticRegions = new Map();
      const regionOf = new Map(list.map((m) => [m.id, m.advert.region]));
      for (const i of this.statics) {
        const key = scaleKey(i.dservice, i.tier);
        let regions = this.staticRegions.get(key);
        if (regions === undefined) this.staticRegions.set(key, (regions = []));
        regions.push(regionOf.get(i.minerId));
      }
      return list;
    };
    if (mustRead) miners = readMiners();
    // Instances per (DService, tier), each with its miner's region: the controller's own, then the hand-started ones.
    const instancesOf = new Map<string, { region: string | undefined; fence: string | undefined; ready: boolean }[]>();
    const tiersOf = new Map<string, Set<Tier>>();
    const count = (dservice: string, tier: Tier, region: string | undefined, fence: string | undefined, ready: boolean): void => {
      const key = scaleKey(dservice, tier);
      let list = instancesOf.get(key);
      if (list === undefined) instancesOf.set(key, (list = []));
      list.push({ region, fence, ready });
      let tiers = tiersOf.get(dservice);
      if (tiers === undefined) tiersOf.set(dservice, (tiers = new Set()));
      tiers.add(tier);
    };
    for (const t of this.tracked.values()) count(t.view.dservice, t.view.tier, t.region, t.view.fence, t.view.state === 'ready');
    for (const [key, regions] of this.staticRegions) {
      const [dservice, tier] = key.split('\u0000') as [string, Tier];
      for (const r of regions) count(dservice, tier, r, undefined, true);
    }

    const metrics: DServiceMetrics[] = [];
    const demands: DServiceDemand[] = [];
    for (const d of this.deps.dservices()) {
      const pkg = this.deps.packages.packageOf(d.name);
      if (pkg === null || !this.options.enabled) continue;
      const tiers = new Set<Tier>([this.deps.defaultTier, ...(tiersOf.get(d.name) ?? [])]);
      for (const tier of TIERS) {
        const key = scaleKey(d.name, tier);
        if (this.kicks.has(key) || this.fencesSeen.has(key) || this.deps.queueOf(d.name, tier).depth > 0) tiers.add(tier);
      }
      for (const tier of tiers) {
        const instances = instancesOf.get(scaleKey(d.name, tier)) ?? [];
        const parts = this.partsOf(d.name, tier, now, instances);
        const fences = parts.filter((p) => p.regions !== undefined).map((p) => ({ key: p.fence, regions: p.regions! }));
        const counts = new Map<string, { ready: number; starting: number }>();
        for (const i of instances) {
          const fence = fences.length === 0 ? '' : fenceFor(i.region, fences, i.fence);
          const c = counts.get(fence) ?? { ready: 0, starting: 0 };
          counts.set(fence, c);
          if (i.ready) c.ready++;
          else c.starting++;
        }
        const min = tier === this.deps.defaultTier ? (d.instances?.min ?? 0) : 0;
        const max = Math.max(min, d.instances?.max ?? this.options.defaultMaxInstances);
        for (const part of parts) {
          const key = partKey(d.name, tier, part.regions);
          if (part.queued + part.running > 0 || part.kicked) this.lastRequest.set(key, now);
          const last = this.lastRequest.get(key);
          const regions = part.regions === undefined ? {} : { regions: part.regions };
          metrics.push({
            dservice: d.name, tier, minInstances: part.regions === undefined ? min : 0, maxInstances: max, ready: counts.get(part.fence)?.ready ?? 0, starting: counts.get(part.fence)?.starting ?? 0,
            concurrency: d.concurrency, queueDepth: Math.max(part.queued, part.kicked ? 1 : 0), queueWaitMs: part.oldestMs, inFlight: part.running, ...(last !== undefined ? { lastRequestAt: last } : {}), ...regions,
          });
          demands.push({
            name: d.name, version: d.version, digest: pkg.digest, account: d.developer, requirements: this.requirementsOf(d, tier, part.regions),
            minInstances: part.regions === undefined ? min : 0, maxInstances: max, queueDepth: part.queued, queueWaitMs: part.oldestMs,
          });
        }
      }
    }
    const scaled = autoscale(this.memory, metrics, this.deps.clock, this.options.autoscale);
    this.memory = scaled.memory;
    const decided = new Set(scaled.decisions.map((x) => partKey(x.dservice, x.tier, x.regions)));
    for (const key of this.logged.keys()) if (!decided.has(key)) this.logged.delete(key);
    for (const s of scaled.decisions) {
      // The same decision every tick while it cannot be carried out is said once.
      const key = partKey(s.dservice, s.tier, s.regions);
      const said = `${s.from}>${s.to}:${s.reason}`;
      if (this.logged.get(key) === said) continue;
      this.logged.set(key, said);
      this.deps.log('info', 'autoscale', { dservice: s.dservice, tier: s.tier, ...(s.regions !== undefined ? { regions: s.regions } : {}), from: s.from, to: s.to, reason: s.reason });
    }
    const desired = new Map(scaled.desired.map((x) => [partKey(x.dservice, x.tier, x.regions), x.instances]));
    for (const d of demands) {
      d.desiredInstances = desired.get(partKey(d.name, d.requirements.tier, d.requirements.regions)) ?? 0;
      // The parts share maxInstances (autoscale's split): minInstances holds only within the part's share.
      d.minInstances = Math.min(d.minInstances, d.desiredInstances);
    }
    const said = demands.map((d) => `${d.name}\u0000${d.requirements.tier}\u0000${d.requirements.regions?.join(',') ?? '*'}\u0000${d.version}\u0000${d.digest}\u0000${d.account}\u0000${d.minInstances}\u0000${d.maxInstances}\u0000${d.desiredInstances}`).join('\n');
    if (!mustRead && said === this.lastFull.demands) {
      this.counters.settled++;
      return;
    }
    miners ??= readMiners();
    const all = [...[...this.tracked.values()].map((t) => t.view), ...this.statics];
    const plan = place({ miners: this.minerViews(miners), instances: all, accounts: [] }, demands, this.deps.clock, { coldStartTimeoutMs: this.options.coldStartTimeoutMs });
    // Stops of hand-started instances (more of them than autoscale wants) are not the controller's
    // to carry out: a plan of only those has nothing to do. Nor has one that could not place what
    // it wanted (no eligible miner, no room): with the same miners and demands the next plan would
    // say the same, so it waits for a change (or the next full round) instead of trying every second.
    const acts = plan.decisions.some((x) => x.kind !== 'stop' || this.tracked.has(x.instanceId));
    this.lastFull = { at: now, membership: membership ?? -1, demands: said, settled: !acts };
    this.unplaced = new Map(plan.unplaced.map((u) => [partKey(u.dservice, u.tier, u.regions), u]));
    let regionOf: Map<string, string | undefined> | null = null;
    for (const x of plan.decisions) {
      if (x.kind === 'stop') {
        const t = this.tracked.get(x.instanceId);
        if (t === undefined) continue; // a hand-started DService: not the controller's to stop
        this.tracked.delete(x.instanceId);
        this.deps.packages.revoke?.(x.instanceId);
        if (x.reason === 'cold_start_timeout' && t.failed === undefined) {
          this.counters.timedOut++;
          this.failed(`${x.minerId}\u0000${x.dservice}`, now);
        }
        if (t.failed !== undefined) continue;
        this.counters.unplaced++;
        this.unplacedAt.set(`${x.minerId}\u0000${x.dservice}`, now);
        this.lastUnplaceAt = now;
        this.deps.send(x.minerId, frame({ t: 'unplace', instanceId: x.instanceId, reason: x.reason }));
        this.deps.log('info', 'instance stopped', { miner: x.minerId.slice(0, 16), instance: x.instanceId, dservice: x.dservice, tier: x.tier, reason: x.reason });
        continue;
      }
      const where = `${x.minerId}\u0000${x.dservice}`;
      const failed = this.failures.get(where);
      if (failed !== undefined && now - failed.at < backoffMs(failed.count)) continue;
      const pkg = this.deps.packages.packageOf(x.dservice);
      if (pkg === null) continue;
      const id = `${this.tag}-${(++this.seq).toString(36)}`;
      regionOf ??= new Map(miners.map((m) => [m.id, m.advert.region]));
      const region = regionOf.get(x.minerId);
      this.tracked.set(id, {
        ...(region !== undefined ? { region } : {}),
        view: { id, dservice: x.dservice, version: x.version, tier: x.tier, account: x.account, minerId: x.minerId, resources: x.resources, state: 'starting', since: now, fence: fenceKey(x.regions) },
        digest: pkg.digest,
        placedAt: now,
      });
      this.counters.placed++;
      this.deps.send(x.minerId, frame({ t: 'place', instanceId: id, name: x.dservice, version: x.version, digest: pkg.digest, packagePath: this.deps.packages.grant?.(x.minerId, id, pkg) ?? pkg.packagePath, sizeBytes: pkg.sizeBytes }));
      this.deps.log('info', 'placing an instance', { miner: x.minerId.slice(0, 16), instance: id, dservice: x.dservice, tier: x.tier, reason: x.reason });
    }
  }

  private failed(where: string, now: number): void {
    this.failures.set(where, { at: now, count: (this.failures.get(where)?.count ?? 0) + 1 });
  }

  private probeNewcomers(miners: readonly ConnectedMiner[]): void {
    const probes = this.deps.probes;
    const seen = new Set<string>();
    for (const m of miners) {
      seen.add(m.id);
      if (this.knownMiners.has(m.id)) continue;
      this.knownMiners.add(m.id);
      probes?.probe(m.id, m.advert.resources.cpus, m.tier);
    }
    for (const id of this.knownMiners) {
      if (seen.has(id)) continue;
      this.knownMiners.delete(id);
      probes?.forget(id);
    }
    this.prune();
  }

  /**
   * Forgets what it keeps per miner and per DService once the miner left or the DService is gone
   * (no longer approved, or without a package): keys that miners joining and leaving, or
   * DServices coming and going, would otherwise grow without end. Runs with each read of the
   * miners; O(DServices + the entries kept).
   */
  private prune(): void {
    const names = new Set<string>();
    for (const d of this.deps.dservices()) if (this.deps.packages.packageOf(d.name) !== null) names.add(d.name);
    for (const map of [this.failures, this.unplacedAt]) {
      for (const key of map.keys()) {
        const cut = key.indexOf('\u0000');
        if (!this.knownMiners.has(key.slice(0, cut)) || !names.has(key.slice(cut + 1))) map.delete(key);
      }
    }
    for (const map of [this.lastRequest, this.kicks, this.logged, this.fencesSeen]) {
      for (const key of map.keys()) if (!names.has(key.slice(0, key.indexOf('\u0000')))) map.delete(key);
    }
    // A fenced part's last request goes with its fence (many accounts' fences come and go).
    const now = this.deps.clock.now();
    for (const [key, at] of this.lastRequest) {
      const second = key.indexOf('\u0000', key.indexOf('\u0000') + 1);
      if (second < 0 || now - at <= REGION_MEMORY_MS) continue;
      if (this.fencesSeen.get(key.slice(0, second))?.has(key.slice(second + 1)) !== true) this.lastRequest.delete(key);
    }
  }

  /** How many entries the per-miner and per-DService maps hold (status, and the test that they shrink). */
  keptSizes(): Record<'failures' | 'unplacedAt' | 'lastRequest' | 'kicks' | 'logged' | 'knownMiners' | 'tracked', number> {
    return {
      failures: this.failures.size, unplacedAt: this.unplacedAt.size, lastRequest: this.lastRequest.size, kicks: this.kicks.size,
      logged: this.logged.size, knownMiners: this.knownMiners.size, tracked: this.tracked.size,
    };
  }

  private refreshInstances(byId: ReadonlyMap<string, ConnectedMiner>, now: number): void {
    for (const [id, t] of this.tracked) {
      const m = byId.get(t.view.minerId);
      if (m === undefined) {
        this.tracked.delete(id);
        this.deps.packages.revoke?.(id);
        this.deps.log('info', 'instance gone with its miner', { miner: t.view.minerId.slice(0, 16), instance: id, dservice: t.view.dservice });
        continue;
      }
      if (t.failed !== undefined) continue;
      const has = m.dservices.includes(t.view.dservice);
      if (t.view.state === 'starting' && has) {
        t.view = { ...t.view, state: 'ready', since: now };
        this.counters.ready++;
        this.failures.delete(`${t.view.minerId}\u0000${t.view.dservice}`);
        this.coldStarts.record(now - t.placedAt);
        this.deps.log('info', 'instance ready', { miner: t.view.minerId.slice(0, 16), instance: id, dservice: t.view.dservice, coldStartMs: now - t.placedAt });
      } else if (t.view.state === 'ready' && !has) {
        this.tracked.delete(id);
        this.deps.log('warn', 'a ready instance is no longer advertised by its miner; it will be replaced', { miner: t.view.minerId.slice(0, 16), instance: id, dservice: t.view.dservice });
      }
    }
  }

  /** DServices miners run that the controller did not place (hand-started): ready capacity. */
  private staticInstances(miners: readonly ConnectedMiner[], now: number): InstanceView[] {
    const placed = new Set<string>();
    for (const t of this.tracked.values()) if (t.failed === undefined) placed.add(`${t.view.minerId}\u0000${t.view.dservice}`);
    const out: InstanceView[] = [];
    for (const m of miners) {
      for (const name of m.dservices) {
        const key = `${m.id}\u0000${name}`;
        if (placed.has(key)) continue;
        const gone = this.unplacedAt.get(key);
        if (gone !== undefined) {
          if (now - gone < UNPLACE_GRACE_MS) continue;
          this.unplacedAt.delete(key);
        }
        const d = this.descriptorOf(name);
        const version = m.advert.dservices.find((x) => x.name === name)?.version ?? d?.version ?? '';
        out.push({
          id: `static:${m.id.slice(0, 16)}:${name}`, dservice: name, version, tier: m.tier, account: d?.developer ?? 'unknown', minerId: m.id,
          resources: d === undefined ? { cpus: 0, memoryMb: 0, diskMb: 0, gpus: 0, bandwidthMbps: 0 } : this.resourcesOf(d), state: 'ready', since: 0,
        });
      }
    }
    return out;
  }

  private descriptorOf(name: string): DServiceDescriptor | undefined {
    return this.deps.dservices().find((d) => d.name === name);
  }

  private resourcesOf(d: DServiceDescriptor): Resources {
    return { cpus: d.resources.cpus, memoryMb: d.resources.memoryMb, diskMb: d.resources.diskMb ?? 0, gpus: d.resources.gpus ?? 0, bandwidthMbps: 0 };
  }

  private requirementsOf(d: DServiceDescriptor, tier: Tier, regions?: readonly string[]): Requirements {
    return regions === undefined ? { resources: this.resourcesOf(d), tier } : { resources: this.resourcesOf(d), tier, regions };
  }

  /**
   * The scheduler's view of the connected miners: what they claim, and what the probe measured.
   * `pendingAsClaimed`: as if probes were off (for miners whose probe has not finished: what they
   * would be if it confirms their claims).
   */
  minerViews(miners: readonly ConnectedMiner[], pendingAsClaimed = false): MinerView[] {
    return miners.map((m) => {
      const a = m.advert.resources;
      const probes = pendingAsClaimed ? null : this.deps.probes;
      const probe = probes?.resultOf(m.id);
      // A probe that failed, timed out, did not verify or has not finished proves nothing: such a
      // miner counts as the least it could be (one CPU, no GPU, 1 Mbps) rather than as what it
      // claims, so a long probe queue is no window for a liar. Only with probes off (the
      // operator's choice) do claims stand unmeasured.
      const measured = probes === undefined || probes === null ? undefined : probe?.ok === true ? probe.measured : { cpus: 1, memoryMb: a.memoryMb, diskMb: a.diskMb ?? 0, gpus: 0, bandwidthMbps: 1 };
      const view: MinerView = {
        id: m.id,
        tier: m.tier,
        status: m.draining ? 'draining' : 'online',
        // What it did not say, the probe's self-report stands in for (or nothing).
        claimed: { cpus: a.cpus, memoryMb: a.memoryMb, diskMb: a.diskMb ?? measured?.diskMb ?? 0, gpus: a.gpus ?? 0, bandwidthMbps: a.bandwidthMbps ?? measured?.bandwidthMbps ?? 0 },
        // Miners are paid the DService's price, not their floor: a floor is no bid, and scoring it
        // would only reward a miner for claiming 0. All score alike on price until billing honours floors.
        priceFloor: 0,
        cachedPackages: m.advert.dservices.map((x) => x.digest),
      };
      if (measured !== undefined) view.measured = measured;
      const reputation = this.deps.reputationOf?.(m.id);
      if (reputation !== undefined) view.reputation = reputation;
      if (m.advert.region !== undefined) view.region = m.advert.region;
      if (m.advert.location !== undefined) view.location = m.advert.location;
      return view;
    });
  }

  status(): Record<string, unknown> {
    return {
      enabled: this.options.enabled,
      counters: { ...this.counters },
      coldStartsMs: this.coldStarts.list(),
      instances: this.instances().map((i) => ({ id: i.id, dservice: i.dservice, tier: i.tier, miner: i.minerId.slice(0, 16), state: i.failed !== undefined ? 'failed' : i.state, since: i.since })),
      unplaced: [...this.unplaced.values()].map((u) => ({ dservice: u.dservice, tier: u.tier, ...(u.regions !== undefined ? { regions: u.regions } : {}), missing: u.missing, reason: u.reason, message: u.message })),
    };
  }
}
