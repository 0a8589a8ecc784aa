/**
 * The microtransaction: one record per completed work unit, written before the response leaves
 * the node (ARCHITECTURE.md, request path step 6). Times are integer microseconds, sizes integer
 * bytes, so that billing never sees a float.
 *
 * Pricing (price, fee split among beneficiaries) arrives in a later issue as new fields; the
 * stores add them as nullable columns through a migration and a new record format version
 * (see `chain.ts`), so rows written before that still verify.
 */
import { CgnError, TIERS, type Tier } from '@cgn/protocol';

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
  /** CPU time reported by the miner, µs. */
  cpuUs: number;
  bytesIn: number;
  bytesOut: number;
  /** HTTP status of the DService's response. */
  status: number;
  /** Hex hash of the result body, or null when there was none. */
  resultHash: string | null;
  /** How many times the work was assigned (1 when the first miner finished it). */
  attempts: number;
}

const STRINGS = ['workId', 'account', 'dservice', 'miner', 'node'] as const;
const COUNTS = ['receivedAt', 'queueUs', 'execUs', 'cpuUs', 'bytesIn', 'bytesOut', 'attempts'] as const;
const MAX_ID = 256;
const HEX = /^[0-9a-fA-F]*$/;

/** Stores keep text as UTF-8: a lone surrogate would not read back as written (and break the chain). */
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * Why `tx` is not a well-formed microtransaction, or null when it is. Cheap (no allocation on
 * the good path): the writer calls it on every record.
 */
export function microtransactionProblem(tx: Microtransaction): string | null {
  if (tx === null || typeof tx !== 'object') return 'must be an object';
  for (const f of STRINGS) {
    const v = tx[f];
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID) return `${f} must be a non-empty string of at most ${MAX_ID} characters`;
    if (!wellFormed(v)) return `${f} must be well-formed Unicode (no lone surrogates)`;
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
  if (tx.resultHash !== null && (typeof tx.resultHash !== 'string' || tx.resultHash.length > 128 || !HEX.test(tx.resultHash))) return 'resultHash must be null or a hex string';
  return null;
}

/** Throws a `bad_request` CgnError naming the work and the field when `tx` is malformed. */
export function assertMicrotransaction(tx: Microtransaction): void {
  const problem = microtransactionProblem(tx);
  if (problem !== null) {
    const workId = typeof tx?.workId === 'string' ? tx.workId : null;
    throw new CgnError('bad_request', `invalid microtransaction${workId === null ? '' : ` ${workId}`}: ${problem}`, { details: { workId } });
  }
}
