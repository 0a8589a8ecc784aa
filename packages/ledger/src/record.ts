/**
 * The microtransaction: one record per completed work unit, written before the response leaves
 * the node (ARCHITECTURE.md, request path step 6). Times are integer microseconds, sizes integer
 * bytes, so that billing never sees a float.
 *
 * Pricing (price, fee split among beneficiaries) is the optional `pricing` field; the stores
 * keep it in nullable columns added by schema migration 2 and write new rows in record format 2
 * (see `chain.ts`), so rows written before that (format 1) still verify.
 */
import { CgnError, TIERS, type Tier } from '@cgn/protocol';
import { MAX_PRICE_MICROS } from './pricing/price.js';
import { BENEFICIARIES, splitProblem, type SplitBps, type SplitParts } from './pricing/split.js';

/**
 * What the node decided a work unit costs (computed with `priceOf` before `record()`), and who
 * shares the payment. The ledger converts the price to tokens at the open billing cycle's rate
 * and splits the tokens by `split` inside the write transaction (see `Charge`).
 */
export interface Pricing {
  /** Price in fiat micro-units (`priceOf(schedule, usage)`). */
  priceMicros: bigint;
  /** The agreement's basis points (sum 10,000). */
  split: SplitBps;
  /** Beneficiary ids (the miner is the record's `miner`): the DService developer, the node operator, the charity. */
  developer: string;
  operator: string;
  charity: string;
}

/**
 * What the ledger charged for a record, fixed inside the write transaction and covered by the
 * hash chain: the cycle the record belongs to, its price in tokens at that cycle's rate (rounded
 * down) and the token split (largest remainder; the parts sum to `tokens`).
 */
export interface Charge {
  cycle: number;
  tokens: bigint;
  parts: SplitParts;
}

export interface Microtransaction {
  /** The work id the node gave the request. Unique in the ledger: a second record of it is ignored. */
  workId: string;
  /** The paying account. */
  account: string;
  /** The account's end user the work was done for, when the DApp said so. */
  endUser: string | null;
  /** DService name. */
  dservice: string;
  tier: Tier;
  /** Id of the miner that produced the accepted result (hex of its public key). */
  miner: string;
  /** Id of the node that brokered the work; each node has its own hash chain. */
  node: string;
  /** When the node received the request, epoch milliseconds. */
  receivedAt: number;
  /** Time queued at the node, µs. */
  queueUs: number;
  /** Execution wall time reported by the miner, µs. */
  execUs: number;
  /** CPU time billed, µs: what the miner reported, or less when that was above the bound the node can vouch for. */
  cpuUs: number;
  /**
   * CPU time the miner reported, µs, kept when the node billed less (`cpuUs` is then the bound);
   * absent when the report was billed as it was. Such records are written in format 3.
   */
  reportedCpuUs?: number | undefined;
  bytesIn: number;
  bytesOut: number;
  /** HTTP status of the DService's response. */
  status: number;
  /** Hex hash of the result body, or null when there was none. */
  resultHash: string | null;
  /** How many times the work was assigned (1 when the first miner finished it). */
  attempts: number;
  /** Price and split; absent for unpriced work (such records are metered but bill nothing). */
  pricing?: Pricing | undefined;
}

const STRINGS = ['workId', 'account', 'dservice', 'miner', 'node'] as const;
const COUNTS = ['receivedAt', 'queueUs', 'execUs', 'cpuUs', 'bytesIn', 'bytesOut', 'attempts'] as const;
const MAX_ID = 256;
const HEX = /^[0-9a-fA-F]*$/;

/** Stores keep text as UTF-8: a lone surrogate would not read back as written (and break the chain). */
// ... and PostgreSQL text cannot hold U+0000, so no store accepts it.
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed() && !s.includes('\u0000');

/**
 * Why `tx` is not a well-formed microtransaction, or null when it is. Cheap (no allocation on
 * the good path): the writer calls it on every record.
 */
export function microtransactionProblem(tx: Microtransaction): string | null {
  if (tx === null || typeof tx !== 'object') return 'must be an object';
  // The good path reads each field once by name (no loop over field names, no keyed loads);
  // any doubt goes to the field-by-field checks below, which say what is wrong.
  if (
    goodId(tx.workId) && goodId(tx.account) && goodId(tx.dservice) && goodId(tx.miner) && goodId(tx.node) &&
    count(tx.receivedAt) && count(tx.queueUs) && count(tx.execUs) && count(tx.cpuUs) && count(tx.bytesIn) && count(tx.bytesOut) && count(tx.attempts) &&
    Number.isInteger(tx.status) && tx.status >= 100 && tx.status <= 599 && TIERS.includes(tx.tier) &&
    (tx.endUser === null || (typeof tx.endUser === 'string' && tx.endUser.length <= MAX_ID && wellFormed(tx.endUser))) &&
    tx.reportedCpuUs === undefined &&
    (tx.resultHash === null || (typeof tx.resultHash === 'string' && tx.resultHash.length <= 128 && HEX.test(tx.resultHash)))
  ) {
    return tx.pricing === undefined ? null : pricingProblem(tx.pricing);
  }
  for (const f of STRINGS) {
    const v = tx[f];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID) return `${f} must be a non-empty string of at most ${MAX_ID} characters`;
    if (!wellFormed(v)) return `${f} must be well-formed Unicode (no lone surrogates, no NUL)`;
  }
  for (const f of COUNTS) {
    const v = tx[f];
    if (!Number.isSafeInteger(v) || v < 0) return `${f} must be a non-negative integer`;
  }
  if (!Number.isInteger(tx.status) || tx.status < 100 || tx.status > 599) return 'status must be an HTTP status (100-599)';
  if (!TIERS.includes(tx.tier)) return `tier must be one of ${TIERS.join(', ')}`;
  if (tx.endUser !== null && (typeof tx.endUser !== 'string' || tx.endUser.length > MAX_ID || !wellFormed(tx.endUser))) {
    return `endUser must be null or a well-formed string of at most ${MAX_ID} characters`;
  }
  if (tx.reportedCpuUs !== undefined && (!Number.isSafeInteger(tx.reportedCpuUs) || tx.reportedCpuUs <= tx.cpuUs)) {
    return 'reportedCpuUs must be absent or an integer above cpuUs (the CPU time reported when less was billed)';
  }
  if (tx.resultHash !== null && (typeof tx.resultHash !== 'string' || tx.resultHash.length > 128 || !HEX.test(tx.resultHash))) return 'resultHash must be null or a hex string';
  if (tx.pricing !== undefined) return pricingProblem(tx.pricing);
  return null;
}

const goodId = (v: unknown): boolean => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID && wellFormed(v);
const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/** Why `p` is not valid pricing, or null. */
export function pricingProblem(p: Pricing): string | null {
  if (p === null || typeof p !== 'object') return 'pricing must be an object';
  if (
    typeof p.priceMicros === 'bigint' && p.priceMicros >= 0n && p.priceMicros <= MAX_PRICE_MICROS && splitProblem(p.split) === null &&
    goodId(p.developer) && goodId(p.operator) && goodId(p.charity)
  ) {
    return null;
  }
  if (typeof p.priceMicros !== 'bigint' || p.priceMicros < 0n || p.priceMicros > MAX_PRICE_MICROS) return 'pricing.priceMicros must be a bigint from 0 to 2^63-1';
  const split = splitProblem(p.split);
  if (split !== null) return `pricing.split: ${split}`;
  for (const f of ['developer', 'operator', 'charity'] as const) {
    const v = p[f];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID || !wellFormed(v)) return `pricing.${f} must be a non-empty well-formed string of at most ${MAX_ID} characters`;
  }
  return null;
}

/** A copy of `tx` that shares nothing mutable with it. */
export function copyMicrotransaction(tx: Microtransaction): Microtransaction {
  const out: Microtransaction = {
    workId: tx.workId,
    account: tx.account,
    endUser: tx.endUser,
    dservice: tx.dservice,
    tier: tx.tier,
    miner: tx.miner,
    node: tx.node,
    receivedAt: tx.receivedAt,
    queueUs: tx.queueUs,
    execUs: tx.execUs,
    cpuUs: tx.cpuUs,
    bytesIn: tx.bytesIn,
    bytesOut: tx.bytesOut,
    status: tx.status,
    resultHash: tx.resultHash,
    attempts: tx.attempts,
  };
  if (tx.reportedCpuUs !== undefined) out.reportedCpuUs = tx.reportedCpuUs;
  const p = tx.pricing;
  if (p !== undefined) {
    out.pricing = {
      priceMicros: p.priceMicros,
      // A frozen agreement (e.g. DEFAULT_SPLIT, or one the node froze) cannot change under us: share it.
      split: Object.isFrozen(p.split) ? p.split : { miner: p.split.miner, developer: p.split.developer, operator: p.split.operator, charity: p.split.charity },
      developer: p.developer,
      operator: p.operator,
      charity: p.charity,
    };
  }
  return out;
}

const frozenSplitText = new WeakMap<object, string>();

/** "m/d/o/c" text form of basis points or parts, as stored. */
export function encodeSplit(v: Readonly<Record<(typeof BENEFICIARIES)[number], number | bigint>>): string {
  if (Object.isFrozen(v)) {
    let t = frozenSplitText.get(v);
    if (t === undefined) frozenSplitText.set(v, (t = `${v.miner}/${v.developer}/${v.operator}/${v.charity}`));
    return t;
  }
  return `${v.miner}/${v.developer}/${v.operator}/${v.charity}`;
}
export function decodeBps(s: string): SplitBps {
  const [miner, developer, operator, charity] = s.split('/').map(Number);
  return { miner: miner ?? NaN, developer: developer ?? NaN, operator: operator ?? NaN, charity: charity ?? NaN };
}
export function decodeParts(s: string): SplitParts {
  const [miner = '0', developer = '0', operator = '0', charity = '0'] = s.split('/');
  return { miner: BigInt(miner), developer: BigInt(developer), operator: BigInt(operator), charity: BigInt(charity) };
}

/** Throws a `bad_request` CgnError naming the work and the field when `tx` is malformed. */
export function assertMicrotransaction(tx: Microtransaction): void {
  const problem = microtransactionProblem(tx);
  if (problem !== null) {
    const workId = typeof tx?.workId === 'string' ? tx.workId : null;
    throw new CgnError('bad_request', `invalid microtransaction${workId === null ? '' : ` ${workId}`}: ${problem}`, { details: { workId } });
  }
}

/**
 * Batches the `GroupCommitWriter` built from records it validated and copied itself: a store
 * need not validate them again. (Module-private in spirit: only the writer adds to it.)
 */
export const VALIDATED_BATCHES: WeakSet<readonly Microtransaction[]> = new WeakSet();
