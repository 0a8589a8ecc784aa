/**
 * The scheduler's vocabulary. A leaf: every other module imports from here, this imports nothing
 * but the protocol's tier names. All times are epoch milliseconds from an injected `Clock`.
 */
import type { Tier } from '@cgn/protocol';

export type { Tier };

/** A source of time, injected so that every decision is a pure function of its inputs. */
export interface Clock {
  now(): number;
}

/**
 * A bundle of resources. GPUs are counted (0 or 1 for "has a GPU"); bandwidth is what one
 * instance may use, in megabits per second.
 */
export interface Resources {
  cpus: number;
  memoryMb: number;
  diskMb: number;
  gpus: number;
  bandwidthMbps: number;
}

export const RESOURCE_KEYS = ['cpus', 'memoryMb', 'diskMb', 'gpus', 'bandwidthMbps'] as const;
export type ResourceKey = (typeof RESOURCE_KEYS)[number];

/**
 * How a miner has served, in the shape of the ledger's service level (packages/ledger/src/
 * reputation.ts: success, latency vs. peers, records) plus what the node observes besides the
 * ledger: uptime and the outcomes of open-tier verification. Every ratio is 0..1.
 */
export interface ReputationInputs {
  /** Records in the window; with none, the scheduler uses a neutral prior instead of the ratios. */
  records: number;
  /** Share of work units that did not fail on this miner (the ledger's `success`). */
  success: number;
  /** Latency vs. peers on the same DServices, 1 = at least as fast (the ledger's `latency`). */
  latency: number;
  /** Share of the window the miner was connected and not draining. */
  uptime: number;
  /** Redundant-execution checks this miner's results passed and failed (open tier). */
  verificationsPassed: number;
  verificationsFailed: number;
}

export type MinerStatus = 'online' | 'draining' | 'offline';

/** What the node knows about one miner. */
export interface MinerView {
  /** The miner's id (hex public key). */
  id: string;
  tier: Tier;
  /** Data region the miner sits in, e.g. `eu-west`; undefined when it did not say. */
  region?: string;
  /** Free-form location it advertised (city, coordinates), for display only. */
  location?: string;
  status: MinerStatus;
  /** Slashed or caught cheating: never placed on. */
  banned?: boolean;
  /** What the miner advertised. */
  claimed: Resources;
  /**
   * What the node's capability probe measured; undefined until the probe ran. The scheduler
   * believes the smaller of claimed and measured in each resource.
   */
  measured?: Resources;
  /**
   * What is free now for new instances, when the node knows better than "capacity minus the
   * instances in the state" (e.g. the miner reported its own load). Defaults to that difference.
   */
  free?: Resources;
  /** The least the miner accepts, in token micro-units per CPU-second. */
  priceFloor: number;
  /** Undefined for a miner with no history: the neutral prior applies. */
  reputation?: ReputationInputs;
  /** Package digests the miner has cached: placing there skips the download. */
  cachedPackages?: readonly string[];
}

/** What one instance of a DService needs, from its descriptor, and where its account lets it run. */
export interface Requirements {
  resources: Resources;
  tier: Tier;
  /**
   * The account's data regions: a miner's region matches `eu` when it is `eu` or starts with
   * `eu-`. Undefined: anywhere.
   */
  regions?: readonly string[];
  /** What the DService pays a miner per CPU-second (micro-units); miners whose floor is above are refused. */
  maxPrice?: number;
  /** Refuse miners whose capability probe has not run yet. */
  requireMeasured?: boolean;
}

/** One DService (at one version, in one tier) and how much of it is wanted. */
export interface DServiceDemand {
  /** DService name; (name, tier) identifies the broker queue this demand feeds. */
  name: string;
  version: string;
  /** Package digest, to prefer miners that cached it. */
  digest?: string;
  /** The account whose share pays for these instances (the DService's owner or sponsor). */
  account: string;
  requirements: Requirements;
  minInstances: number;
  maxInstances: number;
  /** Instances wanted now (from `autoscale`); undefined keeps the current count, within min..max. */
  desiredInstances?: number;
  /** Work units waiting in the (DService, tier) queue. */
  queueDepth: number;
  /** How long the oldest queued work unit has waited, ms. */
  queueWaitMs: number;
}

/** An account's weight in the weighted DRF (from its plan or its stake). */
export interface AccountShare {
  account: string;
  weight: number;
}

export type InstanceState = 'starting' | 'ready';

/** One running (or starting) instance of a DService on a miner, as the node knows it. */
export interface InstanceView {
  id: string;
  dservice: string;
  version: string;
  tier: Tier;
  account: string;
  minerId: string;
  resources: Resources;
  state: InstanceState;
  /** When it entered `state`. */
  since: number;
  /**
   * The fence of the demand it was started for (its regions sorted and joined by commas, as
   * `fenceKey`; '' for anywhere); undefined: not known (hand-started). While that demand exists and
   * its miner is in the fence, the instance counts for it: an instance started for anywhere on a
   * miner inside a fence stays the anywhere demand's, so that demand does not start another.
   */
  fence?: string;
}

/** Everything `place` looks at. */
export interface ClusterState {
  miners: readonly MinerView[];
  instances: readonly InstanceView[];
  accounts: readonly AccountShare[];
}

export interface StartDecision {
  kind: 'start';
  dservice: string;
  version: string;
  tier: Tier;
  account: string;
  minerId: string;
  resources: Resources;
  /** `min`: to reach minInstances; `demand`: to reach desiredInstances; `replace`: for a stopped one. */
  reason: 'min' | 'demand' | 'replace';
  /** The data regions of the demand it is for, when that demand was fenced (its miner is in one). */
  regions?: readonly string[];
}

export type StopReason =
  /** Its miner left or went offline. */
  | 'miner_offline'
  /** Its miner no longer meets the requirements (banned, tier, region, draining). */
  | 'miner_ineligible'
  /** Its (DService, tier) is no longer demanded. */
  | 'not_demanded'
  /** More instances than desired (or than maxInstances). */
  | 'excess'
  /** An older version, now replaced by enough ready instances of the current one. */
  | 'superseded'
  /** It stayed `starting` longer than the cold-start budget. */
  | 'cold_start_timeout';

export interface StopDecision {
  kind: 'stop';
  instanceId: string;
  dservice: string;
  tier: Tier;
  minerId: string;
  reason: StopReason;
}

export type Decision = StartDecision | StopDecision;
