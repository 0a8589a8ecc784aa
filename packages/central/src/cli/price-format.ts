/** How `cgn dservice` reads a tier's price flag and shows a DService's prices (all in µUSD). */
import { UsageError } from './common.js';

export interface PriceScheduleMicros {
  perRequestMicros: number;
  perCpuSecondMicros: number;
  perMbMicros: number;
}

export interface PriceMicros extends PriceScheduleMicros {
  tiers?: Partial<Record<string, PriceScheduleMicros>>;
}

const TIERS = ['open', 'attested', 'dedicated'];

/** `TIER=REQUEST/CPU_SECOND/MB` (µUSD each), e.g. `attested=200/2000/20`. */
export function parseTierPrice(v: string): [string, PriceScheduleMicros] {
  const m = /^([a-z]+)=(\d+)\/(\d+)\/(\d+)$/.exec(v);
  if (m === null || !TIERS.includes(m[1]!)) {
    throw new UsageError(`--price-tier "${v}" is not TIER=REQUEST/CPU_SECOND/MB in whole µUSD, with TIER one of ${TIERS.join(', ')} (e.g. attested=200/2000/20)`);
  }
  const [req, cpu, mb] = [m[2], m[3], m[4]].map((x) => Number(x));
  for (const n of [req, cpu, mb]) if (!Number.isSafeInteger(n)) throw new UsageError(`--price-tier "${v}": a price is too large`);
  return [m[1]!, { perRequestMicros: req!, perCpuSecondMicros: cpu!, perMbMicros: mb! }];
}

const one = (s: PriceScheduleMicros): string => `${s.perRequestMicros}/req ${s.perCpuSecondMicros}/cpu-s ${s.perMbMicros}/MB`;

/** One cell of `cgn dservice list`: the base schedule, each tier's that differs, or "node default". */
export function formatPrice(p: PriceMicros | null | undefined): string {
  if (p === null || p === undefined) return 'node default';
  const tiers = Object.entries(p.tiers ?? {}).filter((e): e is [string, PriceScheduleMicros] => e[1] !== undefined);
  return [one(p), ...tiers.map(([t, s]) => `${t}: ${one(s)}`)].join('; ');
}
