/**
 * What each account may use on this node: its weight in the fair queues and its quotas. Set at
 * central (account settings, pushed over the central link) or, without central, in the node's
 * options; an account nobody set anything for gets the defaults.
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
}

export const DEFAULT_ACCOUNT_POLICY: AccountPolicy = { weight: 1, maxConcurrent: null, perSecond: null, burst: null };

export type AccountPolicyInput = Partial<AccountPolicy>;

export class AccountPolicyError extends Error {
  readonly code = 'bad_account_policy';
}

/** Checks one policy (from options, a file or central) and fills it from `base`. */
export function parseAccountPolicy(input: unknown, where: string, base: AccountPolicy = DEFAULT_ACCOUNT_POLICY): AccountPolicy {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new AccountPolicyError(`${where}: must be an object like {"weight": 1, "maxConcurrent": 100, "perSecond": 50}`);
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(k in DEFAULT_ACCOUNT_POLICY)) throw new AccountPolicyError(`${where}.${k}: not a field of an account policy (weight, maxConcurrent, perSecond, burst)`);
  }
  const num = (k: keyof AccountPolicy, nullable: boolean): number | null => {
    const v = o[k];
    if (v === undefined) return base[k];
    if (v === null && nullable) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new AccountPolicyError(`${where}.${k}: must be a positive number${nullable ? ' or null (no quota)' : ''}`);
    return v;
  };
  return { weight: num('weight', false)!, maxConcurrent: num('maxConcurrent', true), perSecond: num('perSecond', true), burst: num('burst', true) };
}

export class AccountPolicies {
  private readonly byAccount = new Map<string, AccountPolicy>();
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
