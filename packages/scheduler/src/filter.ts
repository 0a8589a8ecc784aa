/**
 * Filter: which miners could run an instance at all (the DCCN seed's first step), and for each
 * refused miner, why. Only static facts count here (status, tier, region, capacity, price); whether
 * there is room right now is `place`'s business.
 */
import { capacityOf } from './resources.js';
import type { MinerView, Requirements, Resources } from './types.js';

export type RefusalReason =
  | 'offline'
  | 'draining'
  | 'banned'
  | 'tier'
  | 'region'
  | 'unmeasured'
  | 'price'
  | 'cpus'
  | 'memory'
  | 'disk'
  | 'gpu'
  | 'bandwidth';

export interface Refusal {
  minerId: string;
  /** Every requirement the miner fails, in the order of `FUNNEL`. */
  reasons: RefusalReason[];
}

export interface FilterResult {
  eligible: MinerView[];
  refused: Refusal[];
}

/** Whether a miner's region is one of the allowed ones: equal, or a sub-region (`eu` allows `eu-west`). */
export function regionAllowed(region: string | undefined, allowed: readonly string[] | undefined): boolean {
  if (allowed === undefined) return true;
  if (region === undefined) return false;
  for (const a of allowed) if (region === a || (region.length > a.length && region.startsWith(a) && region[a.length] === '-')) return true;
  return false;
}

const RESOURCE_CHECKS: readonly [RefusalReason, keyof Resources][] = [
  ['cpus', 'cpus'],
  ['memory', 'memoryMb'],
  ['disk', 'diskMb'],
  ['gpu', 'gpus'],
  ['bandwidth', 'bandwidthMbps'],
];

/** Every requirement `m` fails (empty: eligible). */
export function refusalReasons(m: MinerView, req: Requirements): RefusalReason[] {
  const out: RefusalReason[] = [];
  if (m.status === 'offline') out.push('offline');
  else if (m.status === 'draining') out.push('draining');
  if (m.banned === true) out.push('banned');
  if (m.tier !== req.tier) out.push('tier');
  if (!regionAllowed(m.region, req.regions)) out.push('region');
  if (req.requireMeasured === true && m.measured === undefined) out.push('unmeasured');
  if (req.maxPrice !== undefined && m.priceFloor > req.maxPrice) out.push('price');
  const cap = capacityOf(m);
  for (const [reason, k] of RESOURCE_CHECKS) if (req.resources[k] > cap[k]) out.push(reason);
  return out;
}

/** The fast form of `refusalReasons(m, req).length === 0`, for the placement loop. */
export function isEligible(m: MinerView, req: Requirements): boolean {
  if (m.status !== 'online' || m.banned === true || m.tier !== req.tier) return false;
  if (req.regions !== undefined && !regionAllowed(m.region, req.regions)) return false;
  if (req.requireMeasured === true && m.measured === undefined) return false;
  if (req.maxPrice !== undefined && m.priceFloor > req.maxPrice) return false;
  const r = req.resources;
  const c = m.claimed;
  const p = m.measured;
  if (r.cpus > c.cpus || r.memoryMb > c.memoryMb || r.diskMb > c.diskMb || r.gpus > c.gpus || r.bandwidthMbps > c.bandwidthMbps) return false;
  if (p !== undefined && (r.cpus > p.cpus || r.memoryMb > p.memoryMb || r.diskMb > p.diskMb || r.gpus > p.gpus || r.bandwidthMbps > p.bandwidthMbps)) return false;
  return true;
}

/** Splits miners into those that meet `req` and those that do not, each with its reasons. */
export function filter(miners: readonly MinerView[], req: Requirements): FilterResult {
  const eligible: MinerView[] = [];
  const refused: Refusal[] = [];
  for (const m of miners) {
    const reasons = refusalReasons(m, req);
    if (reasons.length === 0) eligible.push(m);
    else refused.push({ minerId: m.id, reasons });
  }
  return { eligible, refused };
}

/** One step of the funnel: how many miners are left after this requirement (and all before it). */
export interface FunnelStep {
  requirement: 'online' | 'tier' | 'region' | 'measured' | 'price' | 'cpus' | 'memory' | 'disk' | 'gpu' | 'bandwidth';
  remaining: number;
}

/**
 * Why nothing can run: the requirements applied one after the other (online and not banned, tier,
 * regions, measured, price, then each resource); the first one that leaves no miner is the answer.
 */
export interface Diagnosis {
  eligible: number;
  funnel: FunnelStep[];
  /** The first requirement that left no miner; undefined when some miner is eligible. */
  blocking?: FunnelStep['requirement'];
  /** A sentence for a DService developer or an operator; undefined when some miner is eligible. */
  message?: string;
}

const UNIT: Record<keyof Resources, string> = { cpus: ' CPUs', memoryMb: ' MB of memory', diskMb: ' MB of disk', gpus: ' GPUs', bandwidthMbps: ' Mbit/s' };

export function diagnose(miners: readonly MinerView[], req: Requirements): Diagnosis {
  const steps: [FunnelStep['requirement'], (m: MinerView) => boolean][] = [
    ['online', (m) => m.status === 'online' && m.banned !== true],
    ['tier', (m) => m.tier === req.tier],
    ['region', (m) => regionAllowed(m.region, req.regions)],
    ['measured', (m) => req.requireMeasured !== true || m.measured !== undefined],
    ['price', (m) => req.maxPrice === undefined || m.priceFloor <= req.maxPrice],
  ];
  for (const [reason, k] of RESOURCE_CHECKS) steps.push([reason as FunnelStep['requirement'], (m) => req.resources[k] <= capacityOf(m)[k]]);
  let left: readonly MinerView[] = miners;
  const funnel: FunnelStep[] = [];
  for (const [requirement, ok] of steps) {
    const next = left.filter(ok);
    funnel.push({ requirement, remaining: next.length });
    if (next.length === 0) {
      return { eligible: 0, funnel, blocking: requirement, message: sentence(requirement, left, req) };
    }
    left = next;
  }
  return { eligible: left.length, funnel };
}

function sentence(blocking: FunnelStep['requirement'], before: readonly MinerView[], req: Requirements): string {
  const where = [
    blocking === 'online' ? '' : ' online',
    ' miner',
    blocking === 'online' || blocking === 'tier' ? '' : ` in tier ${req.tier}`,
    req.regions === undefined || blocking === 'online' || blocking === 'tier' || blocking === 'region' ? '' : ` in regions ${req.regions.join(', ')}`,
  ].join('');
  switch (blocking) {
    case 'online':
      return 'no miner is online (or every one is banned)';
    case 'tier':
      return `no online miner in tier ${req.tier}`;
    case 'region':
      return `no online miner in tier ${req.tier} in the account's regions (${(req.regions ?? []).join(', ')})`;
    case 'measured':
      return `no${where} has passed its capability probe yet`;
    case 'price':
      return `no${where} accepts the DService's price of ${req.maxPrice} per CPU-second (the lowest floor is ${Math.min(...before.map((m) => m.priceFloor))})`;
    default: {
      const k = RESOURCE_CHECKS.find(([r]) => r === blocking)![1];
      const largest = Math.max(...before.map((m) => capacityOf(m)[k]));
      return `no${where} with enough ${blocking}: an instance needs ${req.resources[k]}${UNIT[k]}, the largest has ${largest}`;
    }
  }
}
