/**
 * The per-node hash chain that makes the append-only ledger tamper-evident.
 *
 * Each node's records form one chain, in append order:
 *
 *     hash = sha256(utf8(hex(prevHash) + canonicalEncoding(record)))
 *
 * where `prevHash` is the hash of the node's previous record (32 bytes), or 32 zero bytes for
 * its first, and `hex` is lowercase hexadecimal (64 characters).
 * Every store keeps `prevHash` and `hash` on the row and the head (last hash) per node, and uses
 * these functions, so a chain written by one store verifies in another.
 *
 * The canonical encoding is a JSON array of the fields in a fixed order, led by a format tag.
 * Format 2 added the billing cycle, pricing and charge; rows keep the format they were written
 * with, so older (format 1) rows still verify.
 */
import * as crypto from 'node:crypto';
import { encodeSplit, type Charge, type Microtransaction } from './record.js';

/**
 * The record format (encoding version) new rows are written with.
 * * 1: the metering fields only (rows written before schema migration 2).
 * * 2: format 1's fields, then the billing cycle, the pricing (price, split bps, developer,
 *   operator, charity; null when unpriced) and the charge (tokens, token parts; null when
 *   unpriced). Money is encoded as decimal strings.
 * * 3: format 2's fields, then the CPU time the miner reported (µs) when the node billed less
 *   (`reportedCpuUs`: the report was above the bound the node can vouch for). Written only for
 *   such records; every other record keeps format 2.
 */
export const RECORD_FORMAT = 2;
export const RECORD_FORMATS: readonly number[] = [1, 2, 3];

/** The format a new row of `tx` is written in: 3 when it keeps a clipped report, else `RECORD_FORMAT`. */
export function recordFormatOf(tx: Microtransaction): number {
  return tx.reportedCpuUs === undefined ? RECORD_FORMAT : 3;
}

/** What the store adds to a record (format 2 and later): its cycle and, when priced, its charge. */
export interface RowBilling {
  cycle: number;
  charge: Charge | null;
}

/** `prevHash` of a node's first record. */
export const GENESIS_HASH: Buffer = Buffer.alloc(32);

/** The exact bytes (as a string, hashed as UTF-8) that a record's hash covers. */
/** Text forms of a format-2 row's billing fields, computed once per row by the stores. */
export interface BillingText {
  /** [priceMicros, "m/d/o/c" bps, developer, operator, charity] or null when unpriced */
  pricing: [string, string, string, string, string] | null;
  /** [tokens, "m/d/o/c" parts] or null when unpriced */
  charge: [string, string] | null;
}

export function billingText(tx: Microtransaction, billing: RowBilling): BillingText {
  const p = tx.pricing;
  const c = billing.charge;
  return {
    pricing: p === undefined ? null : [p.priceMicros.toString(), encodeSplit(p.split), p.developer, p.operator, p.charity],
    charge: c === null ? null : [c.tokens.toString(), encodeSplit(c.parts)],
  };
}

/** The format-2 canonical encoding from precomputed billing text (what `canonicalEncoding(tx, 2, billing)` returns). */
export function canonicalEncodingV2(tx: Microtransaction, cycle: number, text: BillingText): string {
  const p = text.pricing;
  const c = text.charge;
  return p === null
    ? encodeV2(tx, cycle, null, '', '', '', '', null, '')
    : encodeV2(tx, cycle, p[0], p[1], p[2], p[3], p[4], c === null ? null : c[0], c === null ? '' : c[1]);
}

// The canonical encoding is `JSON.stringify` of an array; it is built here by concatenation
// (about twice as fast, no array per record) and yields exactly the same string: numbers print
// as `JSON.stringify` prints them (finite ones as `String(n)`), strings are quoted as is unless
// they hold a character JSON escapes (quote, backslash, control, surrogate), which go through
// `JSON.stringify`. Any other value (never in a validated record) takes the generic path.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}
function strOrNull(s: string | null): string {
  return s === null ? 'null' : str(s);
}

/**
 * The format-2 canonical encoding from the billing fields' text forms (`price` null when
 * unpriced; `tokens` null when there is no charge). Same string as `canonicalEncodingV2`.
 */
export function encodeV2(
  tx: Microtransaction, cycle: number,
  price: string | null, bps: string, developer: string, operator: string, charity: string,
  tokens: string | null, parts: string,
): string {
  if (tx.reportedCpuUs !== undefined) {
    // Format 3: format 2's array with its tag changed and the reported CPU time appended.
    return JSON.stringify([
      'cgn.mtx.3',
      tx.workId, tx.account, tx.endUser, tx.dservice, tx.tier, tx.miner, tx.node, tx.receivedAt, tx.queueUs, tx.execUs, tx.cpuUs,
      tx.bytesIn, tx.bytesOut, tx.status, tx.resultHash, tx.attempts,
      cycle, price === null ? null : [price, bps, developer, operator, charity], tokens === null ? null : [tokens, parts],
      tx.reportedCpuUs,
    ]);
  }
  if (!plainRecord(tx) || typeof cycle !== 'number' || !Number.isFinite(cycle) || !plainStrings(price, bps, developer, operator, charity, tokens, parts)) {
    return JSON.stringify([
      'cgn.mtx.2',
      tx.workId, tx.account, tx.endUser, tx.dservice, tx.tier, tx.miner, tx.node, tx.receivedAt, tx.queueUs, tx.execUs, tx.cpuUs,
      tx.bytesIn, tx.bytesOut, tx.status, tx.resultHash, tx.attempts,
      cycle, price === null ? null : [price, bps, developer, operator, charity], tokens === null ? null : [tokens, parts],
    ]);
  }
  return (
    `["cgn.mtx.2",${str(tx.workId)},${str(tx.account)},${strOrNull(tx.endUser)},${str(tx.dservice)},${str(tx.tier)},${str(tx.miner)},${str(tx.node)},` +
    `${tx.receivedAt},${tx.queueUs},${tx.execUs},${tx.cpuUs},${tx.bytesIn},${tx.bytesOut},${tx.status},${strOrNull(tx.resultHash)},${tx.attempts},${cycle},` +
    (price === null ? 'null,' : `[${str(price)},${str(bps)},${str(developer)},${str(operator)},${str(charity)}],`) +
    (tokens === null ? 'null]' : `[${str(tokens)},${str(parts)}]]`)
  );
}

const finite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
/** Every field of `tx` has the type the fast path prints the way JSON does. */
function plainRecord(tx: Microtransaction): boolean {
  return (
    typeof tx.workId === 'string' && typeof tx.account === 'string' && (tx.endUser === null || typeof tx.endUser === 'string') &&
    typeof tx.dservice === 'string' && typeof tx.tier === 'string' && typeof tx.miner === 'string' && typeof tx.node === 'string' &&
    finite(tx.receivedAt) && finite(tx.queueUs) && finite(tx.execUs) && finite(tx.cpuUs) && finite(tx.bytesIn) && finite(tx.bytesOut) &&
    finite(tx.status) && (tx.resultHash === null || typeof tx.resultHash === 'string') && finite(tx.attempts)
  );
}
function plainStrings(price: string | null, bps: string, developer: string, operator: string, charity: string, tokens: string | null, parts: string): boolean {
  return (
    (price === null || (typeof price === 'string' && typeof bps === 'string' && typeof developer === 'string' && typeof operator === 'string' && typeof charity === 'string')) &&
    (tokens === null || (typeof tokens === 'string' && typeof parts === 'string'))
  );
}

/** The exact bytes (as a string, hashed as UTF-8) that a record's hash covers. */
export function canonicalEncoding(tx: Microtransaction, format: number = RECORD_FORMAT, billing: RowBilling | null = null): string {
  if (format === 2 || format === 3) {
    if (billing === null) throw new RangeError(`record format ${format} needs the row's cycle and charge`);
    return canonicalEncodingV2(tx, billing.cycle, billingText(tx, billing));
  }
  if (format !== 1) throw new RangeError(`unknown microtransaction record format ${format}`);
  return JSON.stringify([
    'cgn.mtx.1',
    tx.workId,
    tx.account,
    tx.endUser,
    tx.dservice,
    tx.tier,
    tx.miner,
    tx.node,
    tx.receivedAt,
    tx.queueUs,
    tx.execUs,
    tx.cpuUs,
    tx.bytesIn,
    tx.bytesOut,
    tx.status,
    tx.resultHash,
    tx.attempts,
  ]);
}

// One-shot crypto.hash (Node >= 20.12) costs about half of createHash().update().digest() on a
// record-sized input; both give the same digest.
const sha256: (message: string) => Buffer =
  typeof crypto.hash === 'function'
    ? (message) => crypto.hash('sha256', message, 'buffer')
    : (message) => crypto.createHash('sha256').update(message, 'utf8').digest();

/** Lowercase hex sha256 of `prevHex + encoding`: the chain step on a hex head (stores keep the head's hex, not re-encoding it per record). */
export const chainHashHex: (prevHex: string, encoding: string) => string =
  typeof crypto.hash === 'function'
    ? (prevHex, encoding) => crypto.hash('sha256', prevHex + encoding, 'hex')
    : (prevHex, encoding) => crypto.createHash('sha256').update(prevHex + encoding, 'utf8').digest('hex');

// The chain step without building strings: `hex(prevHash) + encoding` is written as bytes into
// a scratch buffer and hashed from there (no concatenation, no UTF-8 conversion, no garbage per
// record). Only for rows whose text is printable ASCII without quote or backslash and whose
// numbers are non-negative safe integers: then the bytes are exactly the UTF-8 of the string
// `encodeV2` builds (JSON quotes such strings as they are and prints such numbers as their
// decimal digits). Any other row bails out to the string path.
const SCRATCH_SIZE = 16_384;
const scratch = Buffer.allocUnsafeSlow(SCRATCH_SIZE);
let at = 0;
const Q = 34; // "
const COMMA = 44;

/** Writes ASCII `s` as is (false if it is not ASCII). */
function putRaw(s: string): boolean {
  const n = s.length;
  if (at + n > SCRATCH_SIZE) return false;
  const b = scratch;
  let o = at;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7e) return false;
    b[o++] = c;
  }
  at = o;
  return true;
}
function putStr(s: string): boolean {
  const n = s.length;
  if (at + n + 3 > SCRATCH_SIZE) return false;
  const b = scratch;
  let o = at;
  b[o++] = Q;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === Q || c === 92) return false;
    b[o++] = c;
  }
  b[o++] = Q;
  b[o++] = COMMA;
  at = o;
  return true;
}
function putStrOrNull(s: string | null): boolean {
  return s === null ? putRaw('null,') : putStr(s);
}
function putInt(v: number): boolean {
  if (!Number.isSafeInteger(v) || v < 0 || at + 17 > SCRATCH_SIZE) return false;
  const b = scratch;
  const start = at;
  let o = at;
  let x = v;
  while (x > 0x7fffffff) {
    const r = x % 10;
    b[o++] = 48 + r;
    x = (x - r) / 10;
  }
  // int32 from here: integer division by | 0
  do {
    const q = (x / 10) | 0;
    b[o++] = 48 + x - q * 10;
    x = q;
  } while (x > 0);
  for (let i = start, j = o - 1; i < j; i++, j--) {
    const t = b[i]!;
    b[i] = b[j]!;
    b[j] = t;
  }
  b[o++] = COMMA;
  at = o;
  return true;
}
/** Drops the comma after the last element written. */
function unComma(): void {
  at--;
}

/** `scratch.subarray(0, n)`, made once per length (records of one shape have a handful of lengths): no view object per record. */
const views: (Buffer | undefined)[] = [];
function scratchView(n: number): Buffer {
  return (views[n] ??= scratch.subarray(0, n));
}

const hashBytesHex: (bytes: Uint8Array) => string =
  typeof crypto.hash === 'function'
    ? (bytes) => crypto.hash('sha256', bytes, 'hex')
    : (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

/**
 * `chainHashHex(prevHex, encodeV2(tx, cycle, ...))`, the format-2 chain step of the stores'
 * write path: lowercase hex sha256 of the previous hash's hex and the row's canonical encoding.
 */
export function chainStepV2(
  prevHex: string, tx: Microtransaction, cycle: number,
  price: string | null, bps: string, developer: string, operator: string, charity: string,
  tokens: string | null, parts: string,
): string {
  // Format 3 (a clipped report kept) is rare: the general encoding.
  if (tx.reportedCpuUs !== undefined) return chainHashHex(prevHex, encodeV2(tx, cycle, price, bps, developer, operator, charity, tokens, parts));
  at = 0;
  const ok =
    typeof prevHex === 'string' && prevHex.length === 64 && putRaw(prevHex) && putRaw('["cgn.mtx.2",') &&
    typeof tx.workId === 'string' && putStr(tx.workId) && typeof tx.account === 'string' && putStr(tx.account) &&
    (tx.endUser === null || typeof tx.endUser === 'string') && putStrOrNull(tx.endUser) &&
    typeof tx.dservice === 'string' && putStr(tx.dservice) && typeof tx.tier === 'string' && putStr(tx.tier) &&
    typeof tx.miner === 'string' && putStr(tx.miner) && typeof tx.node === 'string' && putStr(tx.node) &&
    putInt(tx.receivedAt) && putInt(tx.queueUs) && putInt(tx.execUs) && putInt(tx.cpuUs) && putInt(tx.bytesIn) && putInt(tx.bytesOut) && putInt(tx.status) &&
    (tx.resultHash === null || typeof tx.resultHash === 'string') && putStrOrNull(tx.resultHash) && putInt(tx.attempts) && putInt(cycle) &&
    (price === null
      ? putRaw('null,')
      : typeof price === 'string' && typeof bps === 'string' && typeof developer === 'string' && typeof operator === 'string' && typeof charity === 'string' &&
        putRaw('[') && putStr(price) && putStr(bps) && putStr(developer) && putStr(operator) && putStr(charity) && (unComma(), putRaw('],'))) &&
    (tokens === null
      ? putRaw('null]')
      : typeof tokens === 'string' && typeof parts === 'string' && putRaw('[') && putStr(tokens) && putStr(parts) && (unComma(), putRaw(']]')));
  if (!ok) return chainHashHex(prevHex, encodeV2(tx, cycle, price, bps, developer, operator, charity, tokens, parts));
  return hashBytesHex(scratchView(at));
}

/** sha256 of `hex(prevHash) + encoding` (the chain step, for stores that built the encoding themselves). */
export function chainHashOf(prevHash: Buffer, encoding: string): Buffer {
  return sha256(prevHash.toString('hex') + encoding);
}

/** The chain hash of `tx` following `prevHash` (32 bytes). */
export function chainHash(prevHash: Uint8Array, tx: Microtransaction, format: number = RECORD_FORMAT, billing: RowBilling | null = null): Buffer {
  const prev = Buffer.isBuffer(prevHash) ? prevHash : Buffer.from(prevHash.buffer, prevHash.byteOffset, prevHash.byteLength);
  return sha256(prev.toString('hex') + canonicalEncoding(tx, format, billing));
}

/** Why a row breaks the chain. */
export type ChainFaultReason =
  /** The row's stored hash is not the hash of its contents: the row was altered. */
  | 'hash_mismatch'
  /** The row's prevHash is not the hash of the node's previous row: a row was removed or inserted before it. */
  | 'broken_link'
  /** The stored chain head does not match the node's last row: rows were removed at the end, or the head was altered. */
  | 'head_mismatch';

export interface ChainFault {
  reason: ChainFaultReason;
  node: string;
  /** Append position of the bad row (for `head_mismatch`, the position the head names). */
  seq: number;
  /** The bad row's work id; null when the row the head names is gone. */
  workId: string | null;
}

export type ChainVerification =
  | { ok: true; /** Rows checked. */ rows: number }
  | { ok: false; /** Rows checked before the first fault. */ rows: number; firstBad: ChainFault };

/** One stored row as the verifier needs it. */
export interface ChainRow {
  seq: number;
  format: number;
  prevHash: Uint8Array;
  hash: Uint8Array;
  record: Microtransaction;
  /** Cycle and charge (format 2 and later; null for format 1). */
  billing: RowBilling | null;
}

/** A stored chain head: the node's last row. */
export interface ChainHead {
  node: string;
  seq: number;
  hash: Uint8Array;
}

/**
 * Checks rows fed in append order, then the stored heads. Store-independent: each adapter
 * streams its rows through one of these.
 */
export class ChainVerifier {
  private readonly last = new Map<string, { seq: number; hash: Uint8Array }>();
  private checked = 0;
  private fault: ChainFault | null = null;

  /** Feeds the next row; returns false once a fault is found (stop feeding). */
  push(row: ChainRow): boolean {
    if (this.fault !== null) return false;
    const node = row.record.node;
    const expected = chainHash(row.prevHash, row.record, row.format, row.billing);
    if (!bytesEqual(expected, row.hash)) return this.fail('hash_mismatch', node, row.seq, row.record.workId);
    const prev = this.last.get(node)?.hash ?? GENESIS_HASH;
    if (!bytesEqual(prev, row.prevHash)) return this.fail('broken_link', node, row.seq, row.record.workId);
    this.last.set(node, { seq: row.seq, hash: row.hash });
    this.checked++;
    return true;
  }

  /** The verdict, given every stored head (`workIdAt` names the row at a head's seq, if any). */
  finish(heads: Iterable<ChainHead>, workIdAt: (seq: number) => string | null = () => null): ChainVerification {
    if (this.fault === null) {
      const seen = new Set<string>();
      for (const head of heads) {
        seen.add(head.node);
        const last = this.last.get(head.node);
        if (last === undefined || last.seq !== head.seq || !bytesEqual(last.hash, head.hash)) {
          this.fail('head_mismatch', head.node, head.seq, workIdAt(head.seq));
          break;
        }
      }
      if (this.fault === null) {
        for (const [node, last] of this.last) {
          if (!seen.has(node)) {
            this.fail('head_mismatch', node, last.seq, workIdAt(last.seq));
            break;
          }
        }
      }
    }
    return this.fault === null ? { ok: true, rows: this.checked } : { ok: false, rows: this.checked, firstBad: this.fault };
  }

  private fail(reason: ChainFaultReason, node: string, seq: number, workId: string | null): false {
    this.fault = { reason, node, seq, workId };
    return false;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
