/**
 * `cgn settle`'s rate flags: where each new cycle's token rate comes from. `--rate-file FILE` or
 * `--rate-url URL` name a rate source (read at every close; format in @cgn/ledger rate-source.ts);
 * `--rate NUM/DEN` is a fixed rate that overrides any source (recorded as "manual").
 */
import { parseRateText, readRateSource, type SourcedRate } from '@cgn/ledger';
import { resolve } from 'node:path';
import { SettleUsageError } from './open.js';

export interface RateFlags {
  rate?: string | undefined;
  rateFile?: string | undefined;
  rateUrl?: string | undefined;
}

/** The settler's rate option from the flags; undefined: no flag, the rate carries over. */
export function rateFromFlags(f: RateFlags, now: () => number = Date.now): (() => Promise<SourcedRate>) | undefined {
  if (f.rateFile !== undefined && f.rateUrl !== undefined) throw new SettleUsageError('give one rate source: --rate-file FILE or --rate-url URL, not both');
  if (f.rate !== undefined) {
    const rate = parseRateText(f.rate);
    if (rate === null) throw new SettleUsageError(`--rate must be NUM or NUM/DEN (token base units per µUSD, whole numbers, DEN > 0), not "${f.rate}"`);
    return async () => ({ rate, source: 'manual', fetchedAt: now() });
  }
  if (f.rateFile !== undefined) {
    const file = resolve(f.rateFile);
    return () => readRateSource({ file }, { now });
  }
  if (f.rateUrl !== undefined) {
    if (!/^https?:\/\//.test(f.rateUrl)) throw new SettleUsageError(`--rate-url must be an http(s) URL, not "${f.rateUrl}"`);
    const url = f.rateUrl;
    return () => readRateSource({ url }, { now });
  }
  return undefined;
}
