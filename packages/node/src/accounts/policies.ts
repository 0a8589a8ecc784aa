/**
 * What each account may use on this node: its weight in the fair queues, its quotas and its data
 * regions. Set at central (account settings, pushed over the central link) or, without central, in
 * the node's options; an account nobody set anything for gets the defaults.
 */
export interface AccountPolicy {
  /** Share of contended queues (`broker/fair-queue.ts`): weight 2 is served twice as often as 1. */
  weight: number;
  /** Requests of the account this node holds at once (queued or running); null: no quota. */
  maxConcurrent: number | null;
  /** Requests per second the account may send (a token bucket of `burst`); null: no quota. */
  perSecond: number | null;
  /** Burst of the per-second quota; null: one second's worth. */
  burst: number | null;
  /**
   * Data regions the account's work may run in (a miner in `eu-west` is in `eu`, see the
   * scheduler's `regionAllowed`); null: anywhere. A miner that advertises no region is in none.
   */
  regions: readonly string[] | null;
}

export const DEFAULT_ACCOUNT_POLICY: AccountPolicy = { weight: 1, maxConcurrent: null, perSecond: null, burst: null, regions: null };

/** A region name as miners advertise it (`--region`) and central stores it. */
const REGION = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** Regions one account may name: a fence is checked per candidate miner, so it stays small. */
export const MAX_ACCOUNT_REGIONS = 64;

export type AccountPolicyInput = Partial<AccountPolicy>;

export class AccountPolicyError extends Error {
  readonly code = 'bad_account_policy';
}

/** Checks one policy (from options, a file or central) and fills it from `base`. */
export function parseAccountPolicy(input: unknown, where: string, base: AccountPolicy = DEFAULT_ACCOUNT_POLICY): AccountPolicy {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new AccountPolicyError(`${where}: must be an object like {"weight": 1, "maxConcurrent": 100, "perSecond": 50}`);
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(k in DEFAULT_ACCOUNT_POLICY)) throw new AccountPolicyError(`${where}.${k}: not a field of an account policy (weight, maxConcurrent, perSecond, burst, regions)`);
  }
  const num = (k: 'weight' | 'maxConcurrent' | 'perSecond' | 'burst', nullable: boolean): number | null => {
    const v = o[k];
    if (v === undefined) return base[k];
    if (v === null && nullable) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new AccountPolicyError(`${where}.${k}: must be a positive number${nullable ? ' or null (no quota)' : ''}`);
    return v;
  };
  return { weight: num('weight', false)!, maxConcurrent: num('maxConcurrent', true), perSecond: num('perSecond', true), burst: num('burst', true), regions: parseRegions(o['regions'], where, base.regions) };
}

function parseRegions(v: unknown, where: string, base: readonly string[] | null): readonly string[] | null {
  if (v === undefined) return base;
  if (v === null) return null;
  const bad = (why: string) => new AccountPolicyError(`${where}.regions: ${why}; give a list of region names like ["eu", "us-east"], or null for anywhere`);
  if (!Array.isArray(v)) throw bad('must be a list');
  if (v.length === 0) throw bad('is empty (no miner could ever run the account\'s work)');
  if (v.length > MAX_ACCOUNT_REGIONS) throw bad(`names more than ${MAX_ACCOUNT_REGIONS} regions`);
  for (const r of v) if (typeof r !== 'string' || !REGION.test(r)) throw bad(`${JSON.stringify(r).slice(0, 80)} is not a region name (lower-case letters, digits and dashes)`);
  return Object.freeze([...new Set(v as string[])]);
}

export class AccountPolicies {
  private readonly byAccount = new Map<string, AccountPolicy>();
  /** Each policy's regions as a set, made once per policy (the broker keeps it on every unit). */
  private readonly fences = new WeakMap<AccountPolicy, ReadonlySet<string>>();
  /** Bumped on every change, so holders of derived state know to refresh it. */
  version = 0;

  constructor(private defaults: AccountPolicy = DEFAULT_ACCOUNT_POLICY, byAccount: Record<string, AccountPolicyInput> = {}) {
    for (const [a, p] of Object.entries(byAccount)) this.byAccount.set(a, parseAccountPolicy(p, `accounts.byAccount.${a}`, defaults));
  }

  get(account: string): AccountPolicy {
    return this.byAccount.get(account) ?? this.defaults;
  }

  weightOf(account: string): number {
    return (this.byAccount.get(account) ?? this.defaults).weight;
  }

  /** The regions the account's work may run in, as one shared set per policy; null: anywhere. */
  regionsOf(account: string): ReadonlySet<string> | null {
    const p = this.byAccount.get(account) ?? this.defaults;
    if (p.regions === null) return null;
    let fence = this.fences.get(p);
    if (fence === undefined) this.fences.set(p, (fence = new Set(p.regions)));
    return fence;
  }

  /** One account's policy (null: back to the defaults). */
  set(account: string, policy: AccountPolicyInput | null): void {
    if (policy === null) this.byAccount.delete(account);
    else this.byAccount.set(account, parseAccountPolicy(policy, `account ${account}`, this.defaults));
    this.version++;
  }

  /** Every account's policy at once (central's list); all checked before any is applied. */
  replaceAll(byAccount: Record<string, AccountPolicyInput>, defaults?: AccountPolicyInput): void {
    const base = defaults === undefined ? this.defaults : parseAccountPolicy(defaults, 'account defaults');
    const next = Object.entries(byAccount).map(([a, p]) => [a, parseAccountPolicy(p, `account ${a}`, base)] as const);
    this.defaults = base;
    this.byAccount.clear();
    for (const [a, p] of next) this.byAccount.set(a, p);
    this.version++;
  }
}
