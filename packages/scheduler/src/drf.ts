/**
 * THE SHARING RULE: weighted dominant resource fairness (DRF; Ghodsi et al., NSDI 2011, and the
 * DCCN seed's WDRFSche), by progressive filling over whole instances.
 *
 *   An account's dominant share is the largest fraction it holds of any resource of the pool
 *   (cpus, memory, disk, GPUs, bandwidth), divided by its weight (from its plan or its stake):
 *
 *       share(a) = max_r ( used_a[r] / total[r] ) / weight(a)
 *
 *   Contended capacity goes one instance at a time to the account with the lowest share (ties: the
 *   smaller account id, so the outcome is deterministic). When that account's next instance does
 *   not fit anywhere it stops asking (it is "blocked") and the others go on, so capacity is not left
 *   idle while anyone could use it; an account also stops at the instances it wants.
 *
 * `drf` below is the rule on one pool (the form of the paper, and what the property tests check);
 * `place` applies the same `ShareQueue` to a pool made of many miners, where "fits" means "fits on
 * some eligible miner", after first giving every DService its minimum instances (in the same order).
 */
import { CgnError } from '@cgn/protocol';
import { Heap } from './heap.js';
import { addInto, checkResources, dominantShare, fits, subtractInto } from './resources.js';
import { RESOURCE_KEYS, type ResourceKey, type Resources } from './types.js';

/** Accounts ordered by weighted dominant share; the one to serve next is `pop()`'s. */
export class ShareQueue {
  private readonly used = new Map<string, Resources>();
  private readonly heap = new Heap<{ account: string; share: number }>((a, b) => a.share < b.share || (a.share === b.share && a.account < b.account));

  constructor(
    private readonly total: Resources,
    private readonly weightOf: (account: string) => number,
  ) {}

  /** Weighted dominant share of `account` now. */
  share(account: string): number {
    const u = this.used.get(account);
    return u === undefined ? 0 : dominantShare(u, this.total) / this.weightOf(account);
  }

  usedBy(account: string): Resources | undefined {
    return this.used.get(account);
  }

  /** Counts resources an account already holds (running instances) before filling starts. */
  hold(account: string, r: Resources): void {
    let u = this.used.get(account);
    if (u === undefined) this.used.set(account, (u = { cpus: 0, memoryMb: 0, diskMb: 0, gpus: 0, bandwidthMbps: 0 }));
    addInto(u, r);
  }

  /** Puts an account (back) in line at its current share. */
  enqueue(account: string): void {
    this.heap.push({ account, share: this.share(account) });
  }

  /** The account with the lowest share, taken out of line (enqueue it again to keep it asking). */
  pop(): string | undefined {
    return this.heap.pop()?.account;
  }
}

export interface DrfUser {
  id: string;
  /** > 0; a user of weight 2 is entitled to twice the dominant share of a user of weight 1. */
  weight: number;
  /** What one task needs. */
  demand: Resources;
  /** Tasks the user wants at most. */
  maxTasks: number;
}

export interface DrfAllocation {
  /** Tasks per user id. */
  tasks: Map<string, number>;
  /** What is left of the capacity. */
  free: Resources;
  /** User ids in the order tasks were granted. */
  grants: string[];
  /** For each user whose next task stopped fitting: how many grants (to anyone) had been made then. */
  blockedAfter: Map<string, number>;
}

/** Weighted DRF by progressive filling over one pool of `capacity`. Deterministic. */
function checkUsers(capacity: Resources, users: readonly DrfUser[]): Map<string, DrfUser> {
  checkResources(capacity, 'capacity');
  const byId = new Map<string, DrfUser>();
  for (const u of users) {
    if (byId.has(u.id)) throw new CgnError('bad_request', `user ${u.id} appears twice`);
    if (!(Number.isFinite(u.weight) && u.weight > 0)) throw new CgnError('bad_request', `weight of ${u.id} must be a finite number > 0 (got ${u.weight})`);
    if (!Number.isSafeInteger(u.maxTasks) || u.maxTasks < 0) throw new CgnError('bad_request', `maxTasks of ${u.id} must be an integer >= 0 (got ${u.maxTasks})`);
    checkResources(u.demand, `demand of ${u.id}`);
    byId.set(u.id, u);
  }
  return byId;
}

/** Weighted DRF by progressive filling over one pool of `capacity`, whole tasks. Deterministic. */
export function drf(capacity: Resources, users: readonly DrfUser[]): DrfAllocation {
  const byId = checkUsers(capacity, users);
  const free = { ...capacity };
  const tasks = new Map<string, number>();
  const grants: string[] = [];
  const blockedAfter = new Map<string, number>();
  const q = new ShareQueue(capacity, (id) => byId.get(id)!.weight);
  for (const u of byId.values()) {
    tasks.set(u.id, 0);
    q.enqueue(u.id);
  }
  for (let id = q.pop(); id !== undefined; id = q.pop()) {
    const u = byId.get(id)!;
    const n = tasks.get(id)!;
    if (n >= u.maxTasks) continue; // satisfied: out of line
    if (!fits(u.demand, free)) {
      blockedAfter.set(id, grants.length); // blocked: out of line for good (room only shrinks)
      continue;
    }
    subtractInto(free, u.demand);
    q.hold(id, u.demand);
    tasks.set(id, n + 1);
    grants.push(id);
    q.enqueue(id);
  }
  return { tasks, free, grants, blockedAfter };
}

/**
 * The same rule on divisible tasks (the model of Ghodsi et al., where sharing incentive,
 * envy-freeness, Pareto efficiency and strategy-proofness are theorems): every user not yet
 * stopped raises its weighted dominant share at the same pace; a user stops at `maxTasks`, and
 * every user of a resource stops when that resource runs out. Returns fractional tasks per user.
 * Whole-task `drf` is the discrete form of this; the property tests check both.
 */
export function drfDivisible(capacity: Resources, users: readonly DrfUser[]): Map<string, number> {
  const byId = checkUsers(capacity, users);
  const tasks = new Map<string, number>();
  const active: { u: DrfUser; delta: number }[] = [];
  const used: Record<ResourceKey, number> = { cpus: 0, memoryMb: 0, diskMb: 0, gpus: 0, bandwidthMbps: 0 };
  for (const u of byId.values()) {
    let delta = 0;
    let impossible = false;
    for (const k of RESOURCE_KEYS) {
      if (u.demand[k] === 0) continue;
      if (capacity[k] === 0) impossible = true;
      else delta = Math.max(delta, u.demand[k] / capacity[k]);
    }
    if (impossible || u.maxTasks === 0) tasks.set(u.id, 0);
    else if (delta === 0) tasks.set(u.id, u.maxTasks); // needs nothing
    else {
      tasks.set(u.id, 0);
      active.push({ u, delta });
    }
  }
  const EPS = 1e-12;
  let s = 0;
  while (active.length > 0) {
    // Per unit of share: what the active users consume of each resource.
    const rate: Record<ResourceKey, number> = { cpus: 0, memoryMb: 0, diskMb: 0, gpus: 0, bandwidthMbps: 0 };
    for (const { u, delta } of active) for (const k of RESOURCE_KEYS) rate[k] += (u.weight * u.demand[k]) / delta;
    let next = Infinity;
    for (const k of RESOURCE_KEYS) if (rate[k] > 0) next = Math.min(next, s + Math.max(0, capacity[k] - used[k]) / rate[k]);
    for (const { u, delta } of active) next = Math.min(next, (u.maxTasks * delta) / u.weight);
    for (const k of RESOURCE_KEYS) used[k] += rate[k] * (next - s);
    s = next;
    const full = new Set<ResourceKey>(RESOURCE_KEYS.filter((k) => rate[k] > 0 && capacity[k] - used[k] <= EPS * capacity[k]));
    for (let i = active.length - 1; i >= 0; i--) {
      const { u, delta } = active[i]!;
      const x = Math.min(u.maxTasks, (s * u.weight) / delta);
      tasks.set(u.id, x);
      if (x >= u.maxTasks * (1 - EPS) || RESOURCE_KEYS.some((k) => full.has(k) && u.demand[k] > 0)) active.splice(i, 1);
    }
  }
  return tasks;
}
