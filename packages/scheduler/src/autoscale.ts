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
 */
import { CgnError } from '@cgn/protocol';
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
  from: number;
  to: number;
  reason: ScaleReason;
}

export interface AutoscaleResult {
  /** Only the (DService, tier) pairs whose count changes. */
  decisions: ScaleDecision[];
  /** The wanted count of every pair given: `desiredInstances` for place. */
  desired: { dservice: string; tier: Tier; instances: number }[];
  /** To pass to the next call. */
  memory: Map<string, ScaleMemory>;
}

export const scaleKey = (dservice: string, tier: string) => `${dservice}\u0000${tier}`;

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
  const sorted = [...metrics].sort((a, b) => {
    const ka = scaleKey(a.dservice, a.tier);
    const kb = scaleKey(b.dservice, b.tier);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  for (const m of sorted) {
    checkMetrics(m);
    const key = scaleKey(m.dservice, m.tier);
    if (next.has(key)) throw new CgnError('bad_request', `metrics for ${m.dservice} in tier ${m.tier} given twice`);
    const mem: ScaleMemory = { ...(memory.get(key) ?? { seenAt: now }) };
    const { to, reason } = decide(m, mem, now, p);
    const from = m.ready + m.starting;
    if (to > from) {
      mem.lastScaleUpAt = now;
      delete mem.lowSince;
    } else if (to < from) {
      delete mem.lowSince; // a new quiet spell must pass before the next step down
    }
    next.set(key, mem);
    desired.push({ dservice: m.dservice, tier: m.tier, instances: to });
    if (to !== from && reason !== undefined) decisions.push({ dservice: m.dservice, tier: m.tier, from, to, reason });
  }
  return { decisions, desired, memory: next };
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
