/** Helpers both stores share (reports, balances). */
import { CgnError } from '@cgn/protocol';
import type { Balance, UsageBucket, UsageBucketLine, UsageGroup, UsageLine } from './store.js';

export function balanceOf(account: string, deposited: string | bigint, spent: string | bigint): Balance {
  const d = BigInt(deposited);
  const s = BigInt(spent);
  return { account, deposited: d, spent: s, available: d - s };
}

export function checkCredit(account: string, amount: bigint): void {
  if (typeof account !== 'string' || account.length === 0 || account.length > 256) throw new CgnError('bad_request', 'account must be a non-empty string');
  if (typeof amount !== 'bigint' || amount <= 0n) throw new CgnError('bad_request', 'a credit must be a positive whole number of token base units');
}

export interface UsageRow {
  account: string;
  dservice: string;
  tier: string;
  endUser: string | null;
  receivedAt: number;
  /** The billing cycle the record belongs to (only `usageOverTime` by cycle reads it). */
  cycle?: number;
  cpuUs: number;
  bytesIn: number;
  bytesOut: number;
  priceMicros: bigint;
  tokens: bigint;
}

/** UTC day of an epoch-ms time, `YYYY-MM-DD`. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export class UsageAccumulator {
  private readonly lines_ = new Map<string, UsageLine>();
  constructor(private readonly group: UsageGroup) {}

  push(r: UsageRow): void {
    const key =
      this.group === 'dservice' ? r.dservice
      : this.group === 'endUser' ? (r.endUser ?? '-')
      : this.group === 'day' ? utcDay(r.receivedAt)
      : this.group === 'tier' ? r.tier
      : r.account;
    let l = this.lines_.get(key);
    if (l === undefined) this.lines_.set(key, (l = { key, records: 0, cpuUs: 0, bytesIn: 0, bytesOut: 0, priceMicros: 0n, tokens: 0n }));
    l.records++;
    l.cpuUs += r.cpuUs;
    l.bytesIn += r.bytesIn;
    l.bytesOut += r.bytesOut;
    l.priceMicros += r.priceMicros;
    l.tokens += r.tokens;
  }

  lines(): UsageLine[] {
    return [...this.lines_.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}

/** `usageOverTime` in one pass over the rows: a `UsageAccumulator` per bucket. */
export class BucketUsageAccumulator {
  private readonly buckets = new Map<string, UsageAccumulator>();
  constructor(private readonly bucket: UsageBucket, private readonly group: UsageGroup) {}

  push(r: UsageRow): void {
    const b = this.bucket === 'day' ? utcDay(r.receivedAt) : String(r.cycle ?? 1);
    let acc = this.buckets.get(b);
    if (acc === undefined) this.buckets.set(b, (acc = new UsageAccumulator(this.group)));
    acc.push(r);
  }

  lines(): UsageBucketLine[] {
    return sortBucketLines(this.bucket, [...this.buckets.entries()].flatMap(([bucket, acc]) => acc.lines().map((l) => ({ bucket, ...l }))));
  }
}

/** By bucket (days as text, cycles by number), then key (code-unit order): the same in every store. */
export function sortBucketLines(bucket: UsageBucket, lines: UsageBucketLine[]): UsageBucketLine[] {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return lines.sort((a, b) => (bucket === 'cycle' ? Number(a.bucket) - Number(b.bucket) : cmp(a.bucket, b.bucket)) || cmp(a.key, b.key));
}

/** Sorts activity lines by subject, then DService (code-unit order, the same in every store). */
export function sortActivity<T extends { subject: string; dservice: string }>(lines: T[]): T[] {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return lines.sort((a, b) => cmp(a.subject, b.subject) || cmp(a.dservice, b.dservice));
}
