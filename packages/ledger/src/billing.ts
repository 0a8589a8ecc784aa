/**
 * Billing cycles, store-independent: the types every store returns, the computation that closes
 * a cycle (totals, batches, record Merkle roots, payout tree), beneficiary addresses, and the
 * offline check of a record proof. Stores stream a closing cycle's rows through a
 * `CycleAccumulator` and persist what `finish()` returns, so SQLite and PostgreSQL close a cycle
 * identically.
 *
 * Closing cycle N happens in three steps, each crash-safe:
 * 1. (short write transaction) cycle N gets `closedAt` and its last record's seq; cycle N+1 opens
 *    with the next rate. From now on every append joins N+1 (the store assigns the cycle inside
 *    the append transaction, so no record can slip into N afterwards).
 * 2. (read-only, no lock) N's rows are read in append order and accumulated.
 * 3. (short write transaction) the registered addresses and the held credits of earlier cycles
 *    are read, the payout tree is made (`finish`), and debits, credits, batches, payouts, roots
 *    and held credits are stored; N gets `sealedAt`. A crash between 1 and 3 leaves N closed but
 *    not sealed; `closeCycle` seals it before closing another.
 *
 * Held credits: a beneficiary with no registered address is not paid to a placeholder nobody can
 * claim. Its credit is kept out of the payout tree and held (per paying account, so the same
 * accounts' escrow pays it later); the first cycle sealed after its address is registered pays
 * everything held for it. Per cycle: sum(debits.tokens) == sum(credits.tokens) == tokens, and
 * sum(payouts) == sum(escrow debits) == tokens - held + released.
 */
import * as crypto from 'node:crypto';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { GENESIS_HASH, chainHash, type RowBilling } from './chain.js';
import { ExactSum as Sum } from './exact-sum.js';
import { merkleProof, merkleRoot, merkleRootFromProof, merkleRootInPlace } from './merkle.js';
import type { TreeHasher } from './tree-hasher.js';
import type { TokenRate } from './pricing/price.js';
import { BENEFICIARIES, type Beneficiary, type SplitParts } from './pricing/split.js';
import { decodeBps, decodeParts, encodeSplit, type Charge, type Microtransaction } from './record.js';

/** Records per sealed batch, by default. */
export const DEFAULT_BATCH_SIZE = 4096;

export interface CycleInfo {
  id: number;
  openedAt: number;
  rate: TokenRate;
  /** Where its rate came from (`file:PATH`, a URL, `manual`) and when it was read; absent when not recorded. */
  rateSource?: string;
  rateFetchedAt?: number;
  /** When the cycle stopped taking records (step 1), or null while open. */
  closedAt: number | null;
  /** When its totals, batches and payout tree were stored (step 3), or null. */
  sealedAt: number | null;
}

export interface Debit {
  account: string;
  records: number;
  priceMicros: bigint;
  /** What the account's records of this cycle charged. */
  tokens: bigint;
  /** Of `tokens`, what is owed to beneficiaries without an address: held, not paid this cycle. */
  held: bigint;
  /** Tokens held in earlier cycles (from this account's records) paid in this one. */
  released: bigint;
}

export interface Credit {
  role: Beneficiary;
  beneficiary: string;
  /** The registered address; for a held credit, the beneficiary's placeholder (`derivedAddress`). */
  address: string;
  /** What the beneficiary earned from this cycle's records. */
  tokens: bigint;
  records: number;
  /** Of `tokens`, what is held (no address was registered when the cycle was sealed). */
  held: bigint;
  /** Tokens held for it in earlier cycles, paid in this one (its address is registered now). */
  released: bigint;
}

/** A credit owed to a beneficiary that had no address, from one account's records of one cycle. */
export interface HeldCredit {
  cycle: number;
  account: string;
  role: Beneficiary;
  beneficiary: string;
  tokens: bigint;
  /** The cycle that paid it, or null while it is held. */
  releasedIn: number | null;
}

/** What a cycle takes from an account's escrow on chain. */
export function escrowDebit(d: Pick<Debit, 'tokens' | 'held' | 'released'>): bigint {
  return d.tokens - d.held + d.released;
}

/** What a credit pays in its cycle's payout tree. */
export function creditPaid(c: Pick<Credit, 'tokens' | 'held' | 'released'>): bigint {
  return c.tokens - c.held + c.released;
}

/** A cycle with no records that pays nothing either: nothing to invoice, pay or anchor. */
export function cycleIsEmpty(c: Pick<CycleSummary, 'records' | 'released'>): boolean {
  return c.records === 0 && c.released === 0n;
}

/** The sum of a cycle's payout tree: what its anchor pays out (and takes from escrow). */
export function payableTokens(c: Pick<CycleSummary, 'tokens' | 'held' | 'released'>): bigint {
  return c.tokens - c.held + c.released;
}

export interface Payout {
  address: string;
  amount: bigint;
  /** StandardMerkleTree proof (0x-hex bytes32 list) for `MerkleProof.verify`. */
  proof: string[];
}

export interface BatchInfo {
  index: number;
  firstSeq: number;
  lastSeq: number;
  records: number;
  /** Hex sha256 Merkle root of the batch's record hashes. */
  root: string;
}

export interface CycleSummary extends CycleInfo {
  records: number;
  pricedRecords: number;
  priceMicros: bigint;
  /** Sum of debits == sum of credits == sum of record tokens. */
  tokens: bigint;
  /** Of `tokens`, held for beneficiaries without an address (not in the payout tree). */
  held: bigint;
  /** Tokens held in earlier cycles paid in this one's payout tree. */
  released: bigint;
  batchSize: number;
  batches: number;
  /** Hex root over the batch roots. */
  recordsRoot: string;
  /** StandardMerkleTree root (0x hex) of (address, amount) leaves, or null when nothing is owed. */
  payoutRoot: string | null;
}

/** What step 2 produces and step 3 stores. */
export interface CycleClose {
  records: number;
  pricedRecords: number;
  priceMicros: bigint;
  tokens: bigint;
  held: bigint;
  released: bigint;
  batchSize: number;
  debits: Debit[];
  credits: Credit[];
  batches: BatchInfo[];
  recordsRoot: string;
  payoutRoot: string | null;
  payouts: Payout[];
  /** Credits of this cycle held (their `releasedIn` is null). */
  newlyHeld: HeldCredit[];
  /** Earlier held credits this cycle pays (to be marked released in it). */
  releasedHeld: HeldCredit[];
}

/** One row of a closing cycle, as the accumulator needs it. */
export interface CycleRow {
  seq: number;
  account: string;
  miner: string;
  /** null when unpriced */
  priceMicros: bigint | null;
  tokens: bigint | null;
  parts: SplitParts | null;
  developer: string | null;
  operator: string | null;
  charity: string | null;
  hash: Uint8Array;
}

/** Maps a beneficiary (role and id) to the EVM address its credits are paid to. */
export type AddressBook = (role: Beneficiary, id: string) => string;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
export function isAddress(s: unknown): s is string {
  return typeof s === 'string' && ADDRESS.test(s);
}

/**
 * The placeholder address of a beneficiary that registered none:
 * `0x` + the first 20 bytes of sha256("cgn.address.v1\0" + role + "\0" + id). Deterministic, so
 * every node and auditor derives the same tree, but nobody holds its key: register real
 * addresses (`registerAddress`) before a cycle closes, or its credits cannot be claimed.
 */
export function derivedAddress(role: Beneficiary | 'account', id: string): string {
  return `0x${crypto.createHash('sha256').update(`cgn.address.v1\u0000${role}\u0000${id}`, 'utf8').digest('hex').slice(0, 40)}`;
}

/** An address book over registered addresses (`role\0id` -> address), falling back to `derivedAddress`. */
export function addressBook(registered: ReadonlyMap<string, string>): AddressBook {
  return (role, id) => registered.get(`${role}\u0000${id}`) ?? derivedAddress(role, id);
}

/** What sealing a cycle needs beyond its rows: who has an address now, and what is still held. */
export interface PayoutBook {
  /** Registered addresses, keyed `role\0id` (as `BillingLedgerStore.addresses()` returns them). */
  registered: ReadonlyMap<string, string>;
  /** Held credits of earlier cycles not paid yet (`releasedIn` null). */
  held: readonly HeldCredit[];
}

/** The priced rows of one (account, miner, developer, operator, charity): what a cycle's debits and credits are made of. */
interface Group {
  account: string;
  ids: readonly [string, string, string, string];
  records: number;
  price: Sum;
  tokens: Sum;
  parts: [Sum, Sum, Sum, Sum];
}

/** The rows given to a fast path need the general one (`push`, fed in seq order by the store's general reader). */
export class CycleReadFallback extends Error {}

/** `pushText` was given a key that is not five NUL-joined ids (an id holds a NUL): feed such rows through `push`. */
export class CycleKeyError extends CycleReadFallback {}

/** Decimal text of at most 15 digits: exact as a double (< 10^15 < 2^53). */
const SHORT = 15;

/**
 * The number s[start, end) spells when it is 1 to SHORT decimal digits (exact as a double, and
 * what BigInt reads the same), else -1.
 */
function shortDecimal(s: string, start: number, end: number): number {
  if (end <= start || end - start > SHORT) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

const NO_IDS = 'priced record has no';

/**
 * Reads "m/d/o/c" (four runs of 1 to SHORT digits joined by '/') from `s` at `start` into
 * `out`, stopping at the first other character. Returns where it stopped (the caller checks that
 * what follows is its field's end), or -1 when the text there is not such a quad.
 */
function parseQuad(s: string, start: number, out: number[]): number {
  let k = 0;
  let v = 0;
  let digits = 0;
  let i = start;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 47) {
      if (digits === 0 || k === 3) return -1;
      out[k++] = v;
      v = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === SHORT) return -1;
      v = v * 10 + (c - 48);
      digits++;
    } else break;
  }
  if (k !== 3 || digits === 0) return -1;
  out[3] = v;
  return i;
}

/** Accumulates a closing cycle's rows (fed in append order) into its totals, batches and trees. */
export class CycleAccumulator {
  private readonly groups = new Map<string, Group>();
  private readonly batches: BatchInfo[] = [];
  /** The open batch's leaves, 32 bytes each, hashed level by level in place when it is full. */
  private leaves: Buffer;
  private count = 0;
  private firstSeq = 0;
  private lastSeq = 0;
  private records = 0;
  private priced = 0;
  private readonly priceMicros = new Sum();
  private readonly tokens = new Sum();
  private readonly parsed = [0, 0, 0, 0];
  /** Where the last chunk field read starts (see `field`). */
  private at = 0;

  /** `hasher`: build the batch trees there (a worker thread) instead of in `seal`. */
  constructor(readonly batchSize: number = DEFAULT_BATCH_SIZE, private readonly hasher?: TreeHasher) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    this.leaves = Buffer.allocUnsafe(Math.min(batchSize, DEFAULT_BATCH_SIZE) * 32);
  }

  push(row: CycleRow): void {
    const h = row.hash;
    if (h.length !== 32) throw new Error(`the record at seq ${row.seq} has a ${h.length}-byte hash, not 32`);
    this.leaf(row.seq).set(h, this.count++ * 32);
    this.afterLeaf();
    if (row.tokens === null || row.parts === null || row.priceMicros === null) return;
    const ids = [row.miner, row.developer, row.operator, row.charity] as const;
    for (let i = 0; i < 4; i++) if (ids[i] === null) throw new Error(`${NO_IDS} ${BENEFICIARIES[i]!} at seq ${row.seq}`);
    // The NUL-joined key is unambiguous only while no id holds a NUL (records refuse one now; rows
    // from before may). Those rows are keyed by their JSON text, which escapes NUL and so cannot
    // equal a NUL-joined key or each other's.
    const plain = !row.account.includes('\u0000') && !ids.some((x) => x!.includes('\u0000'));
    const key = plain ? `${row.account}\u0000${ids.join('\u0000')}` : JSON.stringify([row.account, ...ids]);
    const g = this.group(key, row.account, ids as readonly [string, string, string, string]);
    this.priced++;
    g.records++;
    this.priceMicros.addBig(row.priceMicros);
    this.tokens.addBig(row.tokens);
    g.price.addBig(row.priceMicros);
    g.tokens.addBig(row.tokens);
    const p = row.parts;
    g.parts[0].addBig(p.miner);
    g.parts[1].addBig(p.developer);
    g.parts[2].addBig(p.operator);
    g.parts[3].addBig(p.charity);
  }

  /**
   * One row as the stores read it, in text: the hash in hex, and `key` = account,
   * miner, developer, operator and charity joined by NUL (no id holds a NUL: records refuse it);
   * price, tokens and parts ("m/d/o/c") in decimal, null when unpriced. Same result as `push`.
   */
  pushText(seq: number, hashHex: string, key: string, price: string | null, tokens: string | null, parts: string | null): void {
    if (hashHex.length !== 64) throw new Error(`the record at seq ${seq} has a malformed hash`);
    this.leafHex(seq, hashHex);
    if (tokens === null || parts === null || price === null) return;
    const g = this.group(key, null, null);
    this.priced++;
    g.records++;
    const pm = shortDecimal(price, 0, price.length);
    const t = shortDecimal(tokens, 0, tokens.length);
    const q = this.parsed;
    if (pm >= 0 && t >= 0 && parseQuad(parts, 0, q) === parts.length) this.addNumbers(g, pm, t, q[0]!, q[1]!, q[2]!, q[3]!);
    else this.addTexts(g, price, tokens, parts);
  }

  /**
   * A chunk of rows as the SQLite store reads them (two values per chunk cross into JavaScript,
   * not one or more per row): `leaves`, the rows' 32-byte hashes back to back, and `rows`, the
   * rows as bytes (one character per byte, latin1), joined by ';'. A row is its seq in decimal,
   * then nothing (unpriced), '!' (its hash is not 32 bytes: refused as malformed) or ',' and four
   * fields: price, tokens, the key of `pushText` (UTF-8) and parts, each as its length in bytes,
   * ',' and its bytes. The lengths make every field's end certain whatever an id or an amount
   * holds. Same result as `pushText` of the same fields. Rows out of seq order throw
   * `CycleReadFallback` (the reader that orders them takes over), as does an id holding a NUL.
   */
  pushChunk(leaves: Uint8Array, rows: string): void {
    const n = rows.length;
    const q = this.parsed;
    // Room for the chunk's leaves in the open batch, so no row grows the buffer.
    const need = Math.min(this.batchSize, this.count + (leaves.length >>> 5)) * 32;
    if (this.leaves.length < need) {
      const grown = Buffer.allocUnsafe(need);
      this.leaves.copy(grown, 0, 0, this.count * 32);
      this.leaves = grown;
    }
    let p = 0;
    let r = 0; // rows read
    let from = 0; // the first row whose leaf is not copied into the batch yet
    while (p < n) {
      let seq = 0;
      let digits = 0;
      let c = -1;
      for (; p < n; p++) {
        c = rows.charCodeAt(p);
        if (c < 48 || c > 57) break;
        seq = seq * 10 + (c - 48);
        digits++;
      }
      if (p === n) c = -1;
      if (digits === 0 || digits > SHORT) throw new Error(`a cycle chunk row at byte ${p} has no seq`);
      if (c === 33) throw new Error(`the record at seq ${seq} has a malformed hash`);
      if (this.records > 0 && seq <= this.lastSeq) throw new CycleReadFallback(`cycle rows out of order at seq ${seq}`);
      if ((r + 1) * 32 > leaves.length) throw new Error(`a cycle chunk has fewer leaves than rows at seq ${seq}`);
      this.leaf(seq);
      r++;
      this.count++;
      if (c === 44) {
        const pe = this.field(rows, p + 1, seq);
        const ps = this.at;
        const te = this.field(rows, pe, seq);
        const ts = this.at;
        const ke = this.field(rows, te, seq);
        const g = this.group(rows.slice(this.at, ke), null, null, true);
        p = this.field(rows, ke, seq);
        const qs = this.at;
        this.priced++;
        g.records++;
        const price = shortDecimal(rows, ps, pe);
        const tokens = shortDecimal(rows, ts, te);
        if (price >= 0 && tokens >= 0 && parseQuad(rows, qs, q) === p) this.addNumbers(g, price, tokens, q[0]!, q[1]!, q[2]!, q[3]!);
        else this.addTexts(g, rows.slice(ps, pe), rows.slice(ts, te), rows.slice(qs, p));
        c = p < n ? rows.charCodeAt(p) : -1;
      }
      if (c === 59) p++;
      else if (c !== -1) throw new Error(`the record at seq ${seq} is not a well-formed cycle chunk row`);
      if (this.count === this.batchSize) {
        this.leaves.set(leaves.subarray(from * 32, r * 32), (this.count - (r - from)) * 32);
        from = r;
        this.seal();
      }
    }
    if (r * 32 !== leaves.length) throw new Error(`a cycle chunk has ${leaves.length / 32} leaves for ${r} rows`);
    this.leaves.set(leaves.subarray(from * 32, r * 32), (this.count - (r - from)) * 32);
  }

  /** Where the chunk field at `p` ("<length>,<bytes>") ends; its first byte goes to `at`. */
  private field(s: string, p: number, seq: number): number {
    let len = 0;
    let digits = 0;
    for (; p < s.length && digits < 10; p++, digits++) {
      const c = s.charCodeAt(p);
      if (c < 48 || c > 57) break;
      len = len * 10 + (c - 48);
    }
    if (digits === 0 || p === s.length || s.charCodeAt(p) !== 44 || p + 1 + len > s.length) throw new Error(`the record at seq ${seq} is not a well-formed cycle chunk row`);
    this.at = p + 1;
    return p + 1 + len;
  }

  /** The leaf of the row at `seq`: the first 64 characters of `hex`. */
  private leafHex(seq: number, hex: string): void {
    if (this.leaf(seq).write(hex, this.count * 32, 32, 'hex') !== 32) throw new Error(`the record at seq ${seq} has a malformed hash`);
    this.count++;
    this.afterLeaf();
  }

  private addNumbers(g: Group, price: number, tokens: number, m: number, d: number, o: number, c: number): void {
    this.priceMicros.add(price);
    this.tokens.add(tokens);
    g.price.add(price);
    g.tokens.add(tokens);
    g.parts[0].add(m);
    g.parts[1].add(d);
    g.parts[2].add(o);
    g.parts[3].add(c);
  }

  /** Amounts as decimal text, exactly (BigInt refuses anything but an integer). */
  private addTexts(g: Group, price: string, tokens: string, parts: string): void {
    const pm = BigInt(price);
    const t = BigInt(tokens);
    this.priceMicros.addBig(pm);
    this.tokens.addBig(t);
    g.price.addBig(pm);
    g.tokens.addBig(t);
    const q = decodeParts(parts);
    g.parts[0].addBig(q.miner);
    g.parts[1].addBig(q.developer);
    g.parts[2].addBig(q.operator);
    g.parts[3].addBig(q.charity);
  }

  /** `latin1`: the key is UTF-8 bytes, one character per byte (a chunk's); the ids are decoded from it. */
  private group(key: string, account: string | null, ids: readonly [string, string, string, string] | null, latin1 = false): Group {
    let g = this.groups.get(key);
    if (g === undefined) {
      if (account === null || ids === null) {
        const f = (latin1 ? Buffer.from(key, 'latin1').toString('utf8') : key).split('\u0000');
        if (f.length !== 5) throw new CycleKeyError(`a cycle row's key splits into ${f.length} ids, not 5: an id holds a NUL`);
        for (let i = 1; i < 5; i++) if (f[i] === '') throw new Error(`${NO_IDS} ${BENEFICIARIES[i - 1]!}`);
        account = f[0]!;
        ids = [f[1]!, f[2]!, f[3]!, f[4]!];
      }
      g = { account, ids, records: 0, price: new Sum(), tokens: new Sum(), parts: [new Sum(), new Sum(), new Sum(), new Sum()] };
      this.groups.set(key, g);
    }
    return g;
  }

  /** The leaf buffer, after checking the row's order. */
  private leaf(seq: number): Buffer {
    if (this.records > 0 && seq <= this.lastSeq) throw new Error(`cycle rows out of order at seq ${seq}`);
    if (this.count === 0) this.firstSeq = seq;
    this.lastSeq = seq;
    this.records++;
    return this.leaves;
  }

  private afterLeaf(): void {
    if (this.count === this.batchSize) this.seal();
    else if (this.count * 32 === this.leaves.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.batchSize, this.count * 2) * 32);
      this.leaves.copy(grown, 0, 0, this.count * 32);
      this.leaves = grown;
    }
  }

  private seal(): void {
    if (this.count === 0) return;
    const index = this.batches.length;
    let root = '';
    if (this.hasher === undefined) root = merkleRootInPlace(this.leaves, this.count).toString('hex');
    else this.hasher.add(index, this.leaves.subarray(0, this.count * 32));
    this.batches.push({ index, firstSeq: this.firstSeq, lastSeq: this.lastSeq, records: this.count, root });
    this.count = 0;
  }

  /** Seals the open batch and has every batch's root (waiting for the hasher's thread, if any). */
  completeTrees(): void {
    this.seal();
    if (this.hasher === undefined || this.batches.every((b) => b.root !== '')) return;
    const roots = this.hasher.roots();
    for (const b of this.batches) b.root = roots[b.index]!;
  }

  /**
   * The cycle's totals and payout tree. `cycle` is this cycle's id (held credits name it); a
   * beneficiary without a registered address in `book` is held, and earlier held credits of
   * beneficiaries that now have one are paid here.
   */
  finish(cycle: number, book: PayoutBook): CycleClose {
    this.completeTrees();
    // Debits per account and credits per beneficiary, in the order they first appear in the
    // rows (a group's first row is where each of its ids first appears in it).
    const debits = new Map<string, Debit>();
    const debitOf = (account: string): Debit => {
      let d = debits.get(account);
      if (d === undefined) debits.set(account, (d = { account, records: 0, priceMicros: 0n, tokens: 0n, held: 0n, released: 0n }));
      return d;
    };
    const earned = new Map<string, { role: Beneficiary; beneficiary: string; tokens: bigint; records: number; byAccount: Map<string, bigint> }>();
    for (const g of this.groups.values()) {
      const d = debitOf(g.account);
      d.records += g.records;
      d.priceMicros += g.price.value;
      d.tokens += g.tokens.value;
      for (let i = 0; i < 4; i++) {
        const role = BENEFICIARIES[i]!;
        const id = g.ids[i]!;
        const k = `${role}\u0000${id}`;
        let c = earned.get(k);
        if (c === undefined) earned.set(k, (c = { role, beneficiary: id, tokens: 0n, records: 0, byAccount: new Map() }));
        const amount = g.parts[i]!.value;
        c.tokens += amount;
        c.records += g.records;
        // Who paid it, in case it is held: the same account's escrow pays it when it is released.
        c.byAccount.set(g.account, (c.byAccount.get(g.account) ?? 0n) + amount);
      }
    }
    const credits = new Map<string, Credit>();
    const newlyHeld: HeldCredit[] = [];
    for (const [k, c] of earned) {
      const registered = book.registered.get(k);
      const credit: Credit = { role: c.role, beneficiary: c.beneficiary, address: (registered ?? derivedAddress(c.role, c.beneficiary)).toLowerCase(), tokens: c.tokens, records: c.records, held: 0n, released: 0n };
      credits.set(k, credit);
      if (registered !== undefined || c.tokens === 0n) continue;
      credit.held = c.tokens;
      for (const [account, tokens] of c.byAccount) {
        if (tokens === 0n) continue;
        newlyHeld.push({ cycle, account, role: c.role, beneficiary: c.beneficiary, tokens, releasedIn: null });
        debitOf(account).held += tokens;
      }
    }
    const releasedHeld: HeldCredit[] = [];
    for (const h of book.held) {
      if (h.releasedIn !== null || h.cycle >= cycle) continue;
      const k = `${h.role}\u0000${h.beneficiary}`;
      const registered = book.registered.get(k);
      if (registered === undefined) continue;
      let credit = credits.get(k);
      if (credit === undefined) credits.set(k, (credit = { role: h.role, beneficiary: h.beneficiary, address: registered.toLowerCase(), tokens: 0n, records: 0, held: 0n, released: 0n }));
      credit.released += h.tokens;
      debitOf(h.account).released += h.tokens;
      releasedHeld.push({ ...h, releasedIn: cycle });
    }
    const creditList = [...credits.values()].sort((a, b) => cmp(a.role, b.role) || cmp(a.beneficiary, b.beneficiary));
    const debitList = [...debits.values()].sort((a, b) => cmp(a.account, b.account));
    // Payout tree: one leaf per address (an address may be credited in several roles).
    const byAddress = new Map<string, bigint>();
    for (const c of creditList) {
      const paid = creditPaid(c);
      if (paid > 0n) byAddress.set(c.address, (byAddress.get(c.address) ?? 0n) + paid);
    }
    const owed = [...byAddress].sort((a, b) => cmp(a[0], b[0]));
    let payoutRoot: string | null = null;
    const payouts: Payout[] = [];
    if (owed.length > 0) {
      const tree = StandardMerkleTree.of(owed.map(([a, amount]) => [a, amount.toString()]), ['address', 'uint256']);
      payoutRoot = tree.root;
      owed.forEach(([address, amount], i) => payouts.push({ address, amount, proof: tree.getProof(i) }));
    }
    return {
      records: this.records,
      pricedRecords: this.priced,
      priceMicros: this.priceMicros.value,
      tokens: this.tokens.value,
      held: newlyHeld.reduce((a, h) => a + h.tokens, 0n),
      released: releasedHeld.reduce((a, h) => a + h.tokens, 0n),
      batchSize: this.batchSize,
      debits: debitList,
      credits: creditList,
      batches: this.batches,
      recordsRoot: this.batches.length === 0 ? GENESIS_HASH.toString('hex') : merkleRoot(this.batches.map((b) => Buffer.from(b.root, 'hex'))).toString('hex'),
      payoutRoot,
      payouts,
      newlyHeld,
      releasedHeld,
    };
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Record proofs

/** A record as JSON (money as decimal strings). */
export interface RecordJson extends Omit<Microtransaction, 'pricing'> {
  pricing?: { priceMicros: string; split: string; developer: string; operator: string; charity: string };
}

export function recordToJson(tx: Microtransaction): RecordJson {
  const { pricing, ...rest } = tx;
  const out: RecordJson = { ...rest };
  if (pricing !== undefined) {
    out.pricing = { priceMicros: pricing.priceMicros.toString(), split: encodeSplit(pricing.split), developer: pricing.developer, operator: pricing.operator, charity: pricing.charity };
  }
  return out;
}

export function recordFromJson(j: RecordJson): Microtransaction {
  const { pricing, ...rest } = j;
  const out: Microtransaction = { ...rest };
  if (pricing !== undefined) {
    out.pricing = { priceMicros: BigInt(pricing.priceMicros), split: decodeBps(pricing.split), developer: pricing.developer, operator: pricing.operator, charity: pricing.charity };
  }
  return out;
}

/** Everything needed to check offline that a work id's record is in a sealed batch of a closed cycle. */
export interface RecordProof {
  type: 'cgn.record-proof';
  version: 1;
  workId: string;
  cycle: number;
  record: RecordJson;
  format: number;
  charge: { tokens: string; parts: string } | null;
  prevHash: string;
  /** The record's chain hash: the batch tree's leaf. */
  hash: string;
  batch: number;
  batchProof: string[];
  batchRoot: string;
  cycleProof: string[];
  /** The cycle's root over all batch roots: compare with the anchored (published) root. */
  recordsRoot: string;
}

export function makeRecordProof(args: {
  record: Microtransaction;
  format: number;
  billing: RowBilling;
  prevHash: Uint8Array;
  hash: Uint8Array;
  batch: number;
  batchLeaves: readonly Uint8Array[];
  leafIndex: number;
  batchRoots: readonly Uint8Array[];
}): RecordProof {
  const c = args.billing.charge;
  return {
    type: 'cgn.record-proof',
    version: 1,
    workId: args.record.workId,
    cycle: args.billing.cycle,
    record: recordToJson(args.record),
    format: args.format,
    charge: c === null ? null : { tokens: c.tokens.toString(), parts: encodeSplit(c.parts) },
    prevHash: Buffer.from(args.prevHash).toString('hex'),
    hash: Buffer.from(args.hash).toString('hex'),
    batch: args.batch,
    batchProof: merkleProof(args.batchLeaves, args.leafIndex),
    batchRoot: Buffer.from(args.batchRoots[args.batch]!).toString('hex'),
    cycleProof: merkleProof(args.batchRoots, args.batch),
    recordsRoot: merkleRoot(args.batchRoots).toString('hex'),
  };
}

export type ProofVerification =
  | { ok: true; workId: string; cycle: number; recordsRoot: string; record: Microtransaction; charge: Charge | null }
  | { ok: false; reason: string };

const HEX32 = /^[0-9a-f]{64}$/;

/**
 * Checks a record proof offline: the record's fields hash (with its prevHash) to `hash`, `hash`
 * leads through `batchProof` to `batchRoot`, and `batchRoot` through `cycleProof` to
 * `recordsRoot`. Pass `expectedRecordsRoot` (from the anchor / a trusted source) to pin the root;
 * without it the proof is only shown to be self-consistent.
 */
export function verifyRecordProof(proof: RecordProof, expectedRecordsRoot?: string): ProofVerification {
  try {
    if (proof === null || typeof proof !== 'object' || proof.type !== 'cgn.record-proof' || proof.version !== 1) return { ok: false, reason: 'not a cgn record proof (version 1)' };
    for (const f of ['prevHash', 'hash', 'batchRoot', 'recordsRoot'] as const) {
      if (typeof proof[f] !== 'string' || !HEX32.test(proof[f])) return { ok: false, reason: `${f} must be 64 lowercase hex characters` };
    }
    const record = recordFromJson(proof.record);
    if (record.workId !== proof.workId) return { ok: false, reason: 'the record is not the one for this work id' };
    const charge: Charge | null =
      proof.charge === null ? null : { cycle: proof.cycle, tokens: BigInt(proof.charge.tokens), parts: decodePartsStrict(proof.charge.parts) };
    const billing = proof.format >= 2 ? { cycle: proof.cycle, charge } : null;
    const hash = chainHash(Buffer.from(proof.prevHash, 'hex'), record, proof.format, billing);
    if (hash.toString('hex') !== proof.hash) return { ok: false, reason: 'the record does not hash to the proof\'s leaf: it was altered' };
    const batchRoot = merkleRootFromProof(hash, proof.batchProof);
    if (batchRoot === null || batchRoot.toString('hex') !== proof.batchRoot) return { ok: false, reason: 'the batch path does not lead to the batch root' };
    const root = merkleRootFromProof(batchRoot, proof.cycleProof);
    if (root === null || root.toString('hex') !== proof.recordsRoot) return { ok: false, reason: 'the cycle path does not lead to the records root' };
    if (expectedRecordsRoot !== undefined && expectedRecordsRoot.toLowerCase().replace(/^0x/, '') !== proof.recordsRoot) {
      return { ok: false, reason: `the records root ${proof.recordsRoot} is not the expected ${expectedRecordsRoot}` };
    }
    return { ok: true, workId: record.workId, cycle: proof.cycle, recordsRoot: proof.recordsRoot, record, charge };
  } catch (err) {
    return { ok: false, reason: `malformed proof: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function decodePartsStrict(s: string): SplitParts {
  const xs = s.split('/');
  if (xs.length !== 4 || !xs.every((x) => /^\d+$/.test(x))) throw new Error('charge.parts must be "m/d/o/c"');
  const [miner, developer, operator, charity] = xs.map((x) => BigInt(x)) as [bigint, bigint, bigint, bigint];
  return { miner, developer, operator, charity };
}

/** Checks a payout leaf against a payout root (what the Solidity claim does). */
export function verifyPayoutProof(root: string, address: string, amount: bigint, proof: readonly string[]): boolean {
  try {
    return StandardMerkleTree.verify(root, ['address', 'uint256'], [address, amount.toString()], [...proof]);
  } catch {
    return false;
  }
}
