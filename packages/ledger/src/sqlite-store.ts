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
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CgnError } from '@cgn/protocol';
import { ChainVerifier, GENESIS_HASH, RECORD_FORMAT, chainHash, type ChainVerification } from './chain.js';
import { assertMicrotransaction, type Microtransaction } from './record.js';
import { migrate } from './sqlite-migrations.js';
import type { AppendResult, Durability, LedgerStore } from './store.js';

export interface SqliteLedgerStoreOptions {
  /** Database file; created (with its directory) if missing. `:memory:` for a throwaway ledger. */
  path: string;
  /** `normal` (default) survives a killed process; `full` survives power loss. */
  durability?: Durability;
  /** How long a write waits for another connection's lock before failing, ms. Default 5000. */
  busyTimeoutMs?: number;
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
  bytes_in: number;
  bytes_out: number;
  status: number;
  result_hash: string | null;
  attempts: number;
  format: number;
  prev_hash: Buffer;
  hash: Buffer;
}

interface Head {
  seq: number;
  hash: Buffer;
  dirty: boolean;
}

const INSERT = `INSERT OR IGNORE INTO microtransactions
  (work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us,
   bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export class SqliteLedgerStore implements LedgerStore {
  readonly path: string;
  readonly durability: Durability;
  /** Schema version after migrations. */
  readonly schemaVersion: number;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<unknown[], unknown>;
  private readonly headGet: Database.Statement<[string], { seq: number; hash: Buffer }>;
  private readonly headPut: Database.Statement<[string, number, Buffer], unknown>;
  private readonly byWorkId: Database.Statement<[string], Row>;
  private readonly appendTx: (records: readonly Microtransaction[]) => AppendResult;
  private closed = false;

  constructor(options: SqliteLedgerStoreOptions) {
    const { path, durability = 'normal', busyTimeoutMs = 5000 } = options;
    if (typeof path !== 'string' || path.length === 0) throw new TypeError('SqliteLedgerStore option path: must be a file path or ":memory:"');
    if (durability !== 'normal' && durability !== 'full') throw new TypeError(`SqliteLedgerStore option durability: must be "normal" or "full", not ${String(durability)}`);
    if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new TypeError('SqliteLedgerStore option busyTimeoutMs: must be a non-negative integer');
    this.path = path;
    this.durability = durability;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    try {
      this.db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      const mode = this.db.pragma('journal_mode = WAL', { simple: true });
      if (path !== ':memory:' && mode !== 'wal') throw new Error(`SQLite would not switch ${path} to WAL mode (it stays "${String(mode)}")`);
      this.db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
      this.schemaVersion = migrate(this.db);
      this.insert = this.db.prepare(INSERT);
      this.headGet = this.db.prepare('SELECT seq, hash FROM chain_heads WHERE node = ?');
      this.headPut = this.db.prepare(
        'INSERT INTO chain_heads (node, seq, hash) VALUES (?, ?, ?) ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, hash = excluded.hash',
      );
      this.byWorkId = this.db.prepare('SELECT * FROM microtransactions WHERE work_id = ?');
    } catch (err) {
      this.db.close();
      throw err;
    }
    const tx = this.db.transaction((records: readonly Microtransaction[]) => this.appendInTransaction(records));
    this.appendTx = (records) => tx.immediate(records);
  }

  appendBatch(records: readonly Microtransaction[]): AppendResult {
    this.assertOpen();
    for (const r of records) assertMicrotransaction(r);
    if (records.length === 0) return { inserted: 0, duplicates: [] };
    return this.appendTx(records);
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

  verifyChain(): ChainVerification {
    this.assertOpen();
    // One read transaction: rows and heads from the same snapshot, even while another
    // connection appends.
    return this.db.transaction((): ChainVerification => {
      const verifier = new ChainVerifier();
      const rows = this.db.prepare('SELECT * FROM microtransactions ORDER BY seq').iterate() as IterableIterator<Row>;
      for (const row of rows) {
        if (!verifier.push({ seq: row.seq, format: row.format, prevHash: row.prev_hash, hash: row.hash, record: toRecord(row) })) break;
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

  private appendInTransaction(records: readonly Microtransaction[]): AppendResult {
    const heads = new Map<string, Head>();
    const duplicates: string[] = [];
    let inserted = 0;
    for (const r of records) {
      let head = heads.get(r.node);
      if (head === undefined) {
        const stored = this.headGet.get(r.node);
        head = stored === undefined ? { seq: 0, hash: GENESIS_HASH, dirty: false } : { seq: stored.seq, hash: stored.hash, dirty: false };
        heads.set(r.node, head);
      }
      const hash = chainHash(head.hash, r);
      const info = this.insert.run(
        r.workId, r.account, r.endUser, r.dservice, r.tier, r.miner, r.node, r.receivedAt, r.queueUs, r.execUs, r.cpuUs,
        r.bytesIn, r.bytesOut, r.status, r.resultHash, r.attempts, RECORD_FORMAT, head.hash, hash,
      );
      if (info.changes === 1) {
        head.seq = Number(info.lastInsertRowid);
        head.hash = hash;
        head.dirty = true;
        inserted++;
      } else {
        duplicates.push(r.workId);
      }
    }
    for (const [node, head] of heads) if (head.dirty) this.headPut.run(node, head.seq, head.hash);
    return { inserted, duplicates };
  }

  private assertOpen(): void {
    if (this.closed) throw new CgnError('internal', `the ledger store ${this.path} is closed`);
  }
}

function toRecord(row: Row): Microtransaction {
  return {
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
}
