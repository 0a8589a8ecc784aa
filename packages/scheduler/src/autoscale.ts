/**
 * autoscale(memory, metrics, clock): how many instances each (DService, tier) should have, from
 * its queue. The node feeds the result to `place` as `desiredInstances` and keeps `memory` for the
 * next call (losing it, e.g. on restart, only delays scale-downs: never a scale-up).
 *
 *   load   = in flight + queued;   needed = ceil(load / concurrency)   (concurrency: work units one
 *            instance runs at once);   current = ready + starting instances
 *
 *   up, at once (no delay):
 *     cold_start   current = 0 and load > 0           -> min(needed, maxStepUp), at least 1
 *     queue_depth  queued > 0 and needed > current    -> needed, adding at most max(current, maxStepUp)
 *     queue_wait   oldest queued waited > targetQueueWaitMs and nothing is starting
 *                                                     -> current + max(1, ceil(current / 2))
 *   down, only after a quiet spell (the hysteresis):
 *     idle         nothing queued or in flight for idleToZeroMs          -> minInstances (0 allowed)
 *     underused    nothing queued and load < lowUtilization x capacity, continuously for
 *                  scaleDownDelayMs and at least that long after the last scale-up
 *                                                     -> enough for load at targetUtilization
 *                                                        (at least 1), removing at most half per step
 *   always within minInstances..maxInstances (reasons `min` and `max` when a bound moved).
 *
 * The gap between the up rule (more work than capacity) and the down rule (under half the capacity
 * used, for a minute) keeps the count from flapping. Cold start is bounded here by scaling from zero
 * on the first queued request, without waiting, and in `place` by replacing any instance still
 * starting after its cold-start budget.
 *
 * Fences. Work of accounts limited to data regions may run only on miners in those regions, so a
 * (DService, tier) may be measured in parts: one per fence (the regions of the waiting accounts)
 * and one for anywhere, each with its own queue, in-flight work and instances (an instance counts
 * for the part it was started for while its miner is in that fence, else for the first fence, in
 * `fenceKey` order, whose regions take its miner, else for anywhere: `fenceFor`, the rule `place`
 * counts by). The split rule:
 *   1. each part is scaled by the rules above on its own queue and instances, as if alone;
 *      minInstances is the anywhere part's (the node gives fenced parts 0);
 *   2. if the parts together want more than maxInstances, instances are dealt one at a time in
 *      rounds until maxInstances: each round gives one to every part that wants more, parts with
 *      work (queued or in flight) before idle ones keeping theirs; among those, fenced parts first
 *      (the one whose oldest work waited longest first, then by fence), the anywhere part last.
 *      Work without regions may run on any instance, fenced ones included; fenced work only in its
 *      regions: so every part with work gets an instance before any gets a second, and when there
 *      are fewer instances than parts with work, the fences go first.
 * So the parts of one (DService, tier) never want more than maxInstances together, and a part with
 * work (queued or in flight) wants at least one whenever the parts with work are at most
 * maxInstances.
 */
import { CgnError } from '@cgn/protocol';
import { regionAllowed } from './filter.js';
import type { Clock, Tier } from './types.js';

export interface AutoscalePolicy {
  /** Scale up when the oldest queued work unit has waited longer than this (default 1,000 ms). */
  targetQueueWaitMs: number;
  /** Low load must last this long before instances are removed (default 60 s). */
  scaleDownDelayMs: number;
  /** With nothing queued or in flight this long, go down to minInstances (default 5 min). */
  idleToZeroMs: number;
  /** Load below this share of capacity is "low" (default 0.5). */
  lowUtilization: number;
  /** Scaling down keeps enough instances for the load at this utilization (default 0.75). */
  targetUtilization: number;
  /** Instances added in one step at most, beyond doubling (default 8). */
  maxStepUp: number;
}

export const DEFAULT_AUTOSCALE_POLICY: Readonly<AutoscalePolicy> = Object.freeze({
  targetQueueWaitMs: 1_000,
  scaleDownDelayMs: 60_000,
  idleToZeroMs: 300_000,
  lowUtilization: 0.5,
  targetUtilization: 0.75,
  maxStepUp: 8,
});

/** What the node measures of one (DService, tier). */
export interface DServiceMetrics {
  dservice: string;
  tier: Tier;
  minInstances: number;
  maxInstances: number;
  /** Instances serving. */
  ready: number;
  /** Instances placed but not ready yet (they count as capacity on the way). */
  starting: number;
  /** Work units one instance runs at once (>= 1). */
  concurrency: number;
  queueDepth: number;
  /** How long the oldest queued work unit has waited, ms (0 when none is queued). */
  queueWaitMs: number;
  inFlight: number;
  /** When the last request for it arrived; undefined: none since the node started. */
  lastRequestAt?: number;
  /**
   * The fence this part measures: the data regions of its work (undefined: the part for anywhere).
   * Parts of one (DService, tier) must have distinct fences and the same maxInstances.
   */
  regions?: readonly string[];
}

/** Per (DService, tier): what autoscale remembers between calls. */
export interface ScaleMemory {
  /** When autoscale first saw it (stands in for the last request when there was none). */
  seenAt: number;
  lastScaleUpAt?: number;
  /** Since when load has been low without a break. */
  lowSince?: number;
}

export type AutoscaleMemory = ReadonlyMap<string, ScaleMemory>;

export type ScaleReason = 'min' | 'max' | 'cold_start' | 'queue_depth' | 'queue_wait' | 'underused' | 'idle';

export interface ScaleDecision {
  dservice: string;
  tier: Tier;
  /** The part's fence (undefined: anywhere). */
  regions?: readonly string[];
  from: number;
  to: number;
  /** `max` also when the part was cut to share maxInstances with the other parts. */
  reason: ScaleReason;
}

export interface AutoscaleResult {
  /** Only the (DService, tier) pairs whose count changes. */
  decisions: ScaleDecision[];
  /** The wanted count of every part given: `desiredInstances` for place. */
  desired: { dservice: string; tier: Tier; regions?: readonly string[]; instances: number }[];
  /** To pass to the next call. */
  memory: Map<string, ScaleMemory>;
}

export const scaleKey = (dservice: string, tier: string) => `${dservice}\u0000${tier}`;

/** A fence as one string: its regions sorted, joined by commas; '' for anywhere (as `place` orders fences). */
export const fenceKey = (regions: readonly string[] | undefined): string => (regions === undefined ? '' : [...regions].sort().join(','));

/** The key of one part: (DService, tier, fence). A part for anywhere has the pair's `scaleKey`. */
export const partKey = (dservice: string, tier: string, regions: readonly string[] | undefined): string => {
  const fence = fenceKey(regions);
  return fence === '' ? scaleKey(dservice, tier) : `${scaleKey(dservice, tier)}\u0000${fence}`;
};

/**
 * The part an instance on a miner in `region` counts for, among fences given as sorted keys with
 * their regions (the part for anywhere, '', being always there): the part it was started for
 * (`own`, as `InstanceView.fence`) while its miner is in that fence; else the first fence (by key)
 * whose regions take the miner, else anywhere. The rule `place` counts a DService's instances by.
 */
export function fenceFor(region: string | undefined, fences: readonly { key: string; regions: readonly string[] }[], own?: string): string {
  if (own === '') return '';
  if (own !== undefined) for (const f of fences) if (f.key === own && regionAllowed(region, f.regions)) return own;
  let best = '';
  for (const f of fences) if ((best === '' || f.key < best) && regionAllowed(region, f.regions)) best = f.key;
  return best;
}

function checkMetrics(m: DServiceMetrics): void {
  const int = (x: number) => Number.isSafeInteger(x) && x >= 0;
  for (const k of ['minInstances', 'maxInstances', 'ready', 'starting', 'queueDepth', 'inFlight'] as const) {
    if (!int(m[k])) throw new CgnError('bad_request', `${m.dservice}: ${k} must be an integer >= 0 (got ${m[k]})`);
  }
  if (m.minInstances > m.maxInstances) throw new CgnError('bad_request', `${m.dservice}: minInstances (${m.minInstances}) exceeds maxInstances (${m.maxInstances})`);
  if (!Number.isSafeInteger(m.concurrency) || m.concurrency < 1) throw new CgnError('bad_request', `${m.dservice}: concurrency must be an integer >= 1 (got ${m.concurrency})`);
  if (!(Number.isFinite(m.queueWaitMs) && m.queueWaitMs >= 0)) throw new CgnError('bad_request', `${m.dservice}: queueWaitMs must be a finite number >= 0 (got ${m.queueWaitMs})`);
}

function checkPolicy(p: AutoscalePolicy): void {
  for (const k of ['targetQueueWaitMs', 'scaleDownDelayMs', 'idleToZeroMs'] as const) {
    if (!(Number.isFinite(p[k]) && p[k] >= 0)) throw new CgnError('bad_request', `autoscale ${k} must be a finite number >= 0 (got ${p[k]})`);
  }
  if (!(p.lowUtilization > 0 && p.lowUtilization < p.targetUtilization && p.targetUtilization <= 1)) {
    throw new CgnError('bad_request', `autoscale needs 0 < lowUtilization < targetUtilization <= 1 (got ${p.lowUtilization} and ${p.targetUtilization})`);
  }
  if (!Number.isSafeInteger(p.maxStepUp) || p.maxStepUp < 1) throw new CgnError('bad_request', `autoscale maxStepUp must be an integer >= 1 (got ${p.maxStepUp})`);
}

export function autoscale(memory: AutoscaleMemory, metrics: readonly DServiceMetrics[], clock: Clock, policy: Partial<AutoscalePolicy> = {}): AutoscaleResult {
  const p: AutoscalePolicy = { ...DEFAULT_AUTOSCALE_POLICY, ...policy };
  checkPolicy(p);
  const now = clock.now();
  const decisions: ScaleDecision[] = [];
  const desired: AutoscaleResult['desired'] = [];
  const next = new Map<string, ScaleMemory>();
  const sorted = metrics.map((m) => ({ m, key: partKey(m.dservice, m.tier, m.regions), pair: scaleKey(m.dservice, m.tier), fence: fenceKey(m.regions) }));
  // By pair, then fence: a pair's parts are adjacent.
  sorted.sort((a, b) => (a.pair < b.pair ? -1 : a.pair > b.pair ? 1 : a.fence < b.fence ? -1 : a.fence > b.fence ? 1 : 0));
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j]!.pair === sorted[i]!.pair) j++;
    const parts = sorted.slice(i, j).map((x) => {
      checkMetrics(x.m);
      if (next.has(x.key)) throw new CgnError('bad_request', `metrics for ${x.m.dservice} in tier ${x.m.tier}${x.fence === '' ? '' : ` fenced to ${x.fence}`} given twice`);
      if (x.m.maxInstances !== sorted[i]!.m.maxInstances) throw new CgnError('bad_request', `${x.m.dservice}: the parts of tier ${x.m.tier} disagree on maxInstances (${x.m.maxInstances} and ${sorted[i]!.m.maxInstances})`);
      const mem: ScaleMemory = { ...(memory.get(x.key) ?? { seenAt: now }) };
      next.set(x.key, mem);
      return { ...x, mem, wish: decide(x.m, mem, now, p), to: 0 };
    });
    share(parts, sorted[i]!.m.maxInstances);
    for (const x of parts) {
      const { m, mem, to } = x;
      const from = m.ready + m.starting;
      if (to > from) {
        mem.lastScaleUpAt = now;
        delete mem.lowSince;
      } else if (to < from) {
        delete mem.lowSince; // a new quiet spell must pass before the next step down
      }
      const regions = m.regions === undefined ? {} : { regions: m.regions };
      desired.push({ dservice: m.dservice, tier: m.tier, ...regions, instances: to });
      const reason = to === x.wish.to ? x.wish.reason : 'max';
      if (to !== from && reason !== undefined) decisions.push({ dservice: m.dservice, tier: m.tier, ...regions, from, to, reason });
    }
    i = j;
  }
  return { decisions, desired, memory: next };
}

/**
 * Rule 2 of the split: sets each part's `to` from its wish so that together they want at most
 * `max`, dealing one instance per round to every part still short: parts with work first, then
 * fenced before anywhere, then the longest queue wait, then by fence key. O(parts log parts + max).
 */
function share(parts: { m: DServiceMetrics; fence: string; wish: { to: number }; to: number }[], max: number): void {
  let total = 0;
  for (const x of parts) total += x.wish.to;
  if (total <= max) {
    for (const x of parts) x.to = x.wish.to;
    return;
  }
  const busy = (x: { m: DServiceMetrics }) => x.m.queueDepth + x.m.inFlight > 0;
  const order = [...parts].sort((a, b) => {
    if (busy(a) !== busy(b)) return busy(a) ? -1 : 1;
    if ((a.fence === '') !== (b.fence === '')) return a.fence === '' ? 1 : -1;
    if (a.m.queueWaitMs !== b.m.queueWaitMs) return b.m.queueWaitMs - a.m.queueWaitMs;
    return a.fence < b.fence ? -1 : a.fence > b.fence ? 1 : 0;
  });
  let dealt = 0;
  let short = order.filter((x) => x.wish.to > 0);
  while (dealt < max && short.length > 0) {
    for (const x of short) {
      if (dealt === max) break;
      x.to++;
      dealt++;
    }
    short = short.filter((x) => x.to < x.wish.to);
  }
}

/** The wanted count for one pair; updates `mem.lowSince`. */
function decide(m: DServiceMetrics, mem: ScaleMemory, now: number, p: AutoscalePolicy): { to: number; reason?: ScaleReason } {
  const current = m.ready + m.starting;
  const load = m.inFlight + m.queueDepth;
  const needed = Math.ceil(load / m.concurrency);
  const clamp = (n: number) => Math.min(m.maxInstances, Math.max(m.minInstances, n));

  if (current < m.minInstances) return { to: m.minInstances, reason: 'min' };
  if (current > m.maxInstances) return { to: m.maxInstances, reason: 'max' };

  if (current === 0 && load > 0) return { to: clamp(Math.max(1, Math.min(needed, p.maxStepUp))), reason: 'cold_start' };
  if (m.queueDepth > 0 && needed > current) {
    return { to: clamp(Math.min(needed, current + Math.max(current, p.maxStepUp))), reason: 'queue_depth' };
  }
  if (m.queueDepth > 0 && m.queueWaitMs > p.targetQueueWaitMs && m.starting === 0) {
    return { to: clamp(current + Math.max(1, Math.ceil(current / 2))), reason: 'queue_wait' };
  }

  if (load === 0 && current > m.minInstances) {
    const lastActivity = m.lastRequestAt ?? mem.seenAt;
    if (now - lastActivity >= p.idleToZeroMs) return { to: m.minInstances, reason: 'idle' };
  }
  const low = m.queueDepth === 0 && load < p.lowUtilization * current * m.concurrency;
  if (!low) {
    delete mem.lowSince;
    return { to: current };
  }
  mem.lowSince ??= now;
  const quiet = now - mem.lowSince >= p.scaleDownDelayMs && (mem.lastScaleUpAt === undefined || now - mem.lastScaleUpAt >= p.scaleDownDelayMs);
  if (!quiet || current <= m.minInstances) return { to: current };
  // Going to zero is the idle rule's job alone (it waits longer): never below one instance here.
  const keep = Math.max(1, Math.ceil(load / (m.concurrency * p.targetUtilization)));
  const to = clamp(Math.max(keep, current - Math.max(1, Math.floor(current / 2))));
  return to < current ? { to, reason: 'underused' } : { to: current };
}
