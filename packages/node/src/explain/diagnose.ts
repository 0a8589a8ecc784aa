/**
 * "Why is nothing running my work?": the diagnosis of one (DService, tier[, account]) from what
 * the node knows — the DServices it routes, the miners connected, the queue, the account's quotas.
 * Pure: the work endpoint refuses with it at once (instead of letting a request wait for its
 * deadline), and `GET /v1/explain` and `cgn explain` show the same thing.
 *
 * A miner that is busy (every slot taken) is not a reason: that is what the queue is for. Work is
 * refused only when no connected miner could ever take it.
 */
import { CgnError, type Tier } from '@cgn/protocol';
import { regionAllowed } from '@cgn/scheduler';
import type { QuotaUsage } from '../accounts/quotas.js';
import type { PlacementView } from '../placement/controller.js';

export type BlockReason =
  | 'unknown_dservice'
  | 'no_miner'
  | 'no_miner_in_tier'
  | 'not_enough_memory'
  | 'all_draining'
  | 'no_miner_in_region'
  | 'not_enough_resources'
  | 'no_free_capacity'
  | 'quota';

export interface MinerView {
  id: string;
  tier: Tier;
  memoryMb: number;
  slots: number;
  inUse: number;
  draining: boolean;
  /** Data region it advertised; null or absent: none (outside every account's regions). */
  region?: string | null;
}

export interface DiagnoseInput {
  dservice: string;
  tier: Tier;
  /** The DService's descriptor on this node; null when the node does not route it. */
  descriptor: { memoryMb: number } | null;
  /** Connected miners that advertise the DService (any tier). */
  miners: readonly MinerView[];
  queue: { depth: number; accounts: number; oldestMs: number; accountDepth: number | null };
  account: string | null;
  /** The account's data regions (null or absent: anywhere); a miner outside them cannot take its work. */
  regions?: readonly string[] | null;
  /** The account's quota use and the refusal `take` would give now (null: no account asked about). */
  quota: { usage: QuotaUsage; refusal: CgnError | null } | null;
  /**
   * What the node's placement can do when no connected miner runs it (absent or `none`: nothing,
   * only miners started with the DService serve it).
   */
  placement?: PlacementView;
}

export interface Diagnosis {
  dservice: string;
  tier: Tier;
  account: string | null;
  /** The account's data regions the diagnosis held it to; null: anywhere. */
  regions: readonly string[] | null;
  /** Whether a request sent now would be taken (run at once or queued). */
  runnable: boolean;
  /** Why not (null when runnable). */
  reason: BlockReason | null;
  /** One sentence for a person, saying what to do. */
  message: string;
  needs: { memoryMb: number } | null;
  miners: {
    /** Advertise the DService, any tier. */
    advertising: number;
    byTier: Record<Tier, number>;
    /** In the tier, with the memory, in the account's regions, not draining: could take the work. */
    eligible: number;
    /** Of those, slots free right now. */
    freeSlots: number;
    /** Most memory any miner in the tier advertises, MB. */
    largestMemoryMb: number | null;
  };
  queue: DiagnoseInput['queue'];
  quota: (QuotaUsage & { refused: string | null }) | null;
  /** Placement's part when no connected miner runs it: under way (with an estimate), possible, or why not. */
  placement: PlacementView | null;
}

/** Reasons placement can lift: no connected miner runs it (in the tier, with the memory, not draining). */
const PLACEABLE: ReadonlySet<BlockReason> = new Set(['no_miner', 'no_miner_in_tier', 'not_enough_memory', 'no_miner_in_region', 'all_draining']);

const BLOCKING: Record<string, BlockReason> = { online: 'no_miner', tier: 'no_miner_in_tier', region: 'no_miner_in_region', memory: 'not_enough_memory' };

const seconds = (ms: number) => `${Math.max(1, Math.round(ms / 1000))} s`;

/** The reason and sentence once placement had its say (unchanged when it has none). */
function withPlacement(dservice: string, reason: BlockReason | null, message: string, p: PlacementView | undefined): [BlockReason | null, string] {
  if (reason === null || !PLACEABLE.has(reason) || p === undefined || p.state === 'none') return [reason, message];
  switch (p.state) {
    case 'placing':
      return [null, `placement under way: an instance of ${dservice} is starting on miner ${p.minerId.slice(0, 16)}; ready in about ${seconds(p.estimateMs)} (${p.basis}); work waits in the queue meanwhile`];
    case 'placeable':
      return [null, `no connected miner runs ${dservice} yet: a request places an instance on one of ${p.eligible} miner${p.eligible === 1 ? '' : 's'} that can (ready in about ${seconds(p.estimateMs)}, ${p.basis}) and waits in the queue meanwhile`];
    case 'blocked': {
      // No miner online at all: the plain diagnosis says it best.
      if (p.blocking === 'online') return [reason, message];
      const blocked = p.reason === 'no_free_capacity' ? 'no_free_capacity' : (BLOCKING[p.blocking ?? ''] ?? 'not_enough_resources');
      // Nobody runs it: placement's reason is the reason. Somebody does, but not here: both are.
      return reason === 'no_miner' ? [blocked, `${dservice} cannot be placed: ${p.message}`] : [reason, `${message}; nor can it be placed: ${p.message}`];
    }
  }
}

export function diagnose(input: DiagnoseInput): Diagnosis {
  const { dservice, tier, descriptor, miners } = input;
  const byTier: Record<Tier, number> = { open: 0, attested: 0, dedicated: 0 };
  let inTier = 0;
  let withMemory = 0;
  let inRegions = 0;
  let eligible = 0;
  const regions = input.regions ?? null;
  const elsewhere = new Map<string, number>();
  let freeSlots = 0;
  let largest: number | null = null;
  const need = descriptor?.memoryMb ?? 0;
  for (const m of miners) {
    byTier[m.tier]++;
    if (m.tier !== tier) continue;
    inTier++;
    largest = largest === null ? m.memoryMb : Math.max(largest, m.memoryMb);
    if (m.memoryMb < need) continue;
    withMemory++;
    if (regions !== null && !regionAllowed(m.region ?? undefined, regions)) {
      const where = m.region ?? 'no region';
      elsewhere.set(where, (elsewhere.get(where) ?? 0) + 1);
      continue;
    }
    inRegions++;
    if (m.draining) continue;
    eligible++;
    freeSlots += Math.max(0, m.slots - m.inUse);
  }
  const quotaRefusal = input.quota?.refusal ?? null;
  const [reason0, message0] = ((): [BlockReason | null, string] => {
    if (descriptor === null) return ['unknown_dservice', `no DService named "${dservice}" on this node (not installed here, or not approved at central)`];
    if (miners.length === 0) return ['no_miner', `no miner connected to this node runs ${dservice}; start one with \`cgn miner --node URL --dservice DIR\`, or wait for one to join`];
    if (inTier === 0) {
      const tiers = (Object.keys(byTier) as Tier[]).filter((t) => byTier[t] > 0).map((t) => `${t} (${byTier[t]})`).join(', ');
      return ['no_miner_in_tier', `no ${tier}-tier miner runs ${dservice}; miners run it in: ${tiers}. Send cgn-tier with one of those, or wait for a ${tier}-tier miner`];
    }
    if (withMemory === 0) return ['not_enough_memory', `${dservice} needs ${need} MB of memory (resources.memoryMb) and the largest ${tier}-tier miner running it has ${largest} MB; no miner here can run it`];
    if (inRegions === 0) {
      const where = [...elsewhere].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 8).map(([r, n]) => `${r} (${n})`).join(', ');
      return ['no_miner_in_region', `no ${tier}-tier miner in the account's regions (${regions!.join(', ')}) runs ${dservice}; the miners that can run it are in: ${where}. Work of account ${input.account ?? '?'} runs only in its data regions (set at central); wait for a miner there, or change the account's regions`];
    }
    if (eligible === 0) return ['all_draining', `every ${tier}-tier miner that runs ${dservice} is draining; try again shortly`];
    if (quotaRefusal !== null) return ['quota', quotaRefusal.message];
    const wait = freeSlots > 0 ? `${freeSlots} slot${freeSlots === 1 ? '' : 's'} free: it runs at once` : `all ${eligible} miner${eligible === 1 ? ' is' : 's are'} busy: it waits in the queue (${input.queue.depth} queued, ${input.queue.accounts} account${input.queue.accounts === 1 ? '' : 's'} waiting, fair shares)`;
    return [null, `${eligible} ${tier}-tier miner${eligible === 1 ? '' : 's'} can run ${dservice}; ${wait}`];
  })();
  const [reason, message] = withPlacement(dservice, reason0, message0, input.placement);
  // A quota refuses even work placement would take.
  const [finalReason, finalMessage]: [BlockReason | null, string] = reason === null && quotaRefusal !== null && reason0 !== null ? ['quota', quotaRefusal.message] : [reason, message];
  return {
    dservice,
    tier,
    account: input.account,
    regions,
    runnable: finalReason === null,
    reason: finalReason,
    message: finalMessage,
    needs: descriptor === null ? null : { memoryMb: need },
    miners: { advertising: miners.length, byTier, eligible, freeSlots, largestMemoryMb: largest },
    queue: input.queue,
    quota: input.quota === null ? null : { ...input.quota.usage, refused: quotaRefusal === null ? null : (quotaRefusal.details?.['quota'] as string) },
    placement: input.placement === undefined || input.placement.state === 'none' ? null : input.placement,
  };
}

/** The refusal a request gets for a diagnosis that is not runnable for lack of miners. */
export function refusalOf(d: Diagnosis): CgnError {
  return new CgnError(d.reason === 'unknown_dservice' ? 'unknown_dservice' : 'dservice_unavailable', d.message, {
    retryable: d.reason !== 'unknown_dservice',
    details: { reason: d.reason, dservice: d.dservice, tier: d.tier, ...(d.regions !== null ? { regions: d.regions } : {}), ...(d.needs !== null ? { needsMemoryMb: d.needs.memoryMb } : {}), miners: d.miners, ...(d.placement !== null ? { placement: d.placement } : {}) },
  });
}
