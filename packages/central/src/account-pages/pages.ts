/**
 * What the account pages of central's web app read, beyond the routes that already exist (keys,
 * TOTP, usage totals, invoices): usage over time as chart series, end users page by page, the
 * balance with its deposits and how to top up, and a DService developer's DServices, approval,
 * prices and earnings. Everything is read from central's store and the nodes' metering ledger
 * (the same one `BillingReports` reads), bounded: at most `MAX_DAYS` day buckets or `MAX_CYCLES`
 * cycle buckets per series, at most `MAX_PAGE` end users per page.
 */
import { readFileSync } from 'node:fs';
import { beneficiaryEarnings, parseDay, reportJson, sealedCycles, type BillingLedgerStore, type UsageBucketLine, type UsageFilter, type UsageGroup } from '@cgn/ledger';
import { badRequest, CentralError } from '../errors.js';
import type { CentralService, Actor, Ctx } from '../service.js';
import type { DServiceRecord } from '../store/store.js';
import { formatPrice } from '../cli/price-format.js';
import { mayReadAccount } from './access.js';
import { buildSeries, dayLabel, dayStart, dayStarts, DAY_MS, type Bucket } from './series.js';
import { escrowFromContractsJson, topUpSteps, type EscrowInfo } from './top-up.js';

export const MAX_DAYS = 92;
export const MAX_CYCLES = 50;
export const MAX_PAGE = 200;
export const MAX_TOP = 20;
/** DServices of one developer whose revenue its page reads (one bounded ledger query each). */
export const MAX_REVENUE_DSERVICES = 50;

export interface AccountPagesOptions {
  /**
   * The deployment's contracts file (`chainId`, `token`, `settlement`: what `cgn dev` writes to
   * `.cgn/chain-contracts.json`), read when first needed; shown as the escrow to deposit into.
   */
  contractsFile?: string;
  /** The chain's JSON-RPC URL, shown in the top-up commands. */
  rpcUrl?: string;
}

export interface SeriesQuery { by?: string; bucket?: string; from?: string; to?: string; cycles?: string; top?: string }
export interface PageQuery { from?: string; to?: string; cycle?: string; offset?: string; limit?: string; dservice?: string }

const GROUPS: Record<string, UsageGroup> = { dservice: 'dservice', 'end-user': 'endUser' };

function whole(name: string, s: string | undefined, min: number, max: number, dflt: number): number {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!/^[0-9]{1,9}$/.test(s) || n < min || n > max) throw badRequest(`${name} must be a whole number from ${min} to ${max}, not "${s}"`);
  return n;
}

function day(name: string, s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = parseDay(s);
  if (t === undefined) throw badRequest(`${name} must be a day YYYY-MM-DD, not "${s}"`);
  return t;
}

function byBucket(lines: readonly UsageBucketLine[]): Map<string, UsageBucketLine[]> {
  const out = new Map<string, UsageBucketLine[]>();
  for (const l of lines) {
    const b = out.get(l.bucket);
    if (b === undefined) out.set(l.bucket, [l]);
    else b.push(l);
  }
  return out;
}

export class AccountPages {
  private escrow: EscrowInfo | null | undefined;

  constructor(
    private readonly svc: CentralService,
    /** The ledger, or a 503 `CentralError` saying why there is none. */
    private readonly ledger: () => Promise<BillingLedgerStore>,
    private readonly options: AccountPagesOptions = {},
  ) {}

  /**
   * Usage over time: one series per DService or end user (the `top` by price; the rest summed as
   * "(others)"), per UTC day (`from`..`to` inclusive, default the last 30 days) or per billing
   * cycle (the last `cycles`, default 12, the open one included).
   */
  async usageSeries(actor: Actor, accountId: string, q: SeriesQuery, ctx: Ctx) {
    await mayReadAccount(this.svc, actor, accountId, `read the usage of account ${accountId}`, ctx);
    const by = q.by ?? 'dservice';
    const group = Object.hasOwn(GROUPS, by) ? GROUPS[by]! : undefined;
    if (group === undefined) throw badRequest(`by must be dservice or end-user, not "${by}"`);
    const bucket = q.bucket ?? 'day';
    if (bucket !== 'day' && bucket !== 'cycle') throw badRequest(`bucket must be day or cycle, not "${bucket}"`);
    const top = whole('top', q.top, 1, MAX_TOP, 8);
    const store = await this.ledger();
    const buckets: Bucket[] = [];
    if (bucket === 'day') {
      if (q.cycles !== undefined) throw badRequest('cycles goes with bucket=cycle');
      const today = dayStart(this.svc.clock.now());
      const last = day('to', q.to) ?? today;
      const first = day('from', q.from) ?? last - 29 * DAY_MS;
      if (first > last) throw badRequest(`from (${dayLabel(first)}) is after to (${dayLabel(last)})`);
      const days = dayStarts(first, last + DAY_MS);
      if (days.length > MAX_DAYS) throw badRequest(`at most ${MAX_DAYS} days at a time (asked for ${days.length}); narrow from..to or use bucket=cycle`);
      // One pass over the window: its lines by day, then a bucket per day (empty ones too, for the chart's axis).
      const byDay = byBucket(await store.usageOverTime('day', group, { account: accountId, from: first, to: last + DAY_MS }));
      for (const t of days) buckets.push({ label: dayLabel(t), start: t, lines: byDay.get(dayLabel(t)) ?? [] });
    } else {
      if (q.from !== undefined || q.to !== undefined) throw badRequest('from and to go with bucket=day (bucket=cycle takes cycles=N)');
      const n = whole('cycles', q.cycles, 1, MAX_CYCLES, 12);
      const all = (await store.cycles()).sort((a, b) => a.id - b.id).slice(-n);
      const byCycle = byBucket(all.length === 0 ? [] : await store.usageOverTime('cycle', group, { account: accountId }));
      for (const c of all) buckets.push({ label: `cycle ${c.id}`, start: c.openedAt, lines: byCycle.get(String(c.id)) ?? [] });
    }
    return { account: accountId, by, bucket, top, ...buildSeries(buckets, top) };
  }

  /** The account's end users with their usage, most expensive first, a page at a time. */
  async endUsers(actor: Actor, accountId: string, q: PageQuery, ctx: Ctx) {
    await mayReadAccount(this.svc, actor, accountId, `read the usage of account ${accountId}`, ctx);
    const offset = whole('offset', q.offset, 0, 1e9, 0);
    const limit = whole('limit', q.limit, 1, MAX_PAGE, 50);
    const from = day('from', q.from);
    const to = day('to', q.to);
    const filter: UsageFilter = {
      account: accountId,
      ...(from === undefined ? {} : { from }),
      // `to` is a day, inclusive here as on the chart.
      ...(to === undefined ? {} : { to: to + DAY_MS }),
      ...(q.cycle === undefined ? {} : { cycle: whole('cycle', q.cycle, 1, 1e9, 1) }),
      ...(q.dservice === undefined ? {} : { dservice: q.dservice }),
    };
    const store = await this.ledger();
    const lines = (await store.usage('endUser', filter)).sort((a, b) =>
      a.priceMicros !== b.priceMicros ? (a.priceMicros > b.priceMicros ? -1 : 1) : a.records !== b.records ? b.records - a.records : a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    const page = lines.slice(offset, offset + limit);
    return reportJson({ account: accountId, total: lines.length, offset, limit, next: offset + limit < lines.length ? offset + limit : null, lines: page });
  }

  /** Balance (deposited, spent, available), linked addresses, recent deposits and withdrawals, and how to top up. */
  async balance(actor: Actor, accountId: string, ctx: Ctx) {
    await mayReadAccount(this.svc, actor, accountId, `read the balance of account ${accountId}`, ctx);
    const store = await this.ledger();
    const [balance, links, deposits, withdrawals] = await Promise.all([
      store.balance(accountId), store.links(accountId), store.deposits(accountId, { limit: 50 }), store.withdrawals({ account: accountId }),
    ]);
    return reportJson({
      account: accountId,
      balance,
      links,
      deposits,
      withdrawals: withdrawals.slice(-20).reverse(),
      topUp: topUpSteps(accountId, links.map((l) => l.address), this.escrowInfo()),
    });
  }

  /**
   * A DService developer's view: its DServices (every version) with approval state and prices, what
   * it earned per closed cycle (the developer share, from the ledger's credits), and the revenue
   * of each of its DServices per cycle (what all accounts were charged for it). Without a ledger
   * the DServices are still listed and `earnings` says why it is missing.
   */
  async developer(actor: Actor, accountId: string, ctx: Ctx) {
    const account = await mayReadAccount(this.svc, actor, accountId, `read the DServices and earnings of account ${accountId}`, ctx);
    const records = await this.svc.store.listDServices({ developer: accountId });
    const reasons = await this.rejectionReasons(accountId);
    const dservices = records.map((d) => dserviceView(d, reasons.get(`${d.name}@${d.version}`) ?? null));
    let earnings: unknown = null;
    let revenue: unknown = null;
    let revenueNote: string | null = null;
    let unavailable: string | null = null;
    try {
      const store = await this.ledger();
      const cycles = (await sealedCycles(store)).slice(-MAX_CYCLES);
      // Bounded reads: the earnings of the kept cycles only, and the records of this developer's
      // DServices only, from the first kept cycle on. (Before, a developer with two DServices read
      // every record of every DService ever, and the earnings of every cycle, on each page load.)
      earnings = cycles.length === 0 ? [] : await beneficiaryEarnings(store, 'developer', accountId, cycles);
      const names = new Set(records.map((d) => d.name));
      const closed = new Map(cycles.map((c) => [String(c.id), c]));
      const lines: UsageBucketLine[] = [];
      if (cycles.length > 0) {
        const fromCycle = cycles[0]!.id;
        for (const dservice of [...names].sort().slice(0, MAX_REVENUE_DSERVICES)) lines.push(...(await store.usageOverTime('cycle', 'dservice', { dservice, fromCycle })));
      }
      if (names.size > MAX_REVENUE_DSERVICES) revenueNote = `revenue of the first ${MAX_REVENUE_DSERVICES} of ${names.size} DServices (by name)`;
      revenue = lines
        .filter((l) => names.has(l.key) && closed.has(l.bucket))
        .map((l) => ({ cycle: Number(l.bucket), closedAt: closed.get(l.bucket)!.closedAt, dservice: l.key, records: l.records, priceMicros: l.priceMicros, tokens: l.tokens }));
    } catch (err) {
      if (!(err instanceof CentralError) || err.httpStatus !== 503) throw err;
      unavailable = err.message;
    }
    return reportJson({
      account: accountId,
      developer: account.kinds.includes('developer'),
      payoutAddress: account.payoutAddress ?? null,
      dservices,
      earnings,
      revenue,
      ...(revenueNote === null ? {} : { revenueNote }),
      ...(unavailable === null ? {} : { unavailable }),
    });
  }

  private async rejectionReasons(accountId: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const events = await this.svc.store.queryAudit({ type: 'dservice_rejected', accountId, limit: 200 });
    // Newest first: the first reason seen for a version is its latest.
    for (const e of events) {
      const reason = (e.details as Record<string, unknown> | undefined)?.['reason'];
      if (e.subject !== null && e.subject !== undefined && typeof reason === 'string' && !out.has(e.subject)) out.set(e.subject, reason);
    }
    return out;
  }

  private escrowInfo(): EscrowInfo | null {
    if (this.escrow !== undefined) return this.escrow;
    if (this.options.contractsFile === undefined) return (this.escrow = null);
    try {
      // Cached once read: a deployment does not move.
      return (this.escrow = escrowFromContractsJson(readFileSync(this.options.contractsFile, 'utf8'), this.options.rpcUrl ?? null));
    } catch {
      return null; // not written yet, or unreadable: the steps still show, without the addresses
    }
  }
}

export function dserviceView(d: DServiceRecord, rejectionReason: string | null) {
  return {
    name: d.name, version: d.version, digest: d.digest, state: d.state, submittedAt: d.submittedAt, decidedAt: d.decidedAt,
    price: d.price, priceText: formatPrice(d.price), rejectionReason,
  };
}
