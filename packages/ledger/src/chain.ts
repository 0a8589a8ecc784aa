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
 */
export const RECORD_FORMAT = 2;
export const RECORD_FORMATS: readonly number[] = [1, 2];

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
  return JSON.stringify([
    'cgn.mtx.2',
    tx.workId, tx.account, tx.endUser, tx.dservice, tx.tier, tx.miner, tx.node, tx.receivedAt, tx.queueUs, tx.execUs, tx.cpuUs,
    tx.bytesIn, tx.bytesOut, tx.status, tx.resultHash, tx.attempts,
    cycle, text.pricing, text.charge,
  ]);
}

/** The exact bytes (as a string, hashed as UTF-8) that a record's hash covers. */
export function canonicalEncoding(tx: Microtransaction, format: number = RECORD_FORMAT, billing: RowBilling | null = null): string {
  if (format === 2) {
    if (billing === null) throw new RangeError('record format 2 needs the row\'s cycle and charge');
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
