/**
 * The ledger's reports — usage, invoices, earnings — as functions over a `BillingLedgerStore`.
 * `cgn ledger usage|invoice|earnings` print them and central's HTTP API serves them, so both show
 * the same numbers. Amounts are bigints; `reportJson` turns a report into plain JSON (amounts as
 * decimal strings), as `--json` and the HTTP API show it.
 *
 * Errors are `CgnError`s: `bad_request` for a malformed argument, `not_found` for a cycle that is
 * not closed and sealed (or when none is yet).
 */
import { CgnError } from '@cgn/protocol';
import { cycleIsEmpty, type Credit, type CycleSummary, type Payout } from './billing.js';
import type { TokenRate } from './pricing/price.js';
import { BENEFICIARIES, type Beneficiary } from './pricing/split.js';
import type { BillingLedgerStore, UsageFilter, UsageGroup, UsageLine } from './store.js';

/** The `--by` / `by=` names of the usage groups. */
export const USAGE_GROUPS: Readonly<Record<string, UsageGroup>> = { dservice: 'dservice', 'end-user': 'endUser', day: 'day', tier: 'tier', account: 'account' };

/** A `YYYY-MM-DD` day as epoch ms (UTC midnight), or undefined when it is not one (also for 2030-02-30). */
export function parseDay(s: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m === null) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  // No rolling over: 2030-02-30 is not a day.
  return Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== s ? undefined : t;
}

export interface UsageTotal {
  records: number;
  cpuUs: number;
  bytesIn: number;
  bytesOut: number;
  priceMicros: bigint;
  tokens: bigint;
}

/** The sum of usage lines (the TOTAL row of `cgn ledger usage`). */
export function usageTotal(lines: readonly UsageLine[]): UsageTotal {
  const total: UsageTotal = { records: 0, cpuUs: 0, bytesIn: 0, bytesOut: 0, priceMicros: 0n, tokens: 0n };
  for (const l of lines) {
    total.records += l.records;
    total.cpuUs += l.cpuUs;
    total.bytesIn += l.bytesIn;
    total.bytesOut += l.bytesOut;
    total.priceMicros += l.priceMicros;
    total.tokens += l.tokens;
  }
  return total;
}

export interface UsageReport {
  /** The group's name as asked (`dservice`, `end-user`, `day`, `tier`, `account`). */
  by: string;
  filter: UsageFilter;
  lines: UsageLine[];
}

/** Usage and cost of recorded work, grouped `by` (default per DService). `filter.to` is exclusive. */
export async function usageReport(store: BillingLedgerStore, by = 'dservice', filter: UsageFilter = {}): Promise<UsageReport> {
  const group = Object.hasOwn(USAGE_GROUPS, by) ? USAGE_GROUPS[by] : undefined;
  if (group === undefined) throw new CgnError('bad_request', `by must be one of ${Object.keys(USAGE_GROUPS).join(', ')}, not "${by}"`);
  const lines = await store.usage(group, filter);
  return { by, filter, lines };
}

/**
 * The sealed cycle `id`, or (without `id`) the last sealed one that holds records: a cycle that
 * closed empty has nothing to invoice or pay, so it is not the default.
 */
export async function sealedCycle(store: BillingLedgerStore, id?: number): Promise<CycleSummary> {
  if (id !== undefined) {
    const s = await store.cycleSummary(id);
    if (s === undefined) throw new CgnError('not_found', `cycle ${id} is not closed and sealed`);
    return s;
  }
  const all = await sealedCycles(store);
  const s = all.filter((c) => !cycleIsEmpty(c)).at(-1);
  if (s === undefined) {
    throw new CgnError('not_found', all.length === 0
      ? 'no billing cycle has been closed yet (cgn ledger close-cycle)'
      : `no billing cycle with records has closed yet (cycle${all.length > 1 ? 's' : ''} ${all.map((c) => c.id).join(', ')} closed empty; ask for one with its id)`);
  }
  return s;
}

/** Tokens held for beneficiaries that have registered an address since: the next cycle sealed pays them. */
export async function releasableTokens(store: BillingLedgerStore): Promise<bigint> {
  const registered = await store.addresses();
  return (await store.heldCredits({ pending: true })).filter((h) => registered.has(`${h.role}\u0000${h.beneficiary}`)).reduce((a, h) => a + h.tokens, 0n);
}

/** Every sealed cycle, oldest first. */
export async function sealedCycles(store: BillingLedgerStore): Promise<CycleSummary[]> {
  return (await store.cycles()).filter((c): c is CycleSummary => c.sealedAt !== null).sort((a, b) => a.id - b.id);
}

export interface InvoiceSummary {
  cycle: number;
  openedAt: number;
  closedAt: number | null;
  rate: TokenRate;
  /** Where the cycle's rate came from and when it was read (absent: not recorded). */
  rateSource?: string;
  rateFetchedAt?: number;
  account: string;
  records: number;
  priceMicros: bigint;
  tokens: bigint;
}

export interface Invoice extends InvoiceSummary {
  /** The account's usage in the cycle per DService (its sum is the amount due). */
  byDservice: UsageLine[];
}

async function invoiceOf(store: BillingLedgerStore, c: CycleSummary, account: string): Promise<InvoiceSummary> {
  const debit = (await store.debits(c.id)).find((d) => d.account === account) ?? { account, records: 0, priceMicros: 0n, tokens: 0n };
  return {
    cycle: c.id, openedAt: c.openedAt, closedAt: c.closedAt, rate: c.rate,
    ...(c.rateSource === undefined ? {} : { rateSource: c.rateSource }), ...(c.rateFetchedAt === undefined ? {} : { rateFetchedAt: c.rateFetchedAt }),
    account, records: debit.records, priceMicros: debit.priceMicros, tokens: debit.tokens };
}

/** An account's invoice for a closed cycle (default: the last sealed one): its debit and usage per DService. */
export async function invoiceReport(store: BillingLedgerStore, account: string, cycle?: number): Promise<Invoice> {
  const c = await sealedCycle(store, cycle);
  const head = await invoiceOf(store, c, account);
  const byDservice = await store.usage('dservice', { account, cycle: c.id });
  return { ...head, byDservice };
}

/** An account's invoice (without the per-DService lines) for every sealed cycle, oldest first. */
export async function invoiceList(store: BillingLedgerStore, account: string): Promise<InvoiceSummary[]> {
  const out: InvoiceSummary[] = [];
  for (const c of await sealedCycles(store)) out.push(await invoiceOf(store, c, account));
  return out;
}

export interface EarningsReport {
  cycle: number;
  payoutRoot: string | null;
  credits: Credit[];
  /** The payouts (with proofs) of the credits' addresses. */
  payouts: Payout[];
}

/** Credits per beneficiary in a closed cycle (default: the last sealed one), optionally of one role and/or beneficiary. */
export async function earningsReport(store: BillingLedgerStore, options: { cycle?: number; role?: string; beneficiary?: string } = {}): Promise<EarningsReport> {
  const { role, beneficiary } = options;
  if (role !== undefined && !(BENEFICIARIES as readonly string[]).includes(role)) throw new CgnError('bad_request', `role must be one of ${BENEFICIARIES.join(', ')}`);
  const c = await sealedCycle(store, options.cycle);
  return earningsOf(store, c, role as Beneficiary | undefined, beneficiary);
}

async function earningsOf(store: BillingLedgerStore, c: CycleSummary, role: Beneficiary | undefined, who: string | undefined): Promise<EarningsReport> {
  const credits = (await store.credits(c.id)).filter((x) => (role === undefined || x.role === role) && (who === undefined || x.beneficiary === who));
  const addresses = new Set(credits.map((x) => x.address));
  const payouts = (await store.payouts(c.id)).filter((p) => addresses.has(p.address));
  return { cycle: c.id, payoutRoot: c.payoutRoot, credits, payouts };
}

export interface BeneficiaryCycleEarnings {
  cycle: number;
  openedAt: number;
  closedAt: number | null;
  payoutRoot: string | null;
  /** Records that paid this beneficiary, and the tokens it earned (0 when none). */
  records: number;
  tokens: bigint;
  /** Of `tokens`, held: it had no address when the cycle was sealed (paid once it gives one). */
  held: bigint;
  /** Held in earlier cycles, paid in this one. */
  released: bigint;
  /** The address paid (null when it earned nothing in the cycle). */
  address: string | null;
  /** The payout (with its proof) of that address; it may cover other beneficiaries paid to the same address. */
  payout: Payout | null;
}

/** What one beneficiary (role and id) earned in every sealed cycle, oldest first: `earningsReport` per cycle. */
export async function beneficiaryEarnings(store: BillingLedgerStore, role: Beneficiary, beneficiary: string, cycles?: readonly CycleSummary[]): Promise<BeneficiaryCycleEarnings[]> {
  const out: BeneficiaryCycleEarnings[] = [];
  // `cycles`: only those (e.g. the last few sealed ones), instead of every cycle the ledger has sealed.
  for (const c of cycles ?? (await sealedCycles(store))) {
    const r = await earningsOf(store, c, role, beneficiary);
    const credit = r.credits[0];
    out.push({
      cycle: c.id, openedAt: c.openedAt, closedAt: c.closedAt, payoutRoot: c.payoutRoot,
      records: credit?.records ?? 0, tokens: credit?.tokens ?? 0n, held: credit?.held ?? 0n, released: credit?.released ?? 0n, address: credit?.address ?? null,
      payout: credit === undefined ? null : (r.payouts.find((p) => p.address === credit.address) ?? null),
    });
  }
  return out;
}

/** A report as plain JSON values: bigints become decimal strings. */
export function reportJson<T>(x: T): unknown {
  return JSON.parse(JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}
