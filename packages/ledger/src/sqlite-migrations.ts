/**
 * Schema versions of the SQLite ledger. Each migration runs once, in order, in one transaction
 * with its row in `ledger_migrations`; a database written by a newer version is refused rather
 * than misread. Add columns (e.g. the price fields) as a new migration at the end; never edit
 * one that has shipped.
 */
import type Database from 'better-sqlite3';

export interface SqliteMigration {
  version: number;
  name: string;
  sql: string;
}

/** Columns covered by the hash chain (and the chain itself): an UPDATE of any is refused. */
const SEALED_COLUMNS =
  'seq, work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us, ' +
  'bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash';

export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'microtransactions with per-node hash chain',
    sql: `
      CREATE TABLE microtransactions (
        seq         INTEGER PRIMARY KEY,       -- append order; the chain follows it
        work_id     TEXT    NOT NULL UNIQUE,   -- the record's key: one row per work unit
        account     TEXT    NOT NULL,
        end_user    TEXT,
        dservice    TEXT    NOT NULL,
        tier        TEXT    NOT NULL,
        miner       TEXT    NOT NULL,
        node        TEXT    NOT NULL,
        received_at INTEGER NOT NULL,          -- epoch ms
        queue_us    INTEGER NOT NULL,
        exec_us     INTEGER NOT NULL,
        cpu_us      INTEGER NOT NULL,
        bytes_in    INTEGER NOT NULL,
        bytes_out   INTEGER NOT NULL,
        status      INTEGER NOT NULL,
        result_hash TEXT,
        attempts    INTEGER NOT NULL,
        format      INTEGER NOT NULL,          -- canonical encoding version (chain.ts)
        prev_hash   BLOB    NOT NULL,          -- hash of the node's previous row, zeros for its first
        hash        BLOB    NOT NULL           -- sha256(prev_hash || canonical encoding)
      ) STRICT;

      CREATE TABLE chain_heads (
        node TEXT    PRIMARY KEY,
        seq  INTEGER NOT NULL,                 -- the node's last row
        hash BLOB    NOT NULL
      ) STRICT;

      -- Append-only: refuse to rewrite or delete records. (Whoever can drop a trigger can get
      -- past this; the hash chain is what detects it.)
      CREATE TRIGGER microtransactions_no_update BEFORE UPDATE OF ${SEALED_COLUMNS} ON microtransactions
        BEGIN SELECT RAISE(ABORT, 'microtransactions are append-only'); END;
      CREATE TRIGGER microtransactions_no_delete BEFORE DELETE ON microtransactions
        BEGIN SELECT RAISE(ABORT, 'microtransactions are append-only'); END;
    `,
  },
];

/** Brings the schema up to date; returns the schema version. */
export function migrate(db: Database.Database, migrations: readonly SqliteMigration[] = SQLITE_MIGRATIONS): number {
  db.exec(`CREATE TABLE IF NOT EXISTS ledger_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const latest = migrations.reduce((v, m) => Math.max(v, m.version), 0);
  const run = db.transaction((): number => {
    const row = db.prepare('SELECT MAX(version) AS v FROM ledger_migrations').get() as { v: number | null };
    const current = row.v ?? 0;
    if (current > latest) {
      throw new Error(`ledger schema version ${current} is newer than this software understands (${latest}); upgrade @cgn/ledger`);
    }
    const record = db.prepare('INSERT INTO ledger_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }
    return Math.max(current, latest);
  });
  return run.immediate();
}
