/**
 * Prices: what one completed work unit costs, in fiat micro-units (1 unit = 10^-6 of the fiat
 * currency, e.g. 1 µUSD), as a `bigint`. Integer arithmetic only; no float ever touches money.
 *
 * A DService developer sets, per DService and tier, a `PriceSchedule`:
 *
 *     price = perRequest + ceil((perCpuSecond * cpuUs + perMb * (bytesIn + bytesOut)) / 1_000_000)
 *
 * (cpuUs is CPU time in µs, so `perCpuSecond * cpuUs / 10^6` is the CPU charge; a MB is 10^6
 * bytes, so `perMb * bytes / 10^6` is the transfer charge.) The metered part is summed exactly
 * first and rounded **up once** to a whole micro-unit: never more than one micro-unit above the
 * exact amount, and identical usage always costs the same.
 *
 * Token amounts: a billing cycle has a conversion rate `TokenRate = num / den` token base units
 * (e.g. wei of an 18-decimal token) per fiat micro-unit. `toTokens` rounds **down**
 * (floor): the payer is never charged a fraction of a unit more than the fiat price;
 * `toTokensCeil` (rounding up) is for reservations, which must cover the charge.
 */
import type { Tier } from '@cgn/protocol';

/** Fiat micro-units per request, per CPU-second and per MB (10^6 bytes) of input + output. */
export interface PriceSchedule {
  perRequest: bigint;
  perCpuSecond: bigint;
  perMb: bigint;
}

/** What a work unit used, as the ledger records it (integers). */
export interface PriceUsage {
  /** CPU time reported by the miner, µs. */
  cpuUs: number;
  bytesIn: number;
  bytesOut: number;
}

/** Token base units per fiat micro-unit, as the exact fraction `num / den`. */
export interface TokenRate {
  num: bigint;
  den: bigint;
}

/** Largest price a record may carry (fits a signed 64-bit column). */
export const MAX_PRICE_MICROS = (1n << 63n) - 1n;
const MILLION = 1_000_000n;

/** Why `s` is not a valid price schedule, or null. */
export function priceScheduleProblem(s: PriceSchedule): string | null {
  if (s === null || typeof s !== 'object') return 'must be an object';
  for (const k of ['perRequest', 'perCpuSecond', 'perMb'] as const) {
    const v = s[k];
    if (typeof v !== 'bigint' || v < 0n || v > MAX_PRICE_MICROS) return `${k} must be a bigint from 0 to 2^63-1 (fiat micro-units)`;
  }
  return null;
}

function count(name: string, v: number): bigint {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative safe integer, not ${String(v)}`);
  return BigInt(v);
}

/** The price of one work unit in fiat micro-units (see the module comment for the formula and rounding). */
export function priceOf(schedule: PriceSchedule, usage: PriceUsage): bigint {
  const problem = priceScheduleProblem(schedule);
  if (problem !== null) throw new RangeError(`price schedule: ${problem}`);
  const cpu = count('cpuUs', usage.cpuUs);
  const bytes = count('bytesIn', usage.bytesIn) + count('bytesOut', usage.bytesOut);
  const metered = schedule.perCpuSecond * cpu + schedule.perMb * bytes;
  const price = schedule.perRequest + ceilDiv(metered, MILLION);
  if (price > MAX_PRICE_MICROS) throw new RangeError(`price ${price} exceeds the largest recordable price`);
  return price;
}

/**
 * The most a request can cost if it uses at most `maxCpuUs` CPU time and `maxBytesOut` output:
 * what the node reserves before running it (`BalanceGuard.reserve`).
 */
export function maxPriceOf(schedule: PriceSchedule, bytesIn: number, maxCpuUs: number, maxBytesOut: number): bigint {
  return priceOf(schedule, { cpuUs: maxCpuUs, bytesIn, bytesOut: maxBytesOut });
}

export function tokenRateProblem(rate: TokenRate): string | null {
  if (rate === null || typeof rate !== 'object' || typeof rate.num !== 'bigint' || typeof rate.den !== 'bigint') return 'must be { num: bigint, den: bigint }';
  if (rate.num < 0n) return 'num must be >= 0';
  if (rate.den <= 0n) return 'den must be > 0';
  return null;
}

function checkRate(rate: TokenRate): void {
  const problem = tokenRateProblem(rate);
  if (problem !== null) throw new RangeError(`token rate: ${problem}`);
}

/** Fiat micro-units -> token base units at `rate`, rounded down. */
export function toTokens(priceMicros: bigint, rate: TokenRate): bigint {
  checkRate(rate);
  if (priceMicros < 0n) throw new RangeError('price must be >= 0');
  return (priceMicros * rate.num) / rate.den;
}

/** Fiat micro-units -> token base units at `rate`, rounded up (for reservations). */
export function toTokensCeil(priceMicros: bigint, rate: TokenRate): bigint {
  checkRate(rate);
  if (priceMicros < 0n) throw new RangeError('price must be >= 0');
  return ceilDiv(priceMicros * rate.num, rate.den);
}

/** ceil(a / b) for a >= 0, b > 0. */
export function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/** Prices per DService and tier, with an optional fallback schedule for DServices without one. */
export class PriceBook {
  private readonly prices = new Map<string, PriceSchedule>();
  constructor(private fallback: PriceSchedule | null = null) {
    if (fallback !== null) this.setDefault(fallback);
  }

  set(dservice: string, tier: Tier, schedule: PriceSchedule): void {
    const problem = priceScheduleProblem(schedule);
    if (problem !== null) throw new RangeError(`price of ${dservice}/${tier}: ${problem}`);
    this.prices.set(`${tier}\u0000${dservice}`, { ...schedule });
  }

  setDefault(schedule: PriceSchedule): void {
    const problem = priceScheduleProblem(schedule);
    if (problem !== null) throw new RangeError(`default price: ${problem}`);
    this.fallback = { ...schedule };
  }

  /** The schedule for a DService and tier, else the default, else undefined (no price set: refuse or serve free, the node's call). */
  get(dservice: string, tier: Tier): PriceSchedule | undefined {
    return this.prices.get(`${tier}\u0000${dservice}`) ?? this.fallback ?? undefined;
  }
}
