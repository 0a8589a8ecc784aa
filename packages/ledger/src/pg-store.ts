/**
 * The shared ledger store: PostgreSQL (porsager/postgres), for nodes that share one ledger.
 * Same contract and test suite as the SQLite store; records are written in format 2.
 *
 * Appends: one transaction per batch (the group-commit writer's), holding a transaction-level
 * advisory lock that serialises appends and the start of a cycle close across every process
 * sharing the ledger, so each node's chain grows in order and every record's cycle is the cycle
 * open at its commit. Rows go in with one `COPY ... FROM STDIN` per batch.
 *
 * Durability (`synchronous_commit`, set per connection):
 * * `normal` (default) -> `synchronous_commit = off`: a commit returns before its WAL is flushed.
 *   A killed *node* loses nothing it was told was committed (the server has it); a crash of the
 *   PostgreSQL server or its machine may lose the last ~0.6 s (3 x wal_writer_delay) of commits,
 *   never corrupting or half-applying one.
 * * `full` -> `synchronous_commit = on`: a commit returns after its WAL is flushed to disk
 *   (fsync), so it survives power loss. With group commit that is one flush per batch.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { CgnError } from '@cgn/protocol';
import {
  CycleAccumulator, DEFAULT_BATCH_SIZE, isAddress, makeRecordProof,
  type BatchInfo, type CycleClose, type CycleInfo, type CycleSummary, type Credit, type Debit, type HeldCredit, type Payout, type RecordProof,
} from './billing.js';
import { TREE_WORKER_FROM, TreeHasher } from './tree-hasher.js';
import { ChainVerifier, GENESIS_HASH, chainStepV2, recordFormatOf, type ChainVerification, type RowBilling } from './chain.js';
import { decideBegin, IDEMPOTENCY_TTL_MS, type IdempotencyBegin, type IdempotencyBeginArgs, type StoredResponse } from './idempotency.js';
import { tokenRateProblem, type TokenRate } from './pricing/price.js';
import { BENEFICIARIES, splitText, type Beneficiary } from './pricing/split.js';
import { VALIDATED_BATCHES, assertMicrotransaction, decodeBps, decodeParts, encodeSplit, type Microtransaction } from './record.js';
import { balanceOf, checkCredit, sortActivity, sortBucketLines } from './store-common.js';
import { ExactSum } from './exact-sum.js';
import type { ActivityFilter, ActivityLine, ActivitySubject } from './reputation.js';
import { checkAccount, checkChainDeposit, normAddress, unlinkProblem, withdrawalAmount, type AddressLink, type AnchorMark, type ChainDeposit, type DepositOutcome, type Withdrawal } from './escrow.js';
import { closerLive, mayHold, type CloserClaim, type CycleCloser } from './cycle-closer.js';
import type {
  AppendOptions, AppendResult, Balance, OverdraftRefusal, BillingLedgerStore, CloseCycleOptions, Durability, LedgerRow, UsageFilter, UsageGroup, UsageLine,
} from './store.js';
import { depositLimit, type DepositEntry, type UsageBucket, type UsageBucketLine } from './store.js';

export interface PostgresLedgerStoreOptions {
  /** Connection URL, e.g. postgres://user@host:5432/db */
  url: string;
  /** Schema holding the ledger's tables (created if missing). Default `cgn_ledger`. */
  schema?: string;
  durability?: Durability;
  /** Connection pool size. Default 4. */
  max?: number;
  /** As the SQLite store's: a closing cycle spanning this many seqs or more has its batch trees built on a worker thread. */
  treeWorkerFrom?: number;
}

type Sql = postgres.Sql<Record<string, never>>;
type Tx = postgres.TransactionSql<Record<string, never>>;

/** Advisory lock key serialising appends and cycle switches (any fixed 64-bit number). */
const GENESIS_HEX = GENESIS_HASH.toString('hex');
const APPEND_LOCK = 0x6367_6e4c_6564_67n; // "cgnLedg"

const MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'microtransactions (format 2), chain heads, cycles, batches, payouts, balances, addresses, idempotency',
    sql: `
      CREATE SEQUENCE microtransactions_seq;
      CREATE TABLE microtransactions (
        seq BIGINT PRIMARY KEY, work_id TEXT NOT NULL UNIQUE, account TEXT NOT NULL, end_user TEXT, dservice TEXT NOT NULL,
        tier TEXT NOT NULL, miner TEXT NOT NULL, node TEXT NOT NULL, received_at BIGINT NOT NULL, queue_us BIGINT NOT NULL,
        exec_us BIGINT NOT NULL, cpu_us BIGINT NOT NULL, bytes_in BIGINT NOT NULL, bytes_out BIGINT NOT NULL, status INT NOT NULL,
        result_hash TEXT, attempts INT NOT NULL, format INT NOT NULL, prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL,
        cycle INT NOT NULL, price_micros NUMERIC(20,0), split_bps TEXT, developer TEXT, operator TEXT, charity TEXT,
        tokens NUMERIC(78,0), parts TEXT
      );
      CREATE FUNCTION microtransactions_append_only() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'microtransactions are append-only'; END $$;
      CREATE TRIGGER microtransactions_no_change BEFORE UPDATE OR DELETE ON microtransactions
        FOR EACH ROW EXECUTE FUNCTION microtransactions_append_only();
      CREATE TABLE chain_heads (node TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash BYTEA NOT NULL);
      CREATE TABLE cycles (
        id INT PRIMARY KEY, opened_at BIGINT NOT NULL, rate_num NUMERIC(78,0) NOT NULL, rate_den NUMERIC(78,0) NOT NULL,
        after_seq BIGINT NOT NULL, last_seq BIGINT, closed_at BIGINT, sealed_at BIGINT, records INT, priced INT,
        price_micros NUMERIC(78,0), tokens NUMERIC(78,0), batch_size INT, batches INT, records_root TEXT, payout_root TEXT
      );
      INSERT INTO cycles (id, opened_at, rate_num, rate_den, after_seq) VALUES (1, (extract(epoch from now()) * 1000)::bigint, 1, 1, 0);
      CREATE TABLE cycle_debits (cycle INT, account TEXT, records INT NOT NULL, price_micros NUMERIC(78,0) NOT NULL, tokens NUMERIC(78,0) NOT NULL, PRIMARY KEY (cycle, account));
      CREATE TABLE cycle_credits (cycle INT, role TEXT, beneficiary TEXT, address TEXT NOT NULL, tokens NUMERIC(78,0) NOT NULL, records INT NOT NULL, PRIMARY KEY (cycle, role, beneficiary));
      CREATE TABLE batches (cycle INT, idx INT, first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL, records INT NOT NULL, root TEXT NOT NULL, PRIMARY KEY (cycle, idx));
      CREATE TABLE payouts (cycle INT, address TEXT, amount NUMERIC(78,0) NOT NULL, proof TEXT NOT NULL, PRIMARY KEY (cycle, address));
      CREATE TABLE addresses (role TEXT, id TEXT, address TEXT NOT NULL, registered_at BIGINT NOT NULL, PRIMARY KEY (role, id));
      CREATE TABLE balances (account TEXT PRIMARY KEY, deposited NUMERIC(78,0) NOT NULL DEFAULT 0, spent NUMERIC(78,0) NOT NULL DEFAULT 0);
      CREATE TABLE deposits (id BIGSERIAL PRIMARY KEY, account TEXT NOT NULL, amount NUMERIC(78,0) NOT NULL, memo TEXT, at BIGINT NOT NULL);
      CREATE TABLE idempotency (
        account TEXT, key TEXT, fingerprint TEXT NOT NULL, work_id TEXT NOT NULL, state TEXT NOT NULL, status INT, headers TEXT,
        body BYTEA, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, PRIMARY KEY (account, key)
      );
      CREATE INDEX idempotency_expiry ON idempotency (expires_at);
    `,
  },
  {
    version: 2,
    name: 'escrow: account addresses, chain deposits, withdrawals, cycle anchors',
    sql: `
      CREATE TABLE account_addresses (address TEXT PRIMARY KEY, account TEXT NOT NULL, linked_at BIGINT NOT NULL);
      CREATE INDEX account_addresses_account ON account_addresses (account);
      CREATE TABLE chain_deposits (
        ref TEXT PRIMARY KEY, address TEXT NOT NULL, amount NUMERIC(78,0) NOT NULL, block NUMERIC(78,0) NOT NULL, account TEXT,
        recorded_at BIGINT NOT NULL, credited_at BIGINT
      );
      CREATE INDEX chain_deposits_address ON chain_deposits (address);
      CREATE TABLE withdrawals (
        id BIGSERIAL PRIMARY KEY, account TEXT NOT NULL, address TEXT NOT NULL, amount NUMERIC(78,0) NOT NULL, requested_at BIGINT NOT NULL,
        cycle INT, posted_at BIGINT, tx TEXT
      );
      CREATE TABLE cycle_anchors (cycle INT PRIMARY KEY, tx TEXT, anchored_at BIGINT NOT NULL);
    `,
  },
  {
    version: 3,
    name: 'microtransactions keep the CPU time a miner reported when less was billed (record format 3)',
    sql: `
      ALTER TABLE microtransactions ADD COLUMN reported_cpu_us BIGINT;
    `,
  },
  {
    version: 4,
    name: 'held credits: earnings of beneficiaries without an address are kept owed, not paid to a placeholder',
    sql: `
      ALTER TABLE cycles ADD COLUMN held NUMERIC(78,0), ADD COLUMN released NUMERIC(78,0);
      ALTER TABLE cycle_debits ADD COLUMN held NUMERIC(78,0) NOT NULL DEFAULT 0, ADD COLUMN released NUMERIC(78,0) NOT NULL DEFAULT 0;
      ALTER TABLE cycle_credits ADD COLUMN held NUMERIC(78,0) NOT NULL DEFAULT 0, ADD COLUMN released NUMERIC(78,0) NOT NULL DEFAULT 0;
      CREATE TABLE held_credits (
        cycle INT NOT NULL, account TEXT NOT NULL, role TEXT NOT NULL, beneficiary TEXT NOT NULL, tokens NUMERIC(78,0) NOT NULL,
        released_in INT, PRIMARY KEY (cycle, account, role, beneficiary)
      );
      CREATE INDEX held_credits_pending ON held_credits (role, beneficiary) WHERE released_in IS NULL;
    `,
  },
  {
    version: 5,
    name: 'the cycle closer: one scheduler closes cycles (cgn settle), a manual close asks it',
    sql: `
      CREATE TABLE cycle_closer (
        id INT PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, pid INT NOT NULL, host TEXT NOT NULL, every_ms BIGINT,
        heartbeat_at BIGINT NOT NULL, ttl_ms BIGINT NOT NULL, close_requested_at BIGINT
      );
    `,
  },
  {
    version: 6,
    name: "a cycle's rate source: where its token rate came from and when it was read",
    sql: `
      ALTER TABLE cycles ADD COLUMN rate_source TEXT, ADD COLUMN rate_fetched_at BIGINT;
    `,
  },
];

interface Row {
  seq: string;
  work_id: string;
  account: string;
  end_user: string | null;
  dservice: string;
  tier: Microtransaction['tier'];
  miner: string;
  node: string;
  received_at: string;
  queue_us: string;
  exec_us: string;
  cpu_us: string;
  reported_cpu_us: string | null;
  bytes_in: string;
  bytes_out: string;
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

interface CycleDbRow {
  id: number;
  opened_at: string;
  rate_num: string;
  rate_den: string;
  rate_source: string | null;
  rate_fetched_at: string | null;
  after_seq: string;
  last_seq: string | null;
  closed_at: string | null;
  sealed_at: string | null;
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

export class PostgresLedgerStore implements BillingLedgerStore {
  readonly durability: Durability;
  readonly schema: string;
  private closed = false;

  private constructor(
    private readonly sql: Sql,
    schema: string,
    durability: Durability,
    private readonly treeWorkerFrom: number,
  ) {
    this.schema = schema;
    this.durability = durability;
  }

  /** Connects, creates the schema if missing and migrates it. */
  static async open(options: PostgresLedgerStoreOptions): Promise<PostgresLedgerStore> {
    const { url, schema = 'cgn_ledger', durability = 'normal', max = 4, treeWorkerFrom = TREE_WORKER_FROM } = options;
    if (!(treeWorkerFrom >= 0)) throw new TypeError('PostgresLedgerStore option treeWorkerFrom: must be a number of records, 0 or more');
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new TypeError('PostgresLedgerStore option schema: must be a lowercase SQL identifier');
    if (durability !== 'normal' && durability !== 'full') throw new TypeError(`PostgresLedgerStore option durability: must be "normal" or "full", not ${String(durability)}`);
    const sql = postgres(url, {
      max,
      onnotice: () => {},
      connection: { search_path: schema, synchronous_commit: durability === 'full' ? 'on' : 'off', application_name: 'cgn-ledger' },
    }) as unknown as Sql;
    try {
      await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${APPEND_LOCK.toString()}::bigint + 1)`;
        await tx`CREATE TABLE IF NOT EXISTS ledger_migrations (version INT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`;
        const [row] = await tx<{ v: number | null }[]>`SELECT MAX(version) AS v FROM ledger_migrations`;
        const current = row?.v ?? 0;
        const latest = Math.max(...MIGRATIONS.map((m) => m.version));
        if (current > latest) throw new Error(`ledger schema version ${current} is newer than this software understands (${latest}); upgrade @cgn/ledger`);
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          await tx.unsafe(m.sql);
          await tx`INSERT INTO ledger_migrations (version, name, applied_at) VALUES (${m.version}, ${m.name}, ${Date.now()})`;
        }
      });
    } catch (err) {
      await sql.end({ timeout: 1 });
      throw err;
    }
    return new PostgresLedgerStore(sql, schema, durability, treeWorkerFrom);
  }

  async appendBatch(records: readonly Microtransaction[], options: AppendOptions = {}): Promise<AppendResult> {
    this.assertOpen();
    if (!VALIDATED_BATCHES.has(records)) for (const r of records) assertMicrotransaction(r);
    if (records.length === 0) return { inserted: 0, duplicates: [] };
    return this.sql.begin((tx) => this.appendIn(tx, records, options.refuseOverdraft === true));
  }

  private async appendIn(tx: Tx, records: readonly Microtransaction[], refuseOverdraft: boolean): Promise<AppendResult> {
    const nodes = [...new Set(records.map((r) => r.node))];
    // One round trip for the lock and the three reads: postgres.js pipelines queries issued
    // together on the transaction's connection, and the server runs them in order, so the reads
    // run under the lock (if it fails, they fail and the transaction rolls back).
    const [, cycRows, headRows, existingRows] = await Promise.all([
      tx`SELECT pg_advisory_xact_lock(${APPEND_LOCK.toString()}::bigint)`,
      tx<{ id: number; rate_num: string; rate_den: string }[]>`SELECT id, rate_num::text, rate_den::text FROM cycles WHERE closed_at IS NULL ORDER BY id DESC LIMIT 1`,
      tx<{ node: string; seq: string; hash: Buffer }[]>`SELECT node, seq, hash FROM chain_heads WHERE node = ANY(${nodes})`,
      tx<{ work_id: string }[]>`SELECT work_id FROM microtransactions WHERE work_id = ANY(${records.map((r) => r.workId)})`,
    ]);
    const cyc = cycRows[0];
    if (cyc === undefined) throw new CgnError('internal', 'no open billing cycle');
    const cycle = cyc.id;
    const rate: TokenRate = { num: BigInt(cyc.rate_num), den: BigInt(cyc.rate_den) };
    // Heads as lowercase hex: what the next hash covers and what COPY's bytea text takes.
    const heads = new Map(headRows.map((h) => [h.node, { seq: Number(h.seq), hex: h.hash.toString('hex'), dirty: false }]));
    const existing = new Set(existingRows.map((r) => r.work_id));
    let fresh: Microtransaction[] = [];
    const duplicates: string[] = [];
    for (const r of records) {
      if (existing.has(r.workId)) duplicates.push(r.workId);
      else {
        existing.add(r.workId);
        fresh.push(r);
      }
    }
    const refused: OverdraftRefusal[] = [];
    if (refuseOverdraft && fresh.some((r) => r.pricing !== undefined)) {
      // The balances of the accounts in this batch, locked until the commit (the append lock
      // already orders appends; credits and withdrawals take the same rows FOR UPDATE).
      const accounts = [...new Set(fresh.map((r) => r.account))];
      const rows = await tx<{ account: string; deposited: string; spent: string }[]>`
        SELECT account, deposited::text, spent::text FROM balances WHERE account = ANY(${accounts}) FOR UPDATE`;
      const left = new Map(rows.map((b) => [b.account, BigInt(b.deposited) - BigInt(b.spent)]));
      fresh = fresh.filter((r) => {
        if (r.pricing === undefined) return true;
        const tokens = (r.pricing.priceMicros * rate.num) / rate.den;
        const available = left.get(r.account) ?? 0n;
        if (tokens > 0n && tokens > available) {
          refused.push({ workId: r.workId, account: r.account, tokens, available });
          return false;
        }
        left.set(r.account, available - tokens);
        return true;
      });
    }
    const done = (inserted: number): AppendResult => (refused.length > 0 ? { inserted, duplicates, refused } : { inserted, duplicates });
    if (fresh.length === 0) return done(0);
    // Seqs: every append holds APPEND_LOCK, so one setval reserves a contiguous range.
    const [range] = await tx<{ last: string }[]>`SELECT setval('microtransactions_seq', nextval('microtransactions_seq') + ${fresh.length - 1}) AS last`;
    const firstSeq = Number(range!.last) - fresh.length + 1;
    /** Per account: what this batch charged (in doubles while exact; see ExactSum). */
    const spent = new Map<string, ExactSum>();
    // num == den: a token base unit per micro-unit, tokens = price exactly (the common case).
    const unitRate = rate.num === rate.den;
    // COPY (text format) is PostgreSQL's cheapest bulk path. Safe without ON CONFLICT: every
    // append holds APPEND_LOCK and checked the work ids above, so none of these rows can exist.
    // The rows are encoded, priced and hashed in chunks while the server ingests the previous
    // chunk (two processes, two cores).
    const CHUNK = 512;
    function* lines(): Generator<string> {
      let text = '';
      for (let i = 0; i < fresh.length; i++) {
        const r = fresh[i]!;
        let head = heads.get(r.node);
        if (head === undefined) heads.set(r.node, (head = { seq: 0, hex: GENESIS_HEX, dirty: false }));
        const p = r.pricing;
        const seq = firstSeq + i;
        let hash: string;
        let billing: string;
        if (p !== undefined) {
          // Same text forms as the SQLite store (and `billingText`): the chain step hashes them.
          const price = p.priceMicros.toString();
          const tokens = unitRate ? p.priceMicros : (p.priceMicros * rate.num) / rate.den; // toTokens: floor
          const tokensText = unitRate ? price : tokens.toString();
          const bps = encodeSplit(p.split);
          const parts = splitText(tokens, p.split);
          let sum = spent.get(r.account);
          if (sum === undefined) spent.set(r.account, (sum = new ExactSum()));
          sum.addBig(tokens);
          hash = chainStepV2(head.hex, r, cycle, price, bps, p.developer, p.operator, p.charity, tokensText, parts);
          billing = `${price}\t${bps}\t${cf(p.developer)}\t${cf(p.operator)}\t${cf(p.charity)}\t${tokensText}\t${parts}`;
        } else {
          hash = chainStepV2(head.hex, r, cycle, null, '', '', '', '', null, '');
          billing = '\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N';
        }
        text +=
          `${seq}\t${cf(r.workId)}\t${cf(r.account)}\t${r.endUser === null ? '\\N' : cf(r.endUser)}\t${cf(r.dservice)}\t${r.tier}\t${cf(r.miner)}\t${cf(r.node)}\t` +
          `${r.receivedAt}\t${r.queueUs}\t${r.execUs}\t${r.cpuUs}\t${r.bytesIn}\t${r.bytesOut}\t${r.status}\t${r.resultHash ?? '\\N'}\t${r.attempts}\t${recordFormatOf(r)}\t` +
          `\\\\x${head.hex}\t\\\\x${hash}\t${cycle}\t${billing}\t${r.reportedCpuUs ?? '\\N'}\n`;
        head.seq = seq;
        head.hex = hash;
        head.dirty = true;
        if ((i + 1) % CHUNK === 0) {
          yield text;
          text = '';
        }
      }
      if (text !== '') yield text;
    }
    const copy = await tx`COPY microtransactions (seq, work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us,
        bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash, cycle, price_micros, split_bps, developer, operator, charity, tokens, parts, reported_cpu_us)
      FROM STDIN`.writable();
    await pipeline(Readable.from(lines(), { objectMode: false, highWaterMark: 1 }), copy);
    const dirty = [...heads].filter(([, h]) => h.dirty);
    // The heads and the spending in one round trip (pipelined, as above).
    await Promise.all([
      tx`
        INSERT INTO chain_heads (node, seq, hash)
        SELECT n, s, decode(h, 'hex') FROM unnest(${dirty.map(([n]) => n)}::text[], ${dirty.map(([, h]) => h.seq)}::bigint[], ${dirty.map(([, h]) => h.hex)}::text[]) AS t(n, s, h)
        ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`,
      spent.size === 0
        ? null
        : tx`
        INSERT INTO balances (account, spent)
        SELECT a, s FROM unnest(${[...spent.keys()]}::text[], ${[...spent.values()].map((x) => x.value.toString())}::numeric[]) AS t(a, s)
        ON CONFLICT (account) DO UPDATE SET spent = balances.spent + excluded.spent`,
    ]);
    return done(fresh.length);
  }

  async count(): Promise<number> {
    this.assertOpen();
    const [r] = await this.sql<{ n: string }[]>`SELECT COUNT(*) AS n FROM microtransactions`;
    return Number(r!.n);
  }

  async get(workId: string): Promise<Microtransaction | undefined> {
    return (await this.getRow(workId))?.record;
  }

  async getRow(workId: string): Promise<LedgerRow | undefined> {
    this.assertOpen();
    const [row] = await this.sql<Row[]>`SELECT * FROM microtransactions WHERE work_id = ${workId}`;
    return row === undefined ? undefined : toLedgerRow(row);
  }

  async verifyChain(): Promise<ChainVerification> {
    this.assertOpen();
    return this.sql.begin('isolation level repeatable read read only', async (tx) => {
      const verifier = new ChainVerifier();
      let going = true;
      await tx<Row[]>`SELECT * FROM microtransactions ORDER BY seq`.cursor(2000, (rows) => {
        for (const row of rows) {
          if (!going) break;
          going = verifier.push({ seq: Number(row.seq), format: row.format, prevHash: row.prev_hash, hash: row.hash, record: toRecord(row), billing: billingOf(row) });
        }
        if (!going) return (tx as unknown as { CLOSE: void }).CLOSE;
      });
      const heads = (await tx<{ node: string; seq: string; hash: Buffer }[]>`SELECT node, seq, hash FROM chain_heads ORDER BY node`).map((h) => ({ node: h.node, seq: Number(h.seq), hash: h.hash }));
      const atSeq = new Map<number, string | null>();
      for (const h of heads) {
        const [w] = await tx<{ work_id: string }[]>`SELECT work_id FROM microtransactions WHERE seq = ${h.seq}`;
        atSeq.set(h.seq, w?.work_id ?? null);
      }
      const last = verifier.finish(heads, (seq) => atSeq.get(seq) ?? null);
      if (!last.ok && last.firstBad.reason === 'head_mismatch' && last.firstBad.workId === null && !atSeq.has(last.firstBad.seq)) {
        const [w] = await tx<{ work_id: string }[]>`SELECT work_id FROM microtransactions WHERE seq = ${last.firstBad.seq}`;
        if (w !== undefined) return { ...last, firstBad: { ...last.firstBad, workId: w.work_id } };
      }
      return last;
    }) as Promise<ChainVerification>;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sql.end({ timeout: 5 });
  }

  // ---------------------------------------------------------------------------------------------
  // Cycles

  async currentCycle(): Promise<CycleInfo> {
    this.assertOpen();
    const [row] = await this.sql<CycleDbRow[]>`SELECT *, rate_num::text, rate_den::text FROM cycles WHERE closed_at IS NULL ORDER BY id DESC LIMIT 1`;
    if (row === undefined) throw new CgnError('internal', 'the ledger has no open billing cycle');
    return cycleInfo(row);
  }

  async setRate(rate: TokenRate, from?: { source: string; fetchedAt: number }): Promise<CycleInfo> {
    this.assertOpen();
    const problem = tokenRateProblem(rate);
    if (problem !== null) throw new CgnError('bad_request', `token rate: ${problem}`);
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${APPEND_LOCK.toString()}::bigint)`;
      const [c] = await tx<{ id: number; after_seq: string }[]>`SELECT id, after_seq FROM cycles WHERE closed_at IS NULL ORDER BY id DESC LIMIT 1`;
      if (c === undefined) throw new CgnError('internal', 'no open billing cycle');
      const priced = await tx`SELECT 1 FROM microtransactions WHERE seq > ${c.after_seq} AND cycle = ${c.id} AND tokens IS NOT NULL LIMIT 1`;
      if (priced.length > 0) throw new CgnError('bad_request', `cycle ${c.id} already holds priced records; its rate is fixed (set the next cycle's rate when closing it)`);
      await tx`UPDATE cycles SET rate_num = ${rate.num.toString()}, rate_den = ${rate.den.toString()}, rate_source = ${from?.source ?? null}, rate_fetched_at = ${from?.fetchedAt ?? null} WHERE id = ${c.id}`;
    });
    return this.currentCycle();
  }

  async closeCycle(options: CloseCycleOptions = {}): Promise<CycleSummary> {
    this.assertOpen();
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    if (options.nextRate !== undefined) {
      const problem = tokenRateProblem(options.nextRate);
      if (problem !== null) throw new CgnError('bad_request', `next token rate: ${problem}`);
    }
    await this.sealPending({ batchSize });
    const id = await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${APPEND_LOCK.toString()}::bigint)`;
      const [open] = await tx<CycleDbRow[]>`SELECT *, rate_num::text, rate_den::text FROM cycles WHERE closed_at IS NULL ORDER BY id DESC LIMIT 1`;
      if (open === undefined) throw new CgnError('internal', 'no open billing cycle');
      const [m] = await tx<{ s: string }[]>`SELECT COALESCE(MAX(seq), 0) AS s FROM microtransactions`;
      const lastSeq = Math.max(Number(m!.s), Number(open.after_seq));
      const at = options.at ?? Date.now();
      await tx`UPDATE cycles SET closed_at = ${at}, last_seq = ${lastSeq} WHERE id = ${open.id}`;
      const rate = options.nextRate ?? { num: BigInt(open.rate_num), den: BigInt(open.rate_den) };
      // A carried-over rate keeps its provenance; a new one has the given one (or none).
      const from = options.nextRate === undefined ? { source: open.rate_source, fetchedAt: open.rate_fetched_at } : { source: options.nextRateSource?.source ?? null, fetchedAt: options.nextRateSource?.fetchedAt ?? null };
      await tx`INSERT INTO cycles (id, opened_at, rate_num, rate_den, rate_source, rate_fetched_at, after_seq)
        VALUES (${open.id + 1}, ${at}, ${rate.num.toString()}, ${rate.den.toString()}, ${from.source}, ${from.fetchedAt}, ${lastSeq})`;
      return open.id;
    });
    return this.seal(id as unknown as number, batchSize, options.onProgress);
  }

  async holdCycleCloser(claim: CloserClaim, now: number = Date.now()): Promise<{ held: boolean; closer: CycleCloser }> {
    this.assertOpen();
    return this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${(APPEND_LOCK + 3n).toString()}::bigint)`;
      const cur = closerOf((await tx<CloserRow[]>`SELECT * FROM cycle_closer WHERE id = 1`)[0]);
      if (!mayHold(cur, claim, now)) return { held: false, closer: cur! };
      const keep = cur !== null && cur.holder === claim.holder && cur.pid === claim.pid && cur.host === claim.host ? cur.closeRequestedAt : null;
      await tx`INSERT INTO cycle_closer (id, holder, pid, host, every_ms, heartbeat_at, ttl_ms, close_requested_at)
        VALUES (1, ${claim.holder}, ${claim.pid}, ${claim.host}, ${claim.everyMs}, ${now}, ${claim.ttlMs}, ${keep})
        ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, host = excluded.host, every_ms = excluded.every_ms,
          heartbeat_at = excluded.heartbeat_at, ttl_ms = excluded.ttl_ms, close_requested_at = excluded.close_requested_at`;
      return { held: true, closer: closerOf((await tx<CloserRow[]>`SELECT * FROM cycle_closer WHERE id = 1`)[0])! };
    }) as Promise<{ held: boolean; closer: CycleCloser }>;
  }

  async cycleCloser(): Promise<CycleCloser | null> {
    this.assertOpen();
    return closerOf((await this.sql<CloserRow[]>`SELECT * FROM cycle_closer WHERE id = 1`)[0]);
  }

  async releaseCycleCloser(claim: CloserClaim): Promise<void> {
    this.assertOpen();
    await this.sql`DELETE FROM cycle_closer WHERE id = 1 AND holder = ${claim.holder} AND pid = ${claim.pid} AND host = ${claim.host}`;
  }

  async requestCycleClose(now: number = Date.now()): Promise<CycleCloser | null> {
    this.assertOpen();
    return this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${(APPEND_LOCK + 3n).toString()}::bigint)`;
      const cur = closerOf((await tx<CloserRow[]>`SELECT * FROM cycle_closer WHERE id = 1`)[0]);
      if (!closerLive(cur, now)) return null;
      await tx`UPDATE cycle_closer SET close_requested_at = ${now} WHERE id = 1`;
      return { ...cur, closeRequestedAt: now };
    }) as Promise<CycleCloser | null>;
  }

  async sealPending(options: { batchSize?: number } = {}): Promise<CycleSummary[]> {
    this.assertOpen();
    const ids = await this.sql<{ id: number }[]>`SELECT id FROM cycles WHERE closed_at IS NOT NULL AND sealed_at IS NULL ORDER BY id`;
    const out: CycleSummary[] = [];
    for (const { id } of ids) out.push(await this.seal(id, options.batchSize ?? DEFAULT_BATCH_SIZE));
    return out;
  }

  private async seal(id: number, batchSize: number, onProgress?: (done: number, total: number) => void): Promise<CycleSummary> {
    const [c] = await this.sql<CycleDbRow[]>`SELECT * FROM cycles WHERE id = ${id}`;
    const first = Number(c!.after_seq);
    const span = Number(c!.last_seq) - first;
    const hasher = span >= this.treeWorkerFrom ? new TreeHasher() : undefined;
    try {
      return await this.sealWith(id, new CycleAccumulator(batchSize, hasher), c!, onProgress);
    } finally {
      hasher?.close();
    }
  }

  private async sealWith(id: number, acc: CycleAccumulator, c: CycleDbRow, onProgress?: (done: number, total: number) => void): Promise<CycleSummary> {
    const first = Number(c.after_seq);
    const span = Number(c.last_seq) - first;
    await this.sql`
      SELECT seq, account, miner, price_micros::text, tokens::text, parts, developer, operator, charity, encode(hash, 'hex')
      FROM microtransactions WHERE seq > ${c.after_seq} AND seq <= ${c.last_seq} AND cycle = ${id} ORDER BY seq`
      .raw()
      .cursor(10_000, (rows) => {
        for (const r of rows as unknown as (Buffer | null)[][]) {
          const t = (i: number): string | null => (r[i] === null ? null : r[i]!.toString());
          // PostgreSQL text holds no NUL, so the NUL-joined key is unambiguous.
          const key = `${t(1)!}\u0000${t(2)!}\u0000${t(6) ?? ''}\u0000${t(7) ?? ''}\u0000${t(8) ?? ''}`;
          acc.pushText(Number(t(0)), t(9)!, key, t(3), t(4), t(5));
        }
        const last = rows.length === 0 ? first : Number((rows[rows.length - 1] as unknown as (Buffer | null)[])[0]!.toString());
        onProgress?.(last - first, span);
      });
    acc.completeTrees(); // before the lock is taken
    // Who is paid and what is released is decided under one lock for every sealer, so no held
    // credit is released twice and no address registered meanwhile is missed.
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${(APPEND_LOCK + 2n).toString()}::bigint)`;
      const [s] = await tx<{ sealed_at: string | null }[]>`SELECT sealed_at FROM cycles WHERE id = ${id} FOR UPDATE`;
      if (s!.sealed_at !== null) return;
      const registered = new Map((await tx<{ role: string; id: string; address: string }[]>`SELECT role, id, address FROM addresses`).map((r) => [`${r.role}\u0000${r.id}`, r.address]));
      const held = heldRows(await tx<HeldDbRow[]>`SELECT cycle, account, role, beneficiary, tokens::text, released_in FROM held_credits WHERE released_in IS NULL ORDER BY cycle, account COLLATE "C", role COLLATE "C", beneficiary COLLATE "C"`);
      await this.storeClose(tx, id, acc.finish(id, { registered, held }));
    });
    return (await this.cycleSummary(id))!;
  }

  private async storeClose(tx: Tx, id: number, r: CycleClose): Promise<void> {
    if (r.debits.length > 0) {
      await tx`INSERT INTO cycle_debits (cycle, account, records, price_micros, tokens, held, released)
        SELECT ${id}, a, n, p, t, h, r FROM unnest(${r.debits.map((d) => d.account)}::text[], ${r.debits.map((d) => d.records)}::int[],
          ${r.debits.map((d) => d.priceMicros.toString())}::numeric[], ${r.debits.map((d) => d.tokens.toString())}::numeric[],
          ${r.debits.map((d) => d.held.toString())}::numeric[], ${r.debits.map((d) => d.released.toString())}::numeric[]) AS x(a, n, p, t, h, r)`;
    }
    if (r.credits.length > 0) {
      await tx`INSERT INTO cycle_credits (cycle, role, beneficiary, address, tokens, records, held, released)
        SELECT ${id}, ro, b, ad, t, n, h, r FROM unnest(${r.credits.map((c) => c.role)}::text[], ${r.credits.map((c) => c.beneficiary)}::text[],
          ${r.credits.map((c) => c.address)}::text[], ${r.credits.map((c) => c.tokens.toString())}::numeric[], ${r.credits.map((c) => c.records)}::int[],
          ${r.credits.map((c) => c.held.toString())}::numeric[], ${r.credits.map((c) => c.released.toString())}::numeric[]) AS x(ro, b, ad, t, n, h, r)`;
    }
    if (r.newlyHeld.length > 0) {
      const h = r.newlyHeld;
      await tx`INSERT INTO held_credits (cycle, account, role, beneficiary, tokens)
        SELECT c, a, ro, b, t FROM unnest(${h.map((x) => x.cycle)}::int[], ${h.map((x) => x.account)}::text[], ${h.map((x) => x.role)}::text[],
          ${h.map((x) => x.beneficiary)}::text[], ${h.map((x) => x.tokens.toString())}::numeric[]) AS x(c, a, ro, b, t)`;
    }
    if (r.releasedHeld.length > 0) {
      const h = r.releasedHeld;
      const done = await tx`UPDATE held_credits SET released_in = ${id}
        FROM unnest(${h.map((x) => x.cycle)}::int[], ${h.map((x) => x.account)}::text[], ${h.map((x) => x.role)}::text[], ${h.map((x) => x.beneficiary)}::text[]) AS x(c, a, ro, b)
        WHERE held_credits.cycle = x.c AND held_credits.account = x.a AND held_credits.role = x.ro AND held_credits.beneficiary = x.b AND held_credits.released_in IS NULL`;
      if (done.count !== h.length) throw new CgnError('internal', `${h.length - done.count} held credits were released twice`);
    }
    if (r.batches.length > 0) {
      await tx`INSERT INTO batches (cycle, idx, first_seq, last_seq, records, root)
        SELECT ${id}, i, f, l, n, ro FROM unnest(${r.batches.map((b) => b.index)}::int[], ${r.batches.map((b) => b.firstSeq)}::bigint[],
          ${r.batches.map((b) => b.lastSeq)}::bigint[], ${r.batches.map((b) => b.records)}::int[], ${r.batches.map((b) => b.root)}::text[]) AS x(i, f, l, n, ro)`;
    }
    if (r.payouts.length > 0) {
      await tx`INSERT INTO payouts (cycle, address, amount, proof)
        SELECT ${id}, a, m, p FROM unnest(${r.payouts.map((p) => p.address)}::text[], ${r.payouts.map((p) => p.amount.toString())}::numeric[],
          ${r.payouts.map((p) => JSON.stringify(p.proof))}::text[]) AS x(a, m, p)`;
    }
    await tx`UPDATE cycles SET sealed_at = ${Date.now()}, records = ${r.records}, priced = ${r.pricedRecords}, price_micros = ${r.priceMicros.toString()},
      tokens = ${r.tokens.toString()}, held = ${r.held.toString()}, released = ${r.released.toString()}, batch_size = ${r.batchSize}, batches = ${r.batches.length}, records_root = ${r.recordsRoot}, payout_root = ${r.payoutRoot}
      WHERE id = ${id}`;
  }

  async cycles(): Promise<(CycleInfo | CycleSummary)[]> {
    this.assertOpen();
    return (await this.sql<CycleDbRow[]>`SELECT *, rate_num::text, rate_den::text, price_micros::text, tokens::text, held::text, released::text FROM cycles ORDER BY id`).map(cycleOut);
  }

  async cycleSummary(id: number): Promise<CycleSummary | undefined> {
    this.assertOpen();
    const [row] = await this.sql<CycleDbRow[]>`SELECT *, rate_num::text, rate_den::text, price_micros::text, tokens::text, held::text, released::text FROM cycles WHERE id = ${id}`;
    if (row === undefined || row.sealed_at === null) return undefined;
    return cycleOut(row) as CycleSummary;
  }

  async debits(cycle: number): Promise<Debit[]> {
    this.assertOpen();
    const rows = await this.sql<{ account: string; records: number; price_micros: string; tokens: string; held: string; released: string }[]>`
      SELECT account, records, price_micros::text, tokens::text, held::text, released::text FROM cycle_debits WHERE cycle = ${cycle} ORDER BY account COLLATE "C"`;
    return rows.map((r) => ({ account: r.account, records: r.records, priceMicros: BigInt(r.price_micros), tokens: BigInt(r.tokens), held: BigInt(r.held), released: BigInt(r.released) }));
  }

  async credits(cycle: number): Promise<Credit[]> {
    this.assertOpen();
    const rows = await this.sql<{ role: Beneficiary; beneficiary: string; address: string; tokens: string; records: number; held: string; released: string }[]>`
      SELECT role, beneficiary, address, tokens::text, records, held::text, released::text FROM cycle_credits WHERE cycle = ${cycle} ORDER BY role COLLATE "C", beneficiary COLLATE "C"`;
    return rows.map((r) => ({ role: r.role, beneficiary: r.beneficiary, address: r.address, tokens: BigInt(r.tokens), records: r.records, held: BigInt(r.held), released: BigInt(r.released) }));
  }

  async heldCredits(filter: { pending?: boolean; role?: Beneficiary; beneficiary?: string } = {}): Promise<HeldCredit[]> {
    this.assertOpen();
    const rows = await this.sql<HeldDbRow[]>`
      SELECT cycle, account, role, beneficiary, tokens::text, released_in FROM held_credits
      WHERE (${filter.pending === true} = false OR released_in IS NULL)
        AND (${filter.role ?? null}::text IS NULL OR role = ${filter.role ?? null})
        AND (${filter.beneficiary ?? null}::text IS NULL OR beneficiary = ${filter.beneficiary ?? null})
      ORDER BY cycle, account COLLATE "C", role COLLATE "C", beneficiary COLLATE "C"`;
    return heldRows(rows);
  }

  async payouts(cycle: number): Promise<Payout[]> {
    this.assertOpen();
    const rows = await this.sql<{ address: string; amount: string; proof: string }[]>`SELECT address, amount::text, proof FROM payouts WHERE cycle = ${cycle} ORDER BY address COLLATE "C"`;
    return rows.map((r) => ({ address: r.address, amount: BigInt(r.amount), proof: JSON.parse(r.proof) as string[] }));
  }

  async sealedBatches(cycle: number): Promise<BatchInfo[]> {
    this.assertOpen();
    const rows = await this.sql<{ idx: number; first_seq: string; last_seq: string; records: number; root: string }[]>`SELECT * FROM batches WHERE cycle = ${cycle} ORDER BY idx`;
    return rows.map((r) => ({ index: r.idx, firstSeq: Number(r.first_seq), lastSeq: Number(r.last_seq), records: r.records, root: r.root }));
  }

  async recordProof(workId: string): Promise<RecordProof | undefined> {
    this.assertOpen();
    const row = await this.getRow(workId);
    if (row === undefined) return undefined;
    const cycle = row.billing?.cycle ?? 1;
    if ((await this.cycleSummary(cycle)) === undefined) {
      throw new CgnError('not_found', `work ${workId} is in billing cycle ${cycle}, which is not closed and sealed yet; no proof until it is`);
    }
    const [batch] = await this.sql<{ idx: number; first_seq: string; last_seq: string }[]>`
      SELECT idx, first_seq, last_seq FROM batches WHERE cycle = ${cycle} AND first_seq <= ${row.seq} AND last_seq >= ${row.seq}`;
    if (batch === undefined) throw new CgnError('internal', `work ${workId} (seq ${row.seq}) is in no sealed batch of cycle ${cycle}`);
    const leaves = await this.sql<{ seq: string; hash: Buffer }[]>`
      SELECT seq, hash FROM microtransactions WHERE seq >= ${batch.first_seq} AND seq <= ${batch.last_seq} AND cycle = ${cycle} ORDER BY seq`;
    const roots = (await this.sealedBatches(cycle)).map((b) => Buffer.from(b.root, 'hex'));
    return makeRecordProof({
      record: row.record, format: row.format, billing: row.billing ?? { cycle: 1, charge: null }, prevHash: row.prevHash, hash: row.hash,
      batch: batch.idx, batchLeaves: leaves.map((l) => l.hash), leafIndex: leaves.findIndex((l) => Number(l.seq) === row.seq), batchRoots: roots,
    });
  }

  // ---------------------------------------------------------------------------------------------

  async registerAddress(role: Beneficiary, id: string, address: string): Promise<void> {
    this.assertOpen();
    if (!(BENEFICIARIES as readonly string[]).includes(role)) throw new CgnError('bad_request', `role must be one of ${BENEFICIARIES.join(', ')}`);
    if (typeof id !== 'string' || id.length === 0) throw new CgnError('bad_request', 'beneficiary id must be a non-empty string');
    if (!isAddress(address)) throw new CgnError('bad_request', `${String(address)} is not an EVM address (0x + 40 hex digits)`);
    await this.sql`INSERT INTO addresses (role, id, address, registered_at) VALUES (${role}, ${id}, ${address.toLowerCase()}, ${Date.now()})
      ON CONFLICT (role, id) DO UPDATE SET address = excluded.address, registered_at = excluded.registered_at`;
  }

  async addresses(): Promise<Map<string, string>> {
    this.assertOpen();
    const rows = await this.sql<{ role: string; id: string; address: string }[]>`SELECT role, id, address FROM addresses`;
    return new Map(rows.map((r) => [`${r.role}\u0000${r.id}`, r.address]));
  }

  async credit(account: string, amount: bigint, memo?: string): Promise<Balance> {
    this.assertOpen();
    checkCredit(account, amount);
    await this.sql.begin(async (tx) => {
      await tx`INSERT INTO balances (account, deposited) VALUES (${account}, ${amount.toString()}) ON CONFLICT (account) DO UPDATE SET deposited = balances.deposited + excluded.deposited`;
      await tx`INSERT INTO deposits (account, amount, memo, at) VALUES (${account}, ${amount.toString()}, ${memo ?? null}, ${Date.now()})`;
    });
    return this.balance(account);
  }

  async balance(account: string): Promise<Balance> {
    this.assertOpen();
    const [r] = await this.sql<{ deposited: string; spent: string }[]>`SELECT deposited::text, spent::text FROM balances WHERE account = ${account}`;
    return balanceOf(account, r?.deposited ?? '0', r?.spent ?? '0');
  }

  async balances(): Promise<Balance[]> {
    this.assertOpen();
    const rows = await this.sql<{ account: string; deposited: string; spent: string }[]>`SELECT account, deposited::text, spent::text FROM balances ORDER BY account COLLATE "C"`;
    return rows.map((r) => balanceOf(r.account, r.deposited, r.spent));
  }

  async deposits(account: string, options: { limit?: number } = {}): Promise<DepositEntry[]> {
    this.assertOpen();
    const rows = await this.sql<{ amount: string; memo: string | null; at: string }[]>`SELECT amount::text, memo, at FROM deposits WHERE account = ${account} ORDER BY id DESC LIMIT ${depositLimit(options.limit)}`;
    return rows.map((r) => ({ amount: BigInt(r.amount), memo: r.memo, at: Number(r.at) }));
  }

  // ---------------------------------------------------------------------------------------------
  // On-chain escrow (escrow.ts). Every write takes a row lock on the address (or the account's
  // balance) so concurrent settlers and nodes cannot credit or debit twice.

  private async addDeposited(tx: Tx, account: string, amount: bigint): Promise<void> {
    await tx`INSERT INTO balances (account, deposited) VALUES (${account}, ${amount.toString()}) ON CONFLICT (account) DO UPDATE SET deposited = balances.deposited + excluded.deposited`;
  }

  async unlinkAddress(account: string, address: string): Promise<AddressLink> {
    this.assertOpen();
    checkAccount(account);
    const addr = normAddress(address);
    return this.sql.begin(async (tx) => {
      const [cur] = await tx<{ account: string; linked_at: string }[]>`SELECT account, linked_at::text FROM account_addresses WHERE address = ${addr} FOR UPDATE`;
      const [d] = await tx<{ s: string }[]>`SELECT COALESCE(SUM(amount), 0)::text AS s FROM chain_deposits WHERE address = ${addr} AND account = ${account}`;
      const [w] = await tx<{ s: string }[]>`SELECT COALESCE(SUM(amount), 0)::text AS s FROM withdrawals WHERE address = ${addr} AND account = ${account}`;
      const links = (await tx<{ address: string }[]>`SELECT address FROM account_addresses WHERE account = ${account} ORDER BY address COLLATE "C"`).map((r) => r.address);
      const problem = unlinkProblem(account, addr, cur?.account ?? null, BigInt(d!.s), BigInt(w!.s), links);
      if (problem !== null) throw new CgnError(cur?.account === account ? 'conflict' : 'not_found', problem);
      await tx`DELETE FROM account_addresses WHERE address = ${addr} AND account = ${account}`;
      return { account, address: addr, linkedAt: Number(cur!.linked_at) };
    }) as Promise<AddressLink>;
  }

  async linkAddress(account: string, address: string): Promise<{ link: AddressLink; credited: bigint }> {
    this.assertOpen();
    checkAccount(account);
    const addr = normAddress(address);
    return this.sql.begin(async (tx) => {
      const now = Date.now();
      await tx`INSERT INTO account_addresses (address, account, linked_at) VALUES (${addr}, ${account}, ${now}) ON CONFLICT (address) DO NOTHING`;
      const [cur] = await tx<{ account: string; linked_at: string }[]>`SELECT account, linked_at::text FROM account_addresses WHERE address = ${addr} FOR UPDATE`;
      if (cur!.account !== account) throw new CgnError('conflict', `${addr} is already linked to account ${cur!.account}`);
      const held = await tx<{ ref: string; amount: string }[]>`SELECT ref, amount::text FROM chain_deposits WHERE address = ${addr} AND account IS NULL FOR UPDATE`;
      let credited = 0n;
      for (const d of held) {
        credited += BigInt(d.amount);
        await tx`UPDATE chain_deposits SET account = ${account}, credited_at = ${now} WHERE ref = ${d.ref}`;
        await tx`INSERT INTO deposits (account, amount, memo, at) VALUES (${account}, ${d.amount}, ${`chain deposit ${d.ref}`}, ${now})`;
      }
      if (credited > 0n) await this.addDeposited(tx, account, credited);
      return { link: { account, address: addr, linkedAt: Number(cur!.linked_at) }, credited };
    });
  }

  async links(account?: string): Promise<AddressLink[]> {
    this.assertOpen();
    const rows = await this.sql<{ account: string; address: string; linked_at: string }[]>`
      SELECT account, address, linked_at::text FROM account_addresses ${account === undefined ? this.sql`` : this.sql`WHERE account = ${account}`}
      ORDER BY account COLLATE "C", address COLLATE "C"`;
    return rows.map((r) => ({ account: r.account, address: r.address, linkedAt: Number(r.linked_at) }));
  }

  async recordChainDeposit(deposit: ChainDeposit): Promise<DepositOutcome> {
    this.assertOpen();
    const { ref, address } = checkChainDeposit(deposit);
    return this.sql.begin(async (tx): Promise<DepositOutcome> => {
      const [owner] = await tx<{ account: string }[]>`SELECT account FROM account_addresses WHERE address = ${address} FOR SHARE`;
      const now = Date.now();
      const inserted = await tx`INSERT INTO chain_deposits (ref, address, amount, block, account, recorded_at, credited_at)
        VALUES (${ref}, ${address}, ${deposit.amount.toString()}, ${deposit.block.toString()}, ${owner?.account ?? null}, ${now}, ${owner === undefined ? null : now})
        ON CONFLICT (ref) DO NOTHING`;
      if (inserted.count === 0) return { status: 'duplicate' };
      if (owner === undefined) return { status: 'unlinked' };
      await this.addDeposited(tx, owner.account, deposit.amount);
      await tx`INSERT INTO deposits (account, amount, memo, at) VALUES (${owner.account}, ${deposit.amount.toString()}, ${`chain deposit ${ref}`}, ${now})`;
      const [b] = await tx<{ deposited: string; spent: string }[]>`SELECT deposited::text, spent::text FROM balances WHERE account = ${owner.account}`;
      return { status: 'credited', account: owner.account, balance: balanceOf(owner.account, b!.deposited, b!.spent) };
    });
  }

  async requestWithdrawal(account: string, address: string, amount: bigint | 'all'): Promise<Withdrawal> {
    this.assertOpen();
    checkAccount(account);
    const addr = normAddress(address);
    return this.sql.begin(async (tx): Promise<Withdrawal> => {
      const [owner] = await tx<{ account: string }[]>`SELECT account FROM account_addresses WHERE address = ${addr} FOR UPDATE`;
      if (owner?.account !== account) throw new CgnError('conflict', `${addr} is not linked to account ${account}`);
      await tx`INSERT INTO balances (account) VALUES (${account}) ON CONFLICT (account) DO NOTHING`;
      const [b] = await tx<{ deposited: string; spent: string }[]>`SELECT deposited::text, spent::text FROM balances WHERE account = ${account} FOR UPDATE`;
      const [n] = await tx<{ net: string }[]>`SELECT (
          (SELECT COALESCE(SUM(amount), 0) FROM chain_deposits WHERE address = ${addr} AND account = ${account}) -
          (SELECT COALESCE(SUM(amount), 0) FROM withdrawals WHERE address = ${addr} AND account = ${account}))::text AS net`;
      const want = withdrawalAmount(account, addr, amount, balanceOf(account, b!.deposited, b!.spent).available, BigInt(n!.net));
      await this.addDeposited(tx, account, -want);
      const now = Date.now();
      const [row] = await tx<{ id: string }[]>`INSERT INTO withdrawals (account, address, amount, requested_at) VALUES (${account}, ${addr}, ${want.toString()}, ${now}) RETURNING id::text`;
      return { id: Number(row!.id), account, address: addr, amount: want, requestedAt: now, cycle: null, postedAt: null, tx: null };
    });
  }

  async withdrawals(filter: { pending?: boolean; account?: string } = {}): Promise<Withdrawal[]> {
    this.assertOpen();
    const rows = await this.sql<{ id: string; account: string; address: string; amount: string; requested_at: string; cycle: number | null; posted_at: string | null; tx: string | null }[]>`
      SELECT id::text, account, address, amount::text, requested_at::text, cycle, posted_at::text, tx FROM withdrawals
      WHERE (${filter.pending !== true} OR posted_at IS NULL) AND (${filter.account ?? null}::text IS NULL OR account = ${filter.account ?? null})
      ORDER BY id`;
    return rows.map((r) => ({
      id: Number(r.id), account: r.account, address: r.address, amount: BigInt(r.amount), requestedAt: Number(r.requested_at),
      cycle: r.cycle, postedAt: r.posted_at === null ? null : Number(r.posted_at), tx: r.tx,
    }));
  }

  async assignWithdrawals(ids: readonly number[], cycle: number): Promise<void> {
    this.assertOpen();
    if (ids.length === 0) return;
    await this.sql`UPDATE withdrawals SET cycle = ${cycle} WHERE id IN ${this.sql(ids.map(String))} AND posted_at IS NULL`;
  }

  async markWithdrawalsPosted(ids: readonly number[], tx: string | null): Promise<void> {
    this.assertOpen();
    if (ids.length === 0) return;
    await this.sql`UPDATE withdrawals SET posted_at = ${Date.now()}, tx = ${tx} WHERE id IN ${this.sql(ids.map(String))} AND posted_at IS NULL`;
  }

  async markAnchored(cycle: number, tx: string | null): Promise<void> {
    this.assertOpen();
    await this.sql`INSERT INTO cycle_anchors (cycle, tx, anchored_at) VALUES (${cycle}, ${tx}, ${Date.now()}) ON CONFLICT (cycle) DO NOTHING`;
  }

  async anchors(): Promise<AnchorMark[]> {
    this.assertOpen();
    const rows = await this.sql<{ cycle: number; tx: string | null; anchored_at: string }[]>`SELECT cycle, tx, anchored_at::text FROM cycle_anchors ORDER BY cycle`;
    return rows.map((r) => ({ cycle: r.cycle, tx: r.tx, anchoredAt: Number(r.anchored_at) }));
  }

  /** A usage report's grouping key and the conditions `filter` sets, as SQL fragments. */
  private usageQuery(group: UsageGroup, filter: UsageFilter) {
    const key = {
      dservice: this.sql`dservice`,
      endUser: this.sql`COALESCE(end_user, '-')`,
      day: this.sql`to_char(to_timestamp(received_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
      account: this.sql`account`,
      tier: this.sql`tier`,
    }[group];
    const conds = [this.sql`TRUE`];
    if (filter.account !== undefined) conds.push(this.sql`account = ${filter.account}`);
    if (filter.dservice !== undefined) conds.push(this.sql`dservice = ${filter.dservice}`);
    if (filter.cycle !== undefined) conds.push(this.sql`cycle = ${filter.cycle}`);
    // A cycle's records follow its after_seq (seq is the primary key): a range, not a scan of the table.
    if (filter.fromCycle !== undefined) conds.push(this.sql`seq > COALESCE((SELECT after_seq FROM cycles WHERE id = ${filter.fromCycle}), 0) AND cycle >= ${filter.fromCycle}`);
    if (filter.from !== undefined) conds.push(this.sql`received_at >= ${filter.from}`);
    if (filter.to !== undefined) conds.push(this.sql`received_at < ${filter.to}`);
    const where = conds.reduce((a, c) => this.sql`${a} AND ${c}`);
    return { key, where };
  }

  async usage(group: UsageGroup, filter: UsageFilter = {}): Promise<UsageLine[]> {
    this.assertOpen();
    const { key, where } = this.usageQuery(group, filter);
    const rows = await this.sql<{ key: string; records: string; cpu: string; bin: string; bout: string; price: string; tokens: string }[]>`
      SELECT ${key} AS key, COUNT(*) AS records, SUM(cpu_us)::text AS cpu, SUM(bytes_in)::text AS bin, SUM(bytes_out)::text AS bout,
        COALESCE(SUM(price_micros), 0)::text AS price, COALESCE(SUM(tokens), 0)::text AS tokens
      FROM microtransactions WHERE ${where} GROUP BY 1 ORDER BY (${key}) COLLATE "C"`;
    return rows.map((r) => ({ key: r.key, records: Number(r.records), cpuUs: Number(r.cpu), bytesIn: Number(r.bin), bytesOut: Number(r.bout), priceMicros: BigInt(r.price), tokens: BigInt(r.tokens) }));
  }

  async usageOverTime(bucket: UsageBucket, group: UsageGroup, filter: UsageFilter = {}): Promise<UsageBucketLine[]> {
    this.assertOpen();
    if (bucket !== 'day' && bucket !== 'cycle') throw new CgnError('bad_request', `usage buckets are day or cycle, not "${String(bucket)}"`);
    const b = bucket === 'day' ? this.sql`to_char(to_timestamp(received_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')` : this.sql`cycle::text`;
    const { key, where } = this.usageQuery(group, filter);
    const rows = await this.sql<{ bucket: string; key: string; records: string; cpu: string; bin: string; bout: string; price: string; tokens: string }[]>`
      SELECT ${b} AS bucket, ${key} AS key, COUNT(*) AS records, SUM(cpu_us)::text AS cpu, SUM(bytes_in)::text AS bin, SUM(bytes_out)::text AS bout,
        COALESCE(SUM(price_micros), 0)::text AS price, COALESCE(SUM(tokens), 0)::text AS tokens
      FROM microtransactions WHERE ${where} GROUP BY 1, 2`;
    return sortBucketLines(bucket, rows.map((r) => ({ bucket: r.bucket, key: r.key, records: Number(r.records), cpuUs: Number(r.cpu), bytesIn: Number(r.bin), bytesOut: Number(r.bout), priceMicros: BigInt(r.price), tokens: BigInt(r.tokens) })));
  }

  async activity(by: ActivitySubject, filter: ActivityFilter = {}): Promise<ActivityLine[]> {
    this.assertOpen();
    if (by !== 'miner' && by !== 'node') throw new CgnError('bad_request', `activity is by miner or node, not "${String(by)}"`);
    const subject = by === 'miner' ? this.sql`miner` : this.sql`node`;
    const latency = by === 'miner' ? this.sql`exec_us` : this.sql`queue_us`;
    const conds = [this.sql`TRUE`];
    if (filter.from !== undefined) conds.push(this.sql`received_at >= ${filter.from}`);
    if (filter.to !== undefined) conds.push(this.sql`received_at < ${filter.to}`);
    const where = conds.reduce((a, c) => this.sql`${a} AND ${c}`);
    const rows = await this.sql<{ subject: string; dservice: string; records: string; failures: string; latency: number }[]>`
      SELECT ${subject} AS subject, dservice, COUNT(*)::text AS records, COUNT(*) FILTER (WHERE status >= 500)::text AS failures,
        COALESCE(SUM(${latency}::float8), 0) AS latency
      FROM microtransactions WHERE ${where} GROUP BY 1, 2`;
    return sortActivity(rows.map((r) => ({ subject: r.subject, dservice: r.dservice, records: Number(r.records), failures: Number(r.failures), latencyUs: Number(r.latency) })));
  }

  // ---------------------------------------------------------------------------------------------

  async idempotencyBegin(args: IdempotencyBeginArgs): Promise<IdempotencyBegin> {
    this.assertOpen();
    const now = args.now ?? Date.now();
    const ttl = args.ttlMs ?? IDEMPOTENCY_TTL_MS;
    return this.sql.begin(async (tx): Promise<IdempotencyBegin> => {
      const ins = await tx`INSERT INTO idempotency (account, key, fingerprint, work_id, state, created_at, expires_at)
        VALUES (${args.account}, ${args.key}, ${args.fingerprint}, ${args.workId}, 'pending', ${now}, ${now + ttl}) ON CONFLICT DO NOTHING`;
      if (ins.count === 1) return { kind: 'new' };
      const [row] = await tx<{ fingerprint: string; work_id: string; state: 'pending' | 'done'; status: number | null; headers: string | null; body: Buffer | null; created_at: string; expires_at: string }[]>`
        SELECT * FROM idempotency WHERE account = ${args.account} AND key = ${args.key} FOR UPDATE`;
      let d = decideBegin(row === undefined ? undefined : { fingerprint: row.fingerprint, workId: row.work_id, state: row.state, createdAt: Number(row.created_at), expiresAt: Number(row.expires_at) }, args, now);
      if (typeof d === 'object' && d.kind === 'stale') {
        const [rec] = await tx`SELECT 1 FROM microtransactions WHERE work_id = ${d.workId}`;
        d = rec !== undefined ? { kind: 'unknown', workId: d.workId } : 'takeover';
      }
      if (d === 'insert' || d === 'takeover') {
        await tx`INSERT INTO idempotency (account, key, fingerprint, work_id, state, created_at, expires_at)
          VALUES (${args.account}, ${args.key}, ${args.fingerprint}, ${args.workId}, 'pending', ${now}, ${now + ttl})
          ON CONFLICT (account, key) DO UPDATE SET fingerprint = excluded.fingerprint, work_id = excluded.work_id, state = 'pending',
            status = NULL, headers = NULL, body = NULL, created_at = excluded.created_at, expires_at = excluded.expires_at`;
        return { kind: 'new' };
      }
      if (d.kind === 'replay') return { kind: 'replay', workId: d.workId, response: { status: row!.status!, headers: JSON.parse(row!.headers ?? '[]') as [string, string][], body: row!.body ?? Buffer.alloc(0) } };
      return d as IdempotencyBegin;
    }) as Promise<IdempotencyBegin>;
  }

  async idempotencyComplete(account: string, key: string, workId: string, response: StoredResponse): Promise<void> {
    this.assertOpen();
    const r = await this.sql`UPDATE idempotency SET state = 'done', status = ${response.status}, headers = ${JSON.stringify(response.headers)}, body = ${Buffer.from(response.body)}
      WHERE account = ${account} AND key = ${key} AND work_id = ${workId}`;
    if (r.count !== 1) throw new CgnError('internal', `no pending Idempotency-Key entry for work ${workId}`);
  }

  async idempotencyAbandon(account: string, key: string, workId: string): Promise<void> {
    this.assertOpen();
    await this.sql`DELETE FROM idempotency WHERE account = ${account} AND key = ${key} AND work_id = ${workId} AND state = 'pending'`;
  }

  async idempotencyPurge(now: number = Date.now()): Promise<number> {
    this.assertOpen();
    return (await this.sql`DELETE FROM idempotency WHERE expires_at <= ${now}`).count;
  }

  /** Raw SQL access for tests and tools (tampering, inspection). */
  get raw(): Sql {
    return this.sql;
  }

  private assertOpen(): void {
    if (this.closed) throw new CgnError('internal', `the PostgreSQL ledger store (schema ${this.schema}) is closed`);
  }
}

const COPY_SPECIAL = /[\\\t\n\r]/;
/** A text value in COPY text format (backslash escapes). */
function cf(s: string): string {
  if (!COPY_SPECIAL.test(s)) return s;
  return s.replace(/[\\\t\n\r]/g, (m) => (m === '\\' ? '\\\\' : m === '\t' ? '\\t' : m === '\n' ? '\\n' : '\\r'));
}

function cycleInfo(r: CycleDbRow): CycleInfo {
  return {
    id: r.id, openedAt: Number(r.opened_at), rate: { num: BigInt(r.rate_num), den: BigInt(r.rate_den) },
    ...(r.rate_source === null || r.rate_source === undefined ? {} : { rateSource: r.rate_source }),
    ...(r.rate_fetched_at === null || r.rate_fetched_at === undefined ? {} : { rateFetchedAt: Number(r.rate_fetched_at) }),
    closedAt: r.closed_at === null ? null : Number(r.closed_at), sealedAt: r.sealed_at === null ? null : Number(r.sealed_at),
  };
}

interface CloserRow {
  holder: string;
  pid: number;
  host: string;
  every_ms: string | null;
  heartbeat_at: string;
  ttl_ms: string;
  close_requested_at: string | null;
}

function closerOf(r: CloserRow | undefined): CycleCloser | null {
  if (r === undefined) return null;
  return {
    holder: r.holder, pid: r.pid, host: r.host, everyMs: r.every_ms === null ? null : Number(r.every_ms), heartbeatAt: Number(r.heartbeat_at),
    ttlMs: Number(r.ttl_ms), closeRequestedAt: r.close_requested_at === null ? null : Number(r.close_requested_at),
  };
}

interface HeldDbRow {
  cycle: number;
  account: string;
  role: Beneficiary;
  beneficiary: string;
  tokens: string;
  released_in: number | null;
}

function heldRows(rows: readonly HeldDbRow[]): HeldCredit[] {
  return rows.map((r) => ({ cycle: r.cycle, account: r.account, role: r.role, beneficiary: r.beneficiary, tokens: BigInt(r.tokens), releasedIn: r.released_in }));
}

function cycleOut(r: CycleDbRow): CycleInfo | CycleSummary {
  const info = cycleInfo(r);
  if (r.sealed_at === null) return info;
  return {
    ...info, records: r.records ?? 0, pricedRecords: r.priced ?? 0, priceMicros: BigInt(r.price_micros ?? '0'), tokens: BigInt(r.tokens ?? '0'),
    held: BigInt(r.held ?? '0'), released: BigInt(r.released ?? '0'),
    batchSize: r.batch_size ?? 0, batches: r.batches ?? 0, recordsRoot: r.records_root ?? '', payoutRoot: r.payout_root,
  };
}

function billingOf(row: Row): RowBilling | null {
  if (row.format < 2) return null;
  return { cycle: row.cycle, charge: row.tokens === null || row.parts === null ? null : { cycle: row.cycle, tokens: BigInt(row.tokens), parts: decodeParts(row.parts) } };
}

function toLedgerRow(row: Row): LedgerRow {
  return { seq: Number(row.seq), format: row.format, prevHash: row.prev_hash, hash: row.hash, record: toRecord(row), billing: billingOf(row) };
}

function toRecord(row: Row): Microtransaction {
  const tx: Microtransaction = {
    workId: row.work_id, account: row.account, endUser: row.end_user, dservice: row.dservice, tier: row.tier, miner: row.miner, node: row.node,
    receivedAt: Number(row.received_at), queueUs: Number(row.queue_us), execUs: Number(row.exec_us), cpuUs: Number(row.cpu_us),
    bytesIn: Number(row.bytes_in), bytesOut: Number(row.bytes_out), status: row.status, resultHash: row.result_hash, attempts: row.attempts,
  };
  if (row.format >= 3 && row.reported_cpu_us !== null && row.reported_cpu_us !== undefined) tx.reportedCpuUs = Number(row.reported_cpu_us);
  if (row.price_micros !== null && row.split_bps !== null) {
    tx.pricing = { priceMicros: BigInt(row.price_micros), split: decodeBps(row.split_bps), developer: row.developer ?? '', operator: row.operator ?? '', charity: row.charity ?? '' };
  }
  return tx;
}
