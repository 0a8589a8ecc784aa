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

/** Version 2 adds the billing columns; they are sealed too. */
const SEALED_COLUMNS_V2 = `${SEALED_COLUMNS}, cycle, price_micros, split_bps, developer, operator, charity, tokens, parts`;

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
  {
    version: 2,
    name: 'pricing, billing cycles, batches, payouts, balances, addresses, idempotency',
    sql: `
      -- Billing columns. Rows written before this migration (format 1) belong to cycle 1 and are unpriced.
      ALTER TABLE microtransactions ADD COLUMN cycle        INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE microtransactions ADD COLUMN price_micros TEXT;      -- decimal fiat micro-units
      ALTER TABLE microtransactions ADD COLUMN split_bps    TEXT;      -- "miner/developer/operator/charity" basis points
      ALTER TABLE microtransactions ADD COLUMN developer    TEXT;
      ALTER TABLE microtransactions ADD COLUMN operator     TEXT;
      ALTER TABLE microtransactions ADD COLUMN charity      TEXT;
      ALTER TABLE microtransactions ADD COLUMN tokens       TEXT;      -- decimal token base units at the cycle's rate
      ALTER TABLE microtransactions ADD COLUMN parts        TEXT;      -- "m/d/o/c" token parts, sum = tokens

      DROP TRIGGER microtransactions_no_update;
      CREATE TRIGGER microtransactions_no_update BEFORE UPDATE OF ${SEALED_COLUMNS_V2} ON microtransactions
        BEGIN SELECT RAISE(ABORT, 'microtransactions are append-only'); END;

      CREATE TABLE cycles (
        id           INTEGER PRIMARY KEY,
        opened_at    INTEGER NOT NULL,
        rate_num     TEXT    NOT NULL,        -- token base units per fiat micro-unit = num / den
        rate_den     TEXT    NOT NULL,
        after_seq    INTEGER NOT NULL,        -- records of this cycle have seq > after_seq ...
        last_seq     INTEGER,                 -- ... and <= last_seq (set when it closes)
        closed_at    INTEGER,
        sealed_at    INTEGER,
        records      INTEGER,
        priced       INTEGER,
        price_micros TEXT,
        tokens       TEXT,
        batch_size   INTEGER,
        batches      INTEGER,
        records_root TEXT,
        payout_root  TEXT
      ) STRICT;
      INSERT INTO cycles (id, opened_at, rate_num, rate_den, after_seq) VALUES (1, CAST(strftime('%s', 'now') AS INTEGER) * 1000, '1', '1', 0);

      CREATE TABLE cycle_debits (
        cycle INTEGER NOT NULL, account TEXT NOT NULL, records INTEGER NOT NULL, price_micros TEXT NOT NULL, tokens TEXT NOT NULL,
        PRIMARY KEY (cycle, account)
      ) STRICT;
      CREATE TABLE cycle_credits (
        cycle INTEGER NOT NULL, role TEXT NOT NULL, beneficiary TEXT NOT NULL, address TEXT NOT NULL, tokens TEXT NOT NULL, records INTEGER NOT NULL,
        PRIMARY KEY (cycle, role, beneficiary)
      ) STRICT;
      CREATE TABLE batches (
        cycle INTEGER NOT NULL, idx INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, records INTEGER NOT NULL, root TEXT NOT NULL,
        PRIMARY KEY (cycle, idx)
      ) STRICT;
      CREATE TABLE payouts (
        cycle INTEGER NOT NULL, address TEXT NOT NULL, amount TEXT NOT NULL, proof TEXT NOT NULL,  -- proof: JSON array of 0x hex
        PRIMARY KEY (cycle, address)
      ) STRICT;

      CREATE TABLE addresses (
        role TEXT NOT NULL, id TEXT NOT NULL, address TEXT NOT NULL, registered_at INTEGER NOT NULL,
        PRIMARY KEY (role, id)
      ) STRICT;

      CREATE TABLE balances (
        account   TEXT PRIMARY KEY,
        deposited TEXT NOT NULL DEFAULT '0',  -- token base units
        spent     TEXT NOT NULL DEFAULT '0'   -- sum of the account's record tokens, kept by appends
      ) STRICT;
      CREATE TABLE deposits (
        id INTEGER PRIMARY KEY, account TEXT NOT NULL, amount TEXT NOT NULL, memo TEXT, at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE idempotency (
        account     TEXT    NOT NULL,
        key         TEXT    NOT NULL,
        fingerprint TEXT    NOT NULL,
        work_id     TEXT    NOT NULL,
        state       TEXT    NOT NULL,         -- pending | done
        status      INTEGER,
        headers     TEXT,                     -- JSON [[name, value], ...]
        body        BLOB,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        PRIMARY KEY (account, key)
      ) STRICT;
      CREATE INDEX idempotency_expiry ON idempotency (expires_at);
    `,
  },
  {
    version: 3,
    name: 'escrow: account addresses, chain deposits, withdrawals, cycle anchors',
    sql: `
      CREATE TABLE account_addresses (
        address   TEXT PRIMARY KEY,           -- lowercase 0x address
        account   TEXT NOT NULL,
        linked_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX account_addresses_account ON account_addresses (account);
      CREATE TABLE chain_deposits (
        ref         TEXT PRIMARY KEY,         -- txHash:logIndex of the Deposited event: credited once
        address     TEXT NOT NULL,
        amount      TEXT NOT NULL,            -- token base units
        block       TEXT NOT NULL,
        account     TEXT,                     -- null until the address is linked (then credited)
        recorded_at INTEGER NOT NULL,
        credited_at INTEGER
      ) STRICT;
      CREATE INDEX chain_deposits_address ON chain_deposits (address);
      CREATE TABLE withdrawals (
        id           INTEGER PRIMARY KEY,
        account      TEXT NOT NULL,
        address      TEXT NOT NULL,
        amount       TEXT NOT NULL,           -- debited from the balance when requested
        requested_at INTEGER NOT NULL,
        cycle        INTEGER,                 -- the anchored cycle it is posted for
        posted_at    INTEGER,
        tx           TEXT
      ) STRICT;
      CREATE TABLE cycle_anchors (
        cycle       INTEGER PRIMARY KEY,
        tx          TEXT,
        anchored_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 4,
    name: 'microtransactions keep the CPU time a miner reported when less was billed (record format 3)',
    sql: `
      ALTER TABLE microtransactions ADD COLUMN reported_cpu_us INTEGER;  -- null: billed as reported
    `,
  },
  {
    version: 5,
    name: 'held credits: earnings of beneficiaries without an address are kept owed, not paid to a placeholder',
    sql: `
      ALTER TABLE cycles        ADD COLUMN held     TEXT;                       -- of tokens, held (not in the payout tree)
      ALTER TABLE cycles        ADD COLUMN released TEXT;                       -- held in earlier cycles, paid in this one
      ALTER TABLE cycle_debits  ADD COLUMN held     TEXT NOT NULL DEFAULT '0';
      ALTER TABLE cycle_debits  ADD COLUMN released TEXT NOT NULL DEFAULT '0';
      ALTER TABLE cycle_credits ADD COLUMN held     TEXT NOT NULL DEFAULT '0';
      ALTER TABLE cycle_credits ADD COLUMN released TEXT NOT NULL DEFAULT '0';
      CREATE TABLE held_credits (
        cycle       INTEGER NOT NULL,         -- the cycle whose records earned it
        account     TEXT    NOT NULL,         -- whose records (its escrow pays it when released)
        role        TEXT    NOT NULL,
        beneficiary TEXT    NOT NULL,
        tokens      TEXT    NOT NULL,
        released_in INTEGER,                  -- the cycle that paid it; null while held
        PRIMARY KEY (cycle, account, role, beneficiary)
      ) STRICT;
      CREATE INDEX held_credits_pending ON held_credits (role, beneficiary) WHERE released_in IS NULL;
    `,
  },
  {
    version: 6,
    name: 'the cycle closer: one scheduler closes cycles (cgn settle), a manual close asks it',
    sql: `
      CREATE TABLE cycle_closer (
        id                 INTEGER PRIMARY KEY CHECK (id = 1),
        holder             TEXT    NOT NULL,  -- who closes cycles on a schedule (e.g. "cgn settle")
        pid                INTEGER NOT NULL,
        host               TEXT    NOT NULL,
        every_ms           INTEGER,           -- its period, if any
        heartbeat_at       INTEGER NOT NULL,  -- epoch ms; the lease lapses ttl_ms after it
        ttl_ms             INTEGER NOT NULL,
        close_requested_at INTEGER            -- a manual close asked it to close now
      ) STRICT;
    `,
  },
  {
    version: 7,
    name: "a cycle's rate source: where its token rate came from and when it was read",
    sql: `
      ALTER TABLE cycles ADD COLUMN rate_source     TEXT;     -- file:PATH, a URL, or manual; null: not recorded
      ALTER TABLE cycles ADD COLUMN rate_fetched_at INTEGER;  -- epoch ms
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
