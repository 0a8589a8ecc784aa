/**
 * The embedded ledger store: one SQLite file (better-sqlite3), WAL mode, one transaction per
 * batch through a prepared insert, per-node hash chain maintained inside the transaction.
 *
 * Durability (`synchronous`):
 * * `normal` (default): in WAL mode a commit is in the OS once it returns, so it survives the
 *   process being killed; an OS crash or power loss may lose the last transactions (the file
 *   stays consistent).
 * * `full`: the WAL is fsynced at every commit, so a commit survives power loss too; slower.
 *
 * The chain head of each node lives in `chain_heads` and is read inside each write transaction
 * (BEGIN IMMEDIATE), so it survives restarts and stays right even if a second process appends.
 * The open billing cycle (and its rate) is read inside the same transaction: each record's
 * cycle, token amount and split are fixed there and covered by its hash (record format 2).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CgnError } from '@cgn/protocol';
import {
  CycleAccumulator, CycleReadFallback, DEFAULT_BATCH_SIZE, isAddress, makeRecordProof,
  type BatchInfo, type CycleClose, type CycleInfo, type CycleSummary, type Credit, type Debit, type HeldCredit, type Payout, type RecordProof,
} from './billing.js';
import { TREE_WORKER_FROM, TreeHasher } from './tree-hasher.js';
import { ChainVerifier, GENESIS_HASH, chainStepV2, recordFormatOf, type ChainVerification, type RowBilling } from './chain.js';
import { decideBegin, IDEMPOTENCY_TTL_MS, type IdempotencyBegin, type IdempotencyBeginArgs, type StoredResponse } from './idempotency.js';
import { tokenRateProblem, type TokenRate } from './pricing/price.js';
import { BENEFICIARIES, splitText, type Beneficiary } from './pricing/split.js';
import { VALIDATED_BATCHES, assertMicrotransaction, decodeBps, decodeParts, encodeSplit, type Microtransaction } from './record.js';
import { migrate } from './sqlite-migrations.js';
import { ExactSum } from './exact-sum.js';
import { closerLive, mayHold, type CloserClaim, type CycleCloser } from './cycle-closer.js';
import { checkAccount, checkChainDeposit, normAddress, unlinkProblem, withdrawalAmount, type AddressLink, type AnchorMark, type ChainDeposit, type DepositOutcome, type Withdrawal } from './escrow.js';
import { BucketUsageAccumulator, UsageAccumulator, balanceOf, checkCredit, sortActivity, type UsageRow } from './store-common.js';
import type { ActivityFilter, ActivityLine, ActivitySubject } from './reputation.js';
import type {
  AppendOptions, AppendResult, Balance, OverdraftRefusal, BillingLedgerStore, CloseCycleOptions, Durability, LedgerRow, UsageFilter, UsageGroup, UsageLine,
} from './store.js';
import { depositLimit, type DepositEntry, type UsageBucket, type UsageBucketLine } from './store.js';


const GENESIS_HEX = GENESIS_HASH.toString('hex');

/** How much of the file a cycle's scan may map (the OS pages it in and out as needed). */
const SEAL_MMAP_BYTES = 1 << 30;

/** Seqs per read of a closing cycle. */
const READ_CHUNK = 16_384;

export interface SqliteLedgerStoreOptions {
  /** Database file; created (with its directory) if missing. `:memory:` for a throwaway ledger. */
  path: string;
  /** `normal` (default) survives a killed process; `full` survives power loss. */
  durability?: Durability;
  /** How long a write waits for another connection's lock before failing, ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Open read-only (reports, audit, proofs): no migration, no writes. */
  readonly?: boolean;
  /**
   * A closing cycle spanning at least this many seqs has its batch trees built on a worker
   * thread while its rows are read (the two overlap on a second core). Default 65,536;
   * `Infinity`: never.
   */
  treeWorkerFrom?: number;
}

interface Row {
  seq: number;
  work_id: string;
  account: string;
  end_user: string | null;
  dservice: string;
  tier: Microtransaction['tier'];
  miner: string;
  node: string;
  received_at: number;
  queue_us: number;
  exec_us: number;
  cpu_us: number;
  reported_cpu_us: number | null;
  bytes_in: number;
  bytes_out: number;
  status: number;
  result_hash: string | null;
  attempts: number;
  format: number;
  prev_hash: Buffer;
  hash: Buffer;
  cycle: number;
  price_micros: string | null;
  split_bps: string | null;
  developer: string | null;
  operator: string | null;
  charity: string | null;
  tokens: string | null;
  parts: string | null;
}

interface Head {
  seq: number;
  /** Its hash in lowercase hex: what the next record's hash covers, and what the insert binds (SQLite's unhex() stores the bytes). */
  hex: string;
  dirty: boolean;
}

interface CycleDbRow {
  id: number;
  opened_at: number;
  rate_num: string;
  rate_den: string;
  rate_source: string | null;
  rate_fetched_at: number | null;
  after_seq: number;
  last_seq: number | null;
  closed_at: number | null;
  sealed_at: number | null;
  records: number | null;
  priced: number | null;
  price_micros: string | null;
  tokens: string | null;
  batch_size: number | null;
  batches: number | null;
  records_root: string | null;
  payout_root: string | null;
  held: string | null;
  released: string | null;
}

const INSERT = `INSERT OR IGNORE INTO microtransactions
  (work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us,
   bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash,
   cycle, price_micros, split_bps, developer, operator, charity, tokens, parts, reported_cpu_us)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, unhex(?), unhex(?), ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/**
 * Pragmas every read-write connection sets after `journal_mode` and `synchronous`: a 64 MiB page
 * cache, and a WAL checkpoint every ~32 MiB instead of every 4 MiB (B-tree pages hit by many
 * batches are copied back to the database once per checkpoint, not once per 1000 pages).
 * Durability is unchanged (that is `synchronous`'s job).
 */
export const SQLITE_TUNING: readonly string[] = ['cache_size = -65536', 'wal_autocheckpoint = 8192'];

export class SqliteLedgerStore implements BillingLedgerStore {
  readonly path: string;
  readonly durability: Durability;
  /** Schema version after migrations. */
  readonly schemaVersion: number;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<unknown[], unknown>;
  private readonly headGet: Database.Statement<[string], { seq: number; hash: Buffer }>;
  private readonly headPut: Database.Statement<[string, number, Buffer], unknown>;
  private readonly byWorkId: Database.Statement<[string], Row>;
  private readonly openCycle: Database.Statement<[], { id: number; rate_num: string; rate_den: string }>;
  private readonly spentGet: Database.Statement<[string], { spent: string }>;
  private readonly balanceGet: Database.Statement<[string], { deposited: string; spent: string }>;
  private readonly spentPut: Database.Statement<[string, string], unknown>;
  private readonly appendTx: (records: readonly Microtransaction[], refuseOverdraft: boolean) => AppendResult;
  private closed = false;
  private readonly treeWorkerFrom: number;

  constructor(options: SqliteLedgerStoreOptions) {
    const { path, durability = 'normal', busyTimeoutMs = 5000, readonly = false, treeWorkerFrom = TREE_WORKER_FROM } = options;
    if (!(treeWorkerFrom >= 0)) throw new TypeError('SqliteLedgerStore option treeWorkerFrom: must be a number of records, 0 or more');
    this.treeWorkerFrom = treeWorkerFrom;
    if (typeof path !== 'string' || path.length === 0) throw new TypeError('SqliteLedgerStore option path: must be a file path or ":memory:"');
    if (durability !== 'normal' && durability !== 'full') throw new TypeError(`SqliteLedgerStore option durability: must be "normal" or "full", not ${String(durability)}`);
    if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new TypeError('SqliteLedgerStore option busyTimeoutMs: must be a non-negative integer');
    this.path = path;
    this.durability = durability;
    if (path !== ':memory:' && !readonly) mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path, { readonly, fileMustExist: readonly });
    try {
      this.db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      if (!readonly) {
        const mode = this.db.pragma('journal_mode = WAL', { simple: true });
        if (path !== ':memory:' && mode !== 'wal') throw new Error(`SQLite would not switch ${path} to WAL mode (it stays "${String(mode)}")`);
        this.db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
        // Ingest tuning (see SQLITE_TUNING): a bigger page cache and fewer, larger WAL checkpoints.
        for (const p of SQLITE_TUNING) this.db.pragma(p);
        this.schemaVersion = migrate(this.db);
      } else {
        this.schemaVersion = (this.db.prepare('SELECT MAX(version) AS v FROM ledger_migrations').get() as { v: number }).v;
        if (this.schemaVersion < 2) throw new Error(`ledger ${path} has schema version ${this.schemaVersion}; open it read-write once to migrate it`);
      }
      this.insert = this.db.prepare(INSERT);
      this.headGet = this.db.prepare('SELECT seq, hash FROM chain_heads WHERE node = ?');
      this.headPut = this.db.prepare(
        'INSERT INTO chain_heads (node, seq, hash) VALUES (?, ?, ?) ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, hash = excluded.hash',
      );
      this.byWorkId = this.db.prepare('SELECT * FROM microtransactions WHERE work_id = ?');
      this.openCycle = this.db.prepare('SELECT id, rate_num, rate_den FROM cycles WHERE closed_at IS NULL ORDER BY id DESC LIMIT 1');
      this.spentGet = this.db.prepare('SELECT spent FROM balances WHERE account = ?');
      this.balanceGet = this.db.prepare('SELECT deposited, spent FROM balances WHERE account = ?');
      this.spentPut = this.db.prepare('INSERT INTO balances (account, spent) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET spent = excluded.spent');
    } catch (err) {
      this.db.close();
      throw err;
    }
    const tx = this.db.transaction((records: readonly Microtransaction[], refuseOverdraft: boolean) => this.appendInTransaction(records, refuseOverdraft));
    this.appendTx = (records, refuseOverdraft) => tx.immediate(records, refuseOverdraft);
  }

  appendBatch(records: readonly Microtransaction[], options: AppendOptions = {}): AppendResult {
    this.assertOpen();
    if (!VALIDATED_BATCHES.has(records)) for (const r of records) assertMicrotransaction(r);
    if (records.length === 0) return { inserted: 0, duplicates: [] };
    return this.appendTx(records, options.refuseOverdraft === true);
  }

  count(): number {
    this.assertOpen();
    return (this.db.prepare('SELECT COUNT(*) AS n FROM microtransactions').get() as { n: number }).n;
  }

  get(workId: string): Microtransaction | undefined {
    this.assertOpen();
    const row = this.byWorkId.get(workId);
    return row === undefined ? undefined : toRecord(row);
  }

  getRow(workId: string): LedgerRow | undefined {
    this.assertOpen();
    const row = this.byWorkId.get(workId);
    return row === undefined ? undefined : toLedgerRow(row);
  }

  verifyChain(): ChainVerification {
    this.assertOpen();
    // One read transaction: rows and heads from the same snapshot, even while another
    // connection appends.
    return this.db.transaction((): ChainVerification => {
      const verifier = new ChainVerifier();
      const rows = this.db.prepare('SELECT * FROM microtransactions ORDER BY seq').iterate() as IterableIterator<Row>;
      for (const row of rows) {
        if (!verifier.push({ seq: row.seq, format: row.format, prevHash: row.prev_hash, hash: row.hash, record: toRecord(row), billing: billingOf(row) })) break;
      }
      const heads = this.db.prepare('SELECT node, seq, hash FROM chain_heads ORDER BY node').all() as { node: string; seq: number; hash: Buffer }[];
      const workIdAt = this.db.prepare('SELECT work_id FROM microtransactions WHERE seq = ?').pluck();
      return verifier.finish(heads, (seq) => (workIdAt.get(seq) as string | undefined) ?? null);
    }).deferred();
  }

  /** The connection's actual settings, for status pages and tests. */
  settings(): { journalMode: string; synchronous: string; schemaVersion: number } {
    this.assertOpen();
    const sync = this.db.pragma('synchronous', { simple: true }) as number;
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: ['off', 'normal', 'full', 'extra'][sync] ?? String(sync),
      schemaVersion: this.schemaVersion,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  // ---------------------------------------------------------------------------------------------
  // Cycles

  currentCycle(): CycleInfo {
    this.assertOpen();
    const row = this.db.prepare('SELECT * FROM cycles WHERE closed_at IS NULL ORDER BY id DESC LIMIT 1').get() as CycleDbRow | undefined;
    if (row === undefined) throw new CgnError('internal', `ledger ${this.path} has no open billing cycle`);
    return cycleInfo(row);
  }

  setRate(rate: TokenRate, from?: { source: string; fetchedAt: number }): CycleInfo {
    this.assertOpen();
    const problem = tokenRateProblem(rate);
    if (problem !== null) throw new CgnError('bad_request', `token rate: ${problem}`);
    return this.db.transaction((): CycleInfo => {
      const c = this.currentCycle();
      const priced = this.db.prepare('SELECT 1 FROM microtransactions WHERE seq > (SELECT after_seq FROM cycles WHERE id = ?) AND cycle = ? AND tokens IS NOT NULL LIMIT 1').get(c.id, c.id);
      if (priced !== undefined) throw new CgnError('bad_request', `cycle ${c.id} already holds priced records; its rate is fixed (set the next cycle's rate when closing it)`);
      this.db.prepare('UPDATE cycles SET rate_num = ?, rate_den = ?, rate_source = ?, rate_fetched_at = ? WHERE id = ?')
        .run(rate.num.toString(), rate.den.toString(), from?.source ?? null, from?.fetchedAt ?? null, c.id);
      return this.currentCycle();
    }).immediate();
  }

  closeCycle(options: CloseCycleOptions = {}): CycleSummary {
    this.assertOpen();
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    if (options.nextRate !== undefined) {
      const problem = tokenRateProblem(options.nextRate);
      if (problem !== null) throw new CgnError('bad_request', `next token rate: ${problem}`);
    }
    this.sealPending({ batchSize });
    // Step 1: stop the open cycle taking records, open the next.
    const id = this.db.transaction((): number => {
      const open = this.db.prepare('SELECT * FROM cycles WHERE closed_at IS NULL ORDER BY id DESC LIMIT 1').get() as CycleDbRow | undefined;
      if (open === undefined) throw new CgnError('internal', 'no open billing cycle');
      const lastSeq = (this.db.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM microtransactions').get() as { s: number }).s;
      const at = options.at ?? Date.now();
      this.db.prepare('UPDATE cycles SET closed_at = ?, last_seq = ? WHERE id = ?').run(at, Math.max(lastSeq, open.after_seq), open.id);
      const rate = options.nextRate ?? { num: BigInt(open.rate_num), den: BigInt(open.rate_den) };
      // A carried-over rate keeps its provenance; a new one has the given one (or none).
      const from = options.nextRate === undefined ? { source: open.rate_source, fetchedAt: open.rate_fetched_at } : { source: options.nextRateSource?.source ?? null, fetchedAt: options.nextRateSource?.fetchedAt ?? null };
      this.db.prepare('INSERT INTO cycles (id, opened_at, rate_num, rate_den, rate_source, rate_fetched_at, after_seq) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
        open.id + 1, at, rate.num.toString(), rate.den.toString(), from.source, from.fetchedAt, Math.max(lastSeq, open.after_seq),
      );
      return open.id;
    }).immediate();
    // Steps 2 and 3.
    return this.seal(id, batchSize, options.onProgress);
  }

  holdCycleCloser(claim: CloserClaim, now: number = Date.now()): { held: boolean; closer: CycleCloser } {
    this.assertOpen();
    return this.db.transaction(() => {
      const cur = this.cycleCloser();
      if (!mayHold(cur, claim, now)) return { held: false, closer: cur! };
      const keep = cur !== null && cur.holder === claim.holder && cur.pid === claim.pid && cur.host === claim.host ? cur.closeRequestedAt : null;
      this.db.prepare(`INSERT INTO cycle_closer (id, holder, pid, host, every_ms, heartbeat_at, ttl_ms, close_requested_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host, every_ms = excluded.every_ms,
          heartbeat_at = excluded.heartbeat_at, ttl_ms = excluded.ttl_ms, close_requested_at = excluded.close_requested_at`)
        .run(claim.holder, claim.pid, claim.host, claim.everyMs, now, claim.ttlMs, keep);
      return { held: true, closer: this.cycleCloser()! };
    }).immediate();
  }

  cycleCloser(): CycleCloser | null {
    this.assertOpen();
    const r = this.db.prepare('SELECT * FROM cycle_closer WHERE id = 1').get() as
      | { holder: string; pid: number; host: string; every_ms: number | null; heartbeat_at: number; ttl_ms: number; close_requested_at: number | null }
      | undefined;
    return r === undefined ? null : { holder: r.holder, pid: r.pid, host: r.host, everyMs: r.every_ms, heartbeatAt: r.heartbeat_at, ttlMs: r.ttl_ms, closeRequestedAt: r.close_requested_at };
  }

  releaseCycleCloser(claim: CloserClaim): void {
    this.assertOpen();
    this.db.prepare('DELETE FROM cycle_closer WHERE id = 1 AND holder = ? AND pid = ? AND host = ?').run(claim.holder, claim.pid, claim.host);
  }

  requestCycleClose(now: number = Date.now()): CycleCloser | null {
    this.assertOpen();
    return this.db.transaction(() => {
      const cur = this.cycleCloser();
      if (!closerLive(cur, now)) return null;
      this.db.prepare('UPDATE cycle_closer SET close_requested_at = ? WHERE id = 1').run(now);
      return this.cycleCloser();
    }).immediate();
  }

  sealPending(options: { batchSize?: number } = {}): CycleSummary[] {
    this.assertOpen();
    const ids = this.db.prepare('SELECT id FROM cycles WHERE closed_at IS NOT NULL AND sealed_at IS NULL ORDER BY id').pluck().all() as number[];
    return ids.map((id) => this.seal(id, options.batchSize ?? DEFAULT_BATCH_SIZE));
  }

  private seal(id: number, batchSize: number, onProgress?: (done: number, total: number) => void): CycleSummary {
    const c = this.db.prepare('SELECT * FROM cycles WHERE id = ?').get(id) as CycleDbRow;
    // Step 2: read the cycle's rows (a read snapshot; appends carry on meanwhile).
    // The scan reads the file through a memory map (no copy of every page into the page cache);
    // reads only: writes and their durability are SQLite's usual ones.
    let acc: CycleAccumulator;
    const lastSeq = c.last_seq ?? c.after_seq;
    const mmap = this.db.pragma('mmap_size', { simple: true }) as number;
    this.db.pragma(`mmap_size = ${SEAL_MMAP_BYTES}`);
    const hasher = lastSeq - c.after_seq >= this.treeWorkerFrom ? new TreeHasher() : undefined;
    try {
      try {
        acc = this.db.transaction(() => this.readCycleFast(id, c.after_seq, lastSeq, batchSize, hasher, onProgress)).deferred();
      } catch (err) {
        if (!(err instanceof CycleReadFallback)) throw err;
        acc = this.readCycle(id, c.after_seq, lastSeq, batchSize);
      } finally {
        this.db.pragma(`mmap_size = ${mmap}`);
      }
      acc.completeTrees(); // before the write lock is taken
      // Step 3: who is paid and what is released is decided under the write lock, so no held
      // credit is released twice and no address registered meanwhile is missed.
      this.db.transaction(() => {
        const sealed = this.db.prepare('SELECT sealed_at FROM cycles WHERE id = ?').pluck().get(id);
        if (sealed !== null) return; // another connection sealed it meanwhile
        this.storeClose(id, acc.finish(id, { registered: this.addresses(), held: this.heldCredits({ pending: true }) }));
      }).immediate();
    } finally {
      hasher?.close();
    }
    return this.cycleSummary(id)!;
  }

  /**
   * A closing cycle's rows in seq order, a range of READ_CHUNK seqs at a time, each range
   * aggregated by SQLite into two values (see `CycleAccumulator.pushChunk`): the hashes back to
   * back, and the rows as seq and length-prefixed fields. Per row nothing crosses into JavaScript
   * on its own: no array, string or Buffer per row. The rowid range is scanned in seq order; the
   * accumulator checks it and throws `CycleReadFallback` if it is not (or if an id holds a NUL,
   * which only rows written before records refused NUL can): `readCycle` takes those.
   */
  private readCycleFast(id: number, afterSeq: number, lastSeq: number, batchSize: number, hasher?: TreeHasher, onProgress?: (done: number, total: number) => void): CycleAccumulator {
    const acc = new CycleAccumulator(batchSize, hasher);
    const keyBytes = "octet_length(account) + octet_length(miner) + octet_length(ifnull(developer, '')) + octet_length(ifnull(operator, '')) + octet_length(ifnull(charity, '')) + 4";
    const st = this.db
      .prepare(
        `SELECT CAST(group_concat(hash, '') AS BLOB), CAST(group_concat(seq ||
           CASE WHEN length(hash) <> 32 THEN '!'
                WHEN price_micros IS NULL OR tokens IS NULL OR parts IS NULL THEN ''
                ELSE concat(',', octet_length(price_micros), ',', price_micros, octet_length(tokens), ',', tokens, ${keyBytes}, ',',
                  account, char(0), miner, char(0), ifnull(developer, ''), char(0), ifnull(operator, ''), char(0), ifnull(charity, ''), octet_length(parts), ',', parts) END,
           ';') AS BLOB)
         FROM microtransactions WHERE seq > ? AND seq <= ? AND cycle = ?`,
      )
      .raw();
    for (let from = afterSeq; from < lastSeq; from += READ_CHUNK) {
      const [leaves, rows] = st.get(from, Math.min(from + READ_CHUNK, lastSeq), id) as [Buffer | null, Buffer | null];
      if (leaves !== null && rows !== null) acc.pushChunk(leaves, rows.toString('latin1'));
      // Sequence numbers read of the cycle's range: records, give or take other cycles' rows.
      onProgress?.(Math.min(from + READ_CHUNK, lastSeq) - afterSeq, lastSeq - afterSeq);
    }
    return acc;
  }

  /** The general reader: one value per column. */
  private readCycle(id: number, afterSeq: number, lastSeq: number, batchSize: number): CycleAccumulator {
    const acc = new CycleAccumulator(batchSize);
    const rows = this.db
      .prepare('SELECT seq, account, miner, price_micros, tokens, parts, developer, operator, charity, hash FROM microtransactions WHERE seq > ? AND seq <= ? AND cycle = ? ORDER BY seq')
      .raw()
      .iterate(afterSeq, lastSeq, id) as IterableIterator<unknown[]>;
    for (const r of rows) {
      const tokens = r[4] as string | null;
      acc.push({
        seq: r[0] as number,
        account: r[1] as string,
        miner: r[2] as string,
        priceMicros: r[3] === null ? null : BigInt(r[3] as string),
        tokens: tokens === null ? null : BigInt(tokens),
        parts: r[5] === null ? null : decodeParts(r[5] as string),
        developer: r[6] as string | null,
        operator: r[7] as string | null,
        charity: r[8] as string | null,
        hash: r[9] as Buffer,
      });
    }
    return acc;
  }

  private storeClose(id: number, r: CycleClose): void {
    const d = this.db.prepare('INSERT INTO cycle_debits (cycle, account, records, price_micros, tokens, held, released) VALUES (?, ?, ?, ?, ?, ?, ?)');
    for (const x of r.debits) d.run(id, x.account, x.records, x.priceMicros.toString(), x.tokens.toString(), x.held.toString(), x.released.toString());
    const c = this.db.prepare('INSERT INTO cycle_credits (cycle, role, beneficiary, address, tokens, records, held, released) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    for (const x of r.credits) c.run(id, x.role, x.beneficiary, x.address, x.tokens.toString(), x.records, x.held.toString(), x.released.toString());
    const h = this.db.prepare('INSERT INTO held_credits (cycle, account, role, beneficiary, tokens) VALUES (?, ?, ?, ?, ?)');
    for (const x of r.newlyHeld) h.run(x.cycle, x.account, x.role, x.beneficiary, x.tokens.toString());
    const rel = this.db.prepare('UPDATE held_credits SET released_in = ? WHERE cycle = ? AND account = ? AND role = ? AND beneficiary = ? AND released_in IS NULL');
    for (const x of r.releasedHeld) {
      if (rel.run(id, x.cycle, x.account, x.role, x.beneficiary).changes !== 1) throw new CgnError('internal', `held credit of ${x.role} ${x.beneficiary} from cycle ${x.cycle} was released twice`);
    }
    const b = this.db.prepare('INSERT INTO batches (cycle, idx, first_seq, last_seq, records, root) VALUES (?, ?, ?, ?, ?, ?)');
    for (const x of r.batches) b.run(id, x.index, x.firstSeq, x.lastSeq, x.records, x.root);
    const p = this.db.prepare('INSERT INTO payouts (cycle, address, amount, proof) VALUES (?, ?, ?, ?)');
    for (const x of r.payouts) p.run(id, x.address, x.amount.toString(), JSON.stringify(x.proof));
    this.db
      .prepare('UPDATE cycles SET sealed_at = ?, records = ?, priced = ?, price_micros = ?, tokens = ?, batch_size = ?, batches = ?, records_root = ?, payout_root = ?, held = ?, released = ? WHERE id = ?')
      .run(Date.now(), r.records, r.pricedRecords, r.priceMicros.toString(), r.tokens.toString(), r.batchSize, r.batches.length, r.recordsRoot, r.payoutRoot, r.held.toString(), r.released.toString(), id);
  }

  cycles(): (CycleInfo | CycleSummary)[] {
    this.assertOpen();
    return (this.db.prepare('SELECT * FROM cycles ORDER BY id').all() as CycleDbRow[]).map(cycleOut);
  }

  cycleSummary(id: number): CycleSummary | undefined {
    this.assertOpen();
    const row = this.db.prepare('SELECT * FROM cycles WHERE id = ?').get(id) as CycleDbRow | undefined;
    if (row === undefined || row.sealed_at === null) return undefined;
    return cycleOut(row) as CycleSummary;
  }

  debits(cycle: number): Debit[] {
    this.assertOpen();
    return (this.db.prepare('SELECT * FROM cycle_debits WHERE cycle = ? ORDER BY account').all(cycle) as { account: string; records: number; price_micros: string; tokens: string; held: string; released: string }[]).map(
      (r) => ({ account: r.account, records: r.records, priceMicros: BigInt(r.price_micros), tokens: BigInt(r.tokens), held: BigInt(r.held), released: BigInt(r.released) }),
    );
  }

  credits(cycle: number): Credit[] {
    this.assertOpen();
    return (this.db.prepare('SELECT * FROM cycle_credits WHERE cycle = ? ORDER BY role, beneficiary').all(cycle) as { role: Beneficiary; beneficiary: string; address: string; tokens: string; records: number; held: string; released: string }[]).map(
      (r) => ({ role: r.role, beneficiary: r.beneficiary, address: r.address, tokens: BigInt(r.tokens), records: r.records, held: BigInt(r.held), released: BigInt(r.released) }),
    );
  }

  heldCredits(filter: { pending?: boolean; role?: Beneficiary; beneficiary?: string } = {}): HeldCredit[] {
    this.assertOpen();
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.pending) where.push('released_in IS NULL');
    if (filter.role !== undefined) (where.push('role = ?'), args.push(filter.role));
    if (filter.beneficiary !== undefined) (where.push('beneficiary = ?'), args.push(filter.beneficiary));
    const rows = this.db.prepare(`SELECT * FROM held_credits ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY cycle, account, role, beneficiary`).all(...args) as {
      cycle: number; account: string; role: Beneficiary; beneficiary: string; tokens: string; released_in: number | null;
    }[];
    return rows.map((r) => ({ cycle: r.cycle, account: r.account, role: r.role, beneficiary: r.beneficiary, tokens: BigInt(r.tokens), releasedIn: r.released_in }));
  }

  payouts(cycle: number): Payout[] {
    this.assertOpen();
    return (this.db.prepare('SELECT * FROM payouts WHERE cycle = ? ORDER BY address').all(cycle) as { address: string; amount: string; proof: string }[]).map(
      (r) => ({ address: r.address, amount: BigInt(r.amount), proof: JSON.parse(r.proof) as string[] }),
    );
  }

  sealedBatches(cycle: number): BatchInfo[] {
    this.assertOpen();
    return (this.db.prepare('SELECT * FROM batches WHERE cycle = ? ORDER BY idx').all(cycle) as { idx: number; first_seq: number; last_seq: number; records: number; root: string }[]).map(
      (r) => ({ index: r.idx, firstSeq: r.first_seq, lastSeq: r.last_seq, records: r.records, root: r.root }),
    );
  }

  recordProof(workId: string): RecordProof | undefined {
    this.assertOpen();
    const row = this.getRow(workId);
    if (row === undefined) return undefined;
    const cycle = row.billing?.cycle ?? 1;
    const summary = this.cycleSummary(cycle);
    if (summary === undefined) throw new CgnError('not_found', `work ${workId} is in billing cycle ${cycle}, which is not closed and sealed yet; no proof until it is`);
    const batch = this.db.prepare('SELECT idx, first_seq, last_seq FROM batches WHERE cycle = ? AND first_seq <= ? AND last_seq >= ?').get(cycle, row.seq, row.seq) as
      | { idx: number; first_seq: number; last_seq: number }
      | undefined;
    if (batch === undefined) throw new CgnError('internal', `work ${workId} (seq ${row.seq}) is in no sealed batch of cycle ${cycle}`);
    const leaves = this.db.prepare('SELECT seq, hash FROM microtransactions WHERE seq >= ? AND seq <= ? AND cycle = ? ORDER BY seq').raw().all(batch.first_seq, batch.last_seq, cycle) as [number, Buffer][];
    const roots = this.sealedBatches(cycle).map((b) => Buffer.from(b.root, 'hex'));
    return makeRecordProof({
      record: row.record, format: row.format, billing: row.billing ?? { cycle: 1, charge: null }, prevHash: row.prevHash, hash: row.hash,
      batch: batch.idx, batchLeaves: leaves.map((l) => l[1]), leafIndex: leaves.findIndex((l) => l[0] === row.seq), batchRoots: roots,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Addresses and balances

  registerAddress(role: Beneficiary, id: string, address: string): void {
    this.assertOpen();
    if (!(BENEFICIARIES as readonly string[]).includes(role)) throw new CgnError('bad_request', `role must be one of ${BENEFICIARIES.join(', ')}`);
    if (typeof id !== 'string' || id.length === 0) throw new CgnError('bad_request', 'beneficiary id must be a non-empty string');
    if (!isAddress(address)) throw new CgnError('bad_request', `${String(address)} is not an EVM address (0x + 40 hex digits)`);
    this.db
      .prepare('INSERT INTO addresses (role, id, address, registered_at) VALUES (?, ?, ?, ?) ON CONFLICT (role, id) DO UPDATE SET address = excluded.address, registered_at = excluded.registered_at')
      .run(role, id, address.toLowerCase(), Date.now());
  }

  addresses(): Map<string, string> {
    this.assertOpen();
    const rows = this.db.prepare('SELECT role, id, address FROM addresses').all() as { role: string; id: string; address: string }[];
    return new Map(rows.map((r) => [`${r.role}\u0000${r.id}`, r.address]));
  }

  credit(account: string, amount: bigint, memo?: string): Balance {
    this.assertOpen();
    checkCredit(account, amount);
    return this.db.transaction((): Balance => {
      const cur = this.db.prepare('SELECT deposited FROM balances WHERE account = ?').pluck().get(account) as string | undefined;
      const next = (cur === undefined ? 0n : BigInt(cur)) + amount;
      this.db.prepare("INSERT INTO balances (account, deposited) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET deposited = excluded.deposited").run(account, next.toString());
      this.db.prepare('INSERT INTO deposits (account, amount, memo, at) VALUES (?, ?, ?, ?)').run(account, amount.toString(), memo ?? null, Date.now());
      return this.balance(account);
    }).immediate();
  }

  balance(account: string): Balance {
    this.assertOpen();
    const r = this.db.prepare('SELECT deposited, spent FROM balances WHERE account = ?').get(account) as { deposited: string; spent: string } | undefined;
    return balanceOf(account, r?.deposited ?? '0', r?.spent ?? '0');
  }

  balances(): Balance[] {
    this.assertOpen();
    return (this.db.prepare('SELECT account, deposited, spent FROM balances ORDER BY account').all() as { account: string; deposited: string; spent: string }[]).map((r) =>
      balanceOf(r.account, r.deposited, r.spent),
    );
  }

  deposits(account: string, options: { limit?: number } = {}): DepositEntry[] {
    this.assertOpen();
    const rows = this.db.prepare('SELECT amount, memo, at FROM deposits WHERE account = ? ORDER BY id DESC LIMIT ?').all(account, depositLimit(options.limit)) as { amount: string; memo: string | null; at: number }[];
    return rows.map((r) => ({ amount: BigInt(r.amount), memo: r.memo, at: r.at }));
  }

  // ---------------------------------------------------------------------------------------------
  // On-chain escrow (escrow.ts)

  /** Adds `amount` to the account's deposited tokens (inside a transaction). */
  private addDeposited(account: string, amount: bigint): void {
    const cur = this.db.prepare('SELECT deposited FROM balances WHERE account = ?').pluck().get(account) as string | undefined;
    const next = (cur === undefined ? 0n : BigInt(cur)) + amount;
    this.db.prepare('INSERT INTO balances (account, deposited) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET deposited = excluded.deposited').run(account, next.toString());
  }

  unlinkAddress(account: string, address: string): AddressLink {
    this.assertOpen();
    checkAccount(account);
    const addr = normAddress(address);
    return this.db.transaction((): AddressLink => {
      const cur = this.db.prepare('SELECT account, linked_at FROM account_addresses WHERE address = ?').get(addr) as { account: string; linked_at: number } | undefined;
      const sum = (sql: string): bigint => (this.db.prepare(sql).pluck().all(addr, account) as string[]).reduce((a, b) => a + BigInt(b), 0n);
      const links = (this.db.prepare('SELECT address FROM account_addresses WHERE account = ? ORDER BY address').pluck().all(account) as string[]);
      const problem = unlinkProblem(account, addr, cur?.account ?? null, sum('SELECT amount FROM chain_deposits WHERE address = ? AND account = ?'), sum('SELECT amount FROM withdrawals WHERE address = ? AND account = ?'), links);
      if (problem !== null) throw new CgnError(cur?.account === account ? 'conflict' : 'not_found', problem);
      this.db.prepare('DELETE FROM account_addresses WHERE address = ? AND account = ?').run(addr, account);
      return { account, address: addr, linkedAt: cur!.linked_at };
    }).immediate();
  }

  linkAddress(account: string, address: string): { link: AddressLink; credited: bigint } {
    this.assertOpen();
    checkAccount(account);
    const addr = normAddress(address);
    return this.db.transaction(() => {
      const now = Date.now();
      const cur = this.db.prepare('SELECT account, linked_at FROM account_addresses WHERE address = ?').get(addr) as { account: string; linked_at: number } | undefined;
      if (cur !== undefined && cur.account !== account) throw new CgnError('conflict', `${addr} is already linked to account ${cur.account}`);
      if (cur === undefined) this.db.prepare('INSERT INTO account_addresses (address, account, linked_at) VALUES (?, ?, ?)').run(addr, account, now);
      const held = this.db.prepare('SELECT ref, amount FROM chain_deposits WHERE address = ? AND account IS NULL').all(addr) as { ref: string; amount: string }[];
      let credited = 0n;
      for (const d of held) {
        credited += BigInt(d.amount);
        this.db.prepare('UPDATE chain_deposits SET account = ?, credited_at = ? WHERE ref = ?').run(account, now, d.ref);
        this.db.prepare('INSERT INTO deposits (account, amount, memo, at) VALUES (?, ?, ?, ?)').run(account, d.amount, `chain deposit ${d.ref}`, now);
      }
      if (credited > 0n) this.addDeposited(account, credited);
      return { link: { account, address: addr, linkedAt: cur?.linked_at ?? now }, credited };
    }).immediate();
  }

  links(account?: string): AddressLink[] {
    this.assertOpen();
    const rows = (account === undefined
      ? this.db.prepare('SELECT account, address, linked_at FROM account_addresses ORDER BY account, address').all()
      : this.db.prepare('SELECT account, address, linked_at FROM account_addresses WHERE account = ? ORDER BY address').all(account)) as { account: string; address: string; linked_at: number }[];
    return rows.map((r) => ({ account: r.account, address: r.address, linkedAt: r.linked_at }));
  }

  recordChainDeposit(deposit: ChainDeposit): DepositOutcome {
    this.assertOpen();
    const { ref, address } = checkChainDeposit(deposit);
    return this.db.transaction((): DepositOutcome => {
      if (this.db.prepare('SELECT 1 FROM chain_deposits WHERE ref = ?').get(ref) !== undefined) return { status: 'duplicate' };
      const now = Date.now();
      const account = this.db.prepare('SELECT account FROM account_addresses WHERE address = ?').pluck().get(address) as string | undefined;
      this.db
        .prepare('INSERT INTO chain_deposits (ref, address, amount, block, account, recorded_at, credited_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(ref, address, deposit.amount.toString(), deposit.block.toString(), account ?? null, now, account === undefined ? null : now);
      if (account === undefined) return { status: 'unlinked' };
      this.addDeposited(account, deposit.amount);
      this.db.prepare('INSERT INTO deposits (account, amount, memo, at) VALUES (?, ?, ?, ?)').run(account, deposit.amount.toString(), `chain deposit ${ref}`, now);
      return { status: 'credited', account, balance: this.balance(account) };
    }).immediate();
  }

  requestWithdrawal(account: string, address: string, amount: bigint | 'all'): Withdrawal {
    this.assertOpen();
    checkAccount(account);
    const addr = normAddress(address);
    return this.db.transaction((): Withdrawal => {
      const owner = this.db.prepare('SELECT account FROM account_addresses WHERE address = ?').pluck().get(addr) as string | undefined;
      if (owner !== account) throw new CgnError('conflict', `${addr} is not linked to account ${account}`);
      const sum = (sql: string): bigint => (this.db.prepare(sql).pluck().all(addr, account) as string[]).reduce((a, b) => a + BigInt(b), 0n);
      const net = sum('SELECT amount FROM chain_deposits WHERE address = ? AND account = ?') - sum('SELECT amount FROM withdrawals WHERE address = ? AND account = ?');
      const want = withdrawalAmount(account, addr, amount, this.balance(account).available, net);
      this.addDeposited(account, -want);
      const now = Date.now();
      const id = Number(this.db.prepare('INSERT INTO withdrawals (account, address, amount, requested_at) VALUES (?, ?, ?, ?)').run(account, addr, want.toString(), now).lastInsertRowid);
      return { id, account, address: addr, amount: want, requestedAt: now, cycle: null, postedAt: null, tx: null };
    }).immediate();
  }

  withdrawals(filter: { pending?: boolean; account?: string } = {}): Withdrawal[] {
    this.assertOpen();
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.pending) where.push('posted_at IS NULL');
    if (filter.account !== undefined) (where.push('account = ?'), args.push(filter.account));
    const rows = this.db.prepare(`SELECT * FROM withdrawals ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`).all(...args) as {
      id: number; account: string; address: string; amount: string; requested_at: number; cycle: number | null; posted_at: number | null; tx: string | null;
    }[];
    return rows.map((r) => ({ id: r.id, account: r.account, address: r.address, amount: BigInt(r.amount), requestedAt: r.requested_at, cycle: r.cycle, postedAt: r.posted_at, tx: r.tx }));
  }

  assignWithdrawals(ids: readonly number[], cycle: number): void {
    this.assertOpen();
    const st = this.db.prepare('UPDATE withdrawals SET cycle = ? WHERE id = ? AND posted_at IS NULL');
    this.db.transaction(() => {
      for (const id of ids) st.run(cycle, id);
    }).immediate();
  }

  markWithdrawalsPosted(ids: readonly number[], tx: string | null): void {
    this.assertOpen();
    const st = this.db.prepare('UPDATE withdrawals SET posted_at = ?, tx = ? WHERE id = ? AND posted_at IS NULL');
    const now = Date.now();
    this.db.transaction(() => {
      for (const id of ids) st.run(now, tx, id);
    }).immediate();
  }

  markAnchored(cycle: number, tx: string | null): void {
    this.assertOpen();
    this.db.prepare('INSERT INTO cycle_anchors (cycle, tx, anchored_at) VALUES (?, ?, ?) ON CONFLICT (cycle) DO NOTHING').run(cycle, tx, Date.now());
  }

  anchors(): AnchorMark[] {
    this.assertOpen();
    return (this.db.prepare('SELECT cycle, tx, anchored_at FROM cycle_anchors ORDER BY cycle').all() as { cycle: number; tx: string | null; anchored_at: number }[]).map((r) => ({
      cycle: r.cycle,
      tx: r.tx,
      anchoredAt: r.anchored_at,
    }));
  }

  // ---------------------------------------------------------------------------------------------
  // Reports

  usage(group: UsageGroup, filter: UsageFilter = {}): UsageLine[] {
    this.assertOpen();
    const acc = new UsageAccumulator(group);
    for (const r of this.usageRows(filter)) acc.push(r);
    return acc.lines();
  }

  usageOverTime(bucket: UsageBucket, group: UsageGroup, filter: UsageFilter = {}): UsageBucketLine[] {
    this.assertOpen();
    if (bucket !== 'day' && bucket !== 'cycle') throw new CgnError('bad_request', `usage buckets are day or cycle, not "${String(bucket)}"`);
    const acc = new BucketUsageAccumulator(bucket, group);
    for (const r of this.usageRows(filter)) acc.push(r);
    return acc.lines();
  }

  /** The records a usage report reads (those `filter` selects), as its accumulator takes them. */
  private *usageRows(filter: UsageFilter): Generator<UsageRow> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.account !== undefined) (where.push('account = ?'), params.push(filter.account));
    if (filter.dservice !== undefined) (where.push('dservice = ?'), params.push(filter.dservice));
    if (filter.cycle !== undefined) (where.push('cycle = ?'), params.push(filter.cycle));
    // A cycle's records follow its after_seq (seq is the rowid): a range, not a scan of the table.
    if (filter.fromCycle !== undefined) (where.push('seq > COALESCE((SELECT after_seq FROM cycles WHERE id = ?), 0) AND cycle >= ?'), params.push(filter.fromCycle, filter.fromCycle));
    if (filter.from !== undefined) (where.push('received_at >= ?'), params.push(filter.from));
    if (filter.to !== undefined) (where.push('received_at < ?'), params.push(filter.to));
    const rows = this.db
      .prepare(`SELECT account, dservice, tier, end_user, received_at, cpu_us, bytes_in, bytes_out, price_micros, tokens, cycle FROM microtransactions ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`)
      .raw()
      .iterate(...params) as IterableIterator<unknown[]>;
    for (const r of rows) {
      yield {
        account: r[0] as string, dservice: r[1] as string, tier: r[2] as string, endUser: r[3] as string | null, receivedAt: r[4] as number,
        cpuUs: r[5] as number, bytesIn: r[6] as number, bytesOut: r[7] as number, priceMicros: r[8] === null ? 0n : BigInt(r[8] as string), tokens: r[9] === null ? 0n : BigInt(r[9] as string),
        cycle: r[10] as number,
      };
    }
  }

  activity(by: ActivitySubject, filter: ActivityFilter = {}): ActivityLine[] {
    this.assertOpen();
    if (by !== 'miner' && by !== 'node') throw new CgnError('bad_request', `activity is by miner or node, not "${String(by)}"`);
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.from !== undefined) (where.push('received_at >= ?'), params.push(filter.from));
    if (filter.to !== undefined) (where.push('received_at < ?'), params.push(filter.to));
    const latency = by === 'miner' ? 'exec_us' : 'queue_us';
    const rows = this.db
      .prepare(
        `SELECT ${by} AS subject, dservice, COUNT(*) AS records, SUM(status >= 500) AS failures, TOTAL(${latency}) AS latency
         FROM microtransactions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} GROUP BY ${by}, dservice`,
      )
      .all(...params) as { subject: string; dservice: string; records: number; failures: number; latency: number }[];
    return sortActivity(rows.map((r) => ({ subject: r.subject, dservice: r.dservice, records: r.records, failures: r.failures, latencyUs: r.latency })));
  }

  // ---------------------------------------------------------------------------------------------
  // Idempotency

  idempotencyBegin(args: IdempotencyBeginArgs): IdempotencyBegin {
    this.assertOpen();
    const now = args.now ?? Date.now();
    const ttl = args.ttlMs ?? IDEMPOTENCY_TTL_MS;
    return this.db.transaction((): IdempotencyBegin => {
      const row = this.db.prepare('SELECT * FROM idempotency WHERE account = ? AND key = ?').get(args.account, args.key) as IdemRow | undefined;
      let d = decideBegin(row === undefined ? undefined : { fingerprint: row.fingerprint, workId: row.work_id, state: row.state, createdAt: row.created_at, expiresAt: row.expires_at }, args, now);
      if (typeof d === 'object' && d.kind === 'stale') d = this.byWorkId.get(d.workId) !== undefined ? { kind: 'unknown', workId: d.workId } : 'takeover';
      if (d === 'insert' || d === 'takeover') {
        this.db
          .prepare(`INSERT INTO idempotency (account, key, fingerprint, work_id, state, created_at, expires_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)
                    ON CONFLICT (account, key) DO UPDATE SET fingerprint = excluded.fingerprint, work_id = excluded.work_id, state = 'pending',
                      status = NULL, headers = NULL, body = NULL, created_at = excluded.created_at, expires_at = excluded.expires_at`)
          .run(args.account, args.key, args.fingerprint, args.workId, now, now + ttl);
        return { kind: 'new' };
      }
      if (d.kind === 'replay') {
        return { kind: 'replay', workId: d.workId, response: { status: row!.status!, headers: JSON.parse(row!.headers ?? '[]') as [string, string][], body: row!.body ?? Buffer.alloc(0) } };
      }
      return d as IdempotencyBegin;
    }).immediate();
  }

  idempotencyComplete(account: string, key: string, workId: string, response: StoredResponse): void {
    this.assertOpen();
    const info = this.db
      .prepare("UPDATE idempotency SET state = 'done', status = ?, headers = ?, body = ? WHERE account = ? AND key = ? AND work_id = ?")
      .run(response.status, JSON.stringify(response.headers), Buffer.from(response.body), account, key, workId);
    if (info.changes !== 1) throw new CgnError('internal', `no pending Idempotency-Key entry for work ${workId}`);
  }

  idempotencyAbandon(account: string, key: string, workId: string): void {
    this.assertOpen();
    this.db.prepare("DELETE FROM idempotency WHERE account = ? AND key = ? AND work_id = ? AND state = 'pending'").run(account, key, workId);
  }

  idempotencyPurge(now: number = Date.now()): number {
    this.assertOpen();
    return this.db.prepare('DELETE FROM idempotency WHERE expires_at <= ?').run(now).changes;
  }

  // ---------------------------------------------------------------------------------------------

  private appendInTransaction(records: readonly Microtransaction[], refuseOverdraft: boolean): AppendResult {
    const heads = new Map<string, Head>();
    const duplicates: string[] = [];
    const refused: OverdraftRefusal[] = [];
    /** Per account: tokens it may still spend in this batch (read once, when first needed). */
    const left = new Map<string, bigint>();
    const cycleRow = this.openCycle.get();
    if (cycleRow === undefined) throw new CgnError('internal', 'no open billing cycle');
    const cycle = cycleRow.id;
    const rate: TokenRate = { num: BigInt(cycleRow.rate_num), den: BigInt(cycleRow.rate_den) };
    // num == den: a token base unit per micro-unit, tokens = price exactly (the common case; saves two bigint operations).
    const unitRate = rate.num === rate.den;
    /** Per account: what this batch's inserted records charged (in doubles while they fit; see ExactSum). */
    const spent = new Map<string, ExactSum>();
    let inserted = 0;
    for (const r of records) {
      let head = heads.get(r.node);
      if (head === undefined) {
        const stored = this.headGet.get(r.node);
        head = stored === undefined
          ? { seq: 0, hex: GENESIS_HEX, dirty: false }
          : { seq: stored.seq, hex: stored.hash.toString('hex'), dirty: false };
        heads.set(r.node, head);
      }
      const p = r.pricing;
      let charged: bigint | null = null;
      let info: Database.RunResult;
      let hash: string;
      if (p !== undefined) {
        const price = p.priceMicros.toString();
        const tokens = unitRate ? p.priceMicros : (p.priceMicros * rate.num) / rate.den; // toTokens: floor
        if (refuseOverdraft && tokens > 0n) {
          let available = left.get(r.account);
          if (available === undefined) {
            const b = this.balanceGet.get(r.account);
            available = b === undefined ? 0n : BigInt(b.deposited) - BigInt(b.spent);
          }
          if (tokens > available && this.byWorkId.get(r.workId) === undefined) {
            refused.push({ workId: r.workId, account: r.account, tokens, available });
            left.set(r.account, available);
            continue;
          }
          left.set(r.account, available - tokens);
        }
        charged = tokens;
        const bps = encodeSplit(p.split);
        const tokensText = unitRate ? price : tokens.toString();
        const parts = splitText(tokens, p.split);
        hash = chainStepV2(head.hex, r, cycle, price, bps, p.developer, p.operator, p.charity, tokensText, parts);
        info = this.insert.run(
          r.workId, r.account, r.endUser, r.dservice, r.tier, r.miner, r.node, r.receivedAt, r.queueUs, r.execUs, r.cpuUs,
          r.bytesIn, r.bytesOut, r.status, r.resultHash, r.attempts, recordFormatOf(r), head.hex, hash,
          cycle, price, bps, p.developer, p.operator, p.charity, tokensText, parts, r.reportedCpuUs ?? null,
        );
      } else {
        hash = chainStepV2(head.hex, r, cycle, null, '', '', '', '', null, '');
        info = this.insert.run(
          r.workId, r.account, r.endUser, r.dservice, r.tier, r.miner, r.node, r.receivedAt, r.queueUs, r.execUs, r.cpuUs,
          r.bytesIn, r.bytesOut, r.status, r.resultHash, r.attempts, recordFormatOf(r), head.hex, hash,
          cycle, null, null, null, null, null, null, null, r.reportedCpuUs ?? null,
        );
      }
      if (info.changes === 1) {
        head.seq = Number(info.lastInsertRowid);
        head.hex = hash;
        head.dirty = true;
        inserted++;
        if (charged !== null) {
          let sum = spent.get(r.account);
          if (sum === undefined) spent.set(r.account, (sum = new ExactSum()));
          sum.addBig(charged);
        }
      } else {
        duplicates.push(r.workId);
        // A duplicate charged nothing: give its tokens back to the batch's allowance.
        if (charged !== null && left.has(r.account)) left.set(r.account, left.get(r.account)! + charged);
      }
    }
    for (const [node, head] of heads) if (head.dirty) this.headPut.run(node, head.seq, Buffer.from(head.hex, 'hex'));
    for (const [account, amount] of spent) {
      const cur = this.spentGet.get(account);
      this.spentPut.run(account, ((cur === undefined ? 0n : BigInt(cur.spent)) + amount.value).toString());
    }
    return refused.length > 0 ? { inserted, duplicates, refused } : { inserted, duplicates };
  }

  private assertOpen(): void {
    if (this.closed) throw new CgnError('internal', `the ledger store ${this.path} is closed`);
  }
}

interface IdemRow {
  fingerprint: string;
  work_id: string;
  state: 'pending' | 'done';
  status: number | null;
  headers: string | null;
  body: Buffer | null;
  created_at: number;
  expires_at: number;
}

function cycleInfo(r: CycleDbRow): CycleInfo {
  return {
    id: r.id, openedAt: r.opened_at, rate: { num: BigInt(r.rate_num), den: BigInt(r.rate_den) },
    ...(r.rate_source === null ? {} : { rateSource: r.rate_source }), ...(r.rate_fetched_at === null ? {} : { rateFetchedAt: r.rate_fetched_at }),
    closedAt: r.closed_at, sealedAt: r.sealed_at,
  };
}

function cycleOut(r: CycleDbRow): CycleInfo | CycleSummary {
  const info = cycleInfo(r);
  if (r.sealed_at === null) return info;
  return {
    ...info,
    records: r.records ?? 0,
    pricedRecords: r.priced ?? 0,
    priceMicros: BigInt(r.price_micros ?? '0'),
    tokens: BigInt(r.tokens ?? '0'),
    held: BigInt(r.held ?? '0'),
    released: BigInt(r.released ?? '0'),
    batchSize: r.batch_size ?? 0,
    batches: r.batches ?? 0,
    recordsRoot: r.records_root ?? '',
    payoutRoot: r.payout_root,
  };
}

function billingOf(row: Row): RowBilling | null {
  if (row.format < 2) return null;
  return {
    cycle: row.cycle,
    charge: row.tokens === null || row.parts === null ? null : { cycle: row.cycle, tokens: BigInt(row.tokens), parts: decodeParts(row.parts) },
  };
}

function toLedgerRow(row: Row): LedgerRow {
  return { seq: row.seq, format: row.format, prevHash: row.prev_hash, hash: row.hash, record: toRecord(row), billing: billingOf(row) };
}

function toRecord(row: Row): Microtransaction {
  const tx: Microtransaction = {
    workId: row.work_id,
    account: row.account,
    endUser: row.end_user,
    dservice: row.dservice,
    tier: row.tier,
    miner: row.miner,
    node: row.node,
    receivedAt: row.received_at,
    queueUs: row.queue_us,
    execUs: row.exec_us,
    cpuUs: row.cpu_us,
    bytesIn: row.bytes_in,
    bytesOut: row.bytes_out,
    status: row.status,
    resultHash: row.result_hash,
    attempts: row.attempts,
  };
  if (row.format >= 3 && row.reported_cpu_us !== null && row.reported_cpu_us !== undefined) tx.reportedCpuUs = row.reported_cpu_us;
  if (row.price_micros !== null && row.split_bps !== null) {
    tx.pricing = {
      priceMicros: BigInt(row.price_micros),
      split: decodeBps(row.split_bps),
      developer: row.developer ?? '',
      operator: row.operator ?? '',
      charity: row.charity ?? '',
    };
  }
  return tx;
}

