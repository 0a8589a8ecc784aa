/**
 * Usage over time as chart series: per bucket (a day or a billing cycle) the ledger's usage lines
 * grouped by DService or end user, turned into one series per key. Only the `top` keys with the
 * highest total price get a series of their own; the others are summed into `OTHER`, so a DApp
 * with 100,000 end users still draws a bounded chart and every bucket still adds up to its total.
 *
 * Pure: the ledger queries are the caller's (see `pages.ts`).
 */
import type { UsageLine } from '@cgn/ledger';

/** The key of the series that sums every key outside the top ones. */
export const OTHER = '(others)';

export interface Bucket {
  /** `YYYY-MM-DD` for days, `cycle N` for cycles. */
  label: string;
  /** Start of the bucket, epoch ms (for a chart's x axis). */
  start: number;
  lines: readonly UsageLine[];
}

export interface Series {
  key: string;
  records: number[];
  cpuUs: number[];
  /** µUSD, as decimal strings (JSON has no bigint). */
  priceMicros: string[];
  /** CGN base units, as decimal strings. */
  tokens: string[];
}

export interface SeriesSet {
  buckets: { label: string; start: number }[];
  series: Series[];
  /** Per bucket, the sum over all keys (also those folded into `OTHER`). */
  total: { records: number[]; priceMicros: string[]; tokens: string[] };
  /** How many distinct keys the window holds. */
  keys: number;
}

interface Acc { records: number; cpuUs: number; priceMicros: bigint; tokens: bigint }
const zero = (): Acc => ({ records: 0, cpuUs: 0, priceMicros: 0n, tokens: 0n });
const add = (a: Acc, l: Pick<UsageLine, 'records' | 'cpuUs' | 'priceMicros' | 'tokens'>): void => {
  a.records += l.records;
  a.cpuUs += l.cpuUs;
  a.priceMicros += l.priceMicros;
  a.tokens += l.tokens;
};

/** Keys ordered by total price, then records, then name: the first `top` get a series. */
export function rankKeys(buckets: readonly Bucket[]): string[] {
  const totals = new Map<string, Acc>();
  for (const b of buckets) {
    for (const l of b.lines) {
      let a = totals.get(l.key);
      if (a === undefined) totals.set(l.key, (a = zero()));
      add(a, l);
    }
  }
  return [...totals.entries()]
    .sort(([ka, a], [kb, b]) => (a.priceMicros !== b.priceMicros ? (a.priceMicros > b.priceMicros ? -1 : 1) : a.records !== b.records ? b.records - a.records : ka < kb ? -1 : ka > kb ? 1 : 0))
    .map(([k]) => k);
}

export function buildSeries(buckets: readonly Bucket[], top: number): SeriesSet {
  const ranked = rankKeys(buckets);
  const own = ranked.slice(0, Math.max(0, top));
  const folded = ranked.length > own.length;
  // A real key named like OTHER is folded with the others rather than shown twice.
  const keys = folded || own.includes(OTHER) ? [...own.filter((k) => k !== OTHER), OTHER] : own;
  const index = new Map(keys.map((k, i) => [k, i]));
  const cells: Acc[][] = keys.map(() => buckets.map(zero));
  const totals: Acc[] = buckets.map(zero);
  buckets.forEach((b, j) => {
    for (const l of b.lines) {
      add(cells[index.get(l.key) ?? index.get(OTHER)!]![j]!, l);
      add(totals[j]!, l);
    }
  });
  return {
    buckets: buckets.map((b) => ({ label: b.label, start: b.start })),
    series: keys.map((key, i) => ({
      key,
      records: cells[i]!.map((c) => c.records),
      cpuUs: cells[i]!.map((c) => c.cpuUs),
      priceMicros: cells[i]!.map((c) => c.priceMicros.toString()),
      tokens: cells[i]!.map((c) => c.tokens.toString()),
    })),
    total: {
      records: totals.map((t) => t.records),
      priceMicros: totals.map((t) => t.priceMicros.toString()),
      tokens: totals.map((t) => t.tokens.toString()),
    },
    keys: ranked.length,
  };
}

export const DAY_MS = 86_400_000;

/** UTC day starts from `from` (inclusive) to `to` (exclusive), both day starts. */
export function dayStarts(from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = from; t < to; t += DAY_MS) out.push(t);
  return out;
}

/** The UTC midnight at or before `t`. */
export const dayStart = (t: number): number => Math.floor(t / DAY_MS) * DAY_MS;

export const dayLabel = (t: number): string => new Date(t).toISOString().slice(0, 10);
