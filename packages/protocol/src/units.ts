/**
 * The two currencies on screen, named once:
 *
 * - **Prices** are fiat micro-units of US dollars: 1 µUSD = 0.000001 USD. A DService's price
 *   schedule, a record's price and the `cgn-cost` header are in µUSD (spelled `uUSD` in headers,
 *   which are ASCII). `cgn-cost` is on every answer the DService gave (any status: its 4xx and
 *   5xx are work done, and charged); the node's own errors (problem+json: 401, 402, 403, 404,
 *   408, 413, 414, 429, 431, 502, 503, 504) carry none and are free.
 * - **Tokens** are CGN, an ERC-20 with 18 decimals: 1 CGN = 10^18 base units. The ledger charges
 *   and pays in base units; the open cycle's rate converts µUSD to base units.
 */
export const PRICE_UNIT = 'µUSD';
/** The price unit in HTTP headers. */
export const PRICE_UNIT_ASCII = 'uUSD';
export const CGN_DECIMALS = 18;
const ONE_CGN = 10n ** BigInt(CGN_DECIMALS);

/** µUSD as dollars with 6 decimals: 2319n -> "0.002319". */
export function microUsdAsUsd(m: bigint): string {
  const neg = m < 0n;
  const a = neg ? -m : m;
  return `${neg ? '-' : ''}${a / 1_000_000n}.${(a % 1_000_000n).toString().padStart(6, '0')}`;
}

/** A price for people: "2319 µUSD (0.002319 USD)". */
export function formatPrice(m: bigint): string {
  return `${m} ${PRICE_UNIT} (${microUsdAsUsd(m)} USD)`;
}

/** Base units as CGN, trailing zeros dropped: 10^18 -> "1", 2319 -> "0.000000000000002319". */
export function baseUnitsAsCgn(base: bigint): string {
  const neg = base < 0n;
  const a = neg ? -base : base;
  const frac = (a % ONE_CGN).toString().padStart(CGN_DECIMALS, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${a / ONE_CGN}${frac === '' ? '' : `.${frac}`}`;
}

/** A token amount for people: "1.5 CGN (1500000000000000000 base units)". */
export function formatCgn(base: bigint): string {
  return `${baseUnitsAsCgn(base)} CGN (${base} base units)`;
}
