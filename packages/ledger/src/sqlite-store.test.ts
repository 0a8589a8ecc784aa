import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SqliteLedgerStore } from './sqlite-store.js';
import type { Durability } from './store.js';
import { describeLedgerStore, type LedgerStoreFixture, type Tamper } from './test-fixtures/store-suite.js';
import { arbRecord, makePricedRecord, makeRecord } from './test-fixtures/records.js';
import { SQLITE_MIGRATIONS, migrate } from './sqlite-migrations.js';
import { GENESIS_HASH, chainHash, chainStepV2, encodeV2 } from './chain.js';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import type { Microtransaction } from './record.js';
import { CycleAccumulator, verifyRecordProof } from './billing.js';
import { decodeParts } from './record.js';

const LATEST = SQLITE_MIGRATIONS.at(-1)!.version;

function tempDir(): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), 'cgn-ledger-test-'));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** A fresh SQLite ledger file in its own temp dir; tampering goes through a second, raw connection. */
function sqliteFixture(durability: Durability = 'normal'): LedgerStoreFixture {
  const dir = tempDir();
  const path = join(dir.path, 'ledger.sqlite');
  let store = new SqliteLedgerStore({ path, durability });
  const raw = (fn: (db: Database.Database) => void): void => {
    const db = new Database(path);
    try {
      // The append-only triggers stop honest mistakes; a tamperer drops them first.
      db.exec('DROP TRIGGER IF EXISTS microtransactions_no_update; DROP TRIGGER IF EXISTS microtransactions_no_delete;');
      fn(db);
    } finally {
      db.close();
    }
  };
  return {
    get store() {
      return store;
    },
    reopen() {
      store.close();
      store = new SqliteLedgerStore({ path, durability });
    },
    tamper(change: Tamper) {
      raw((db) => {
        const sql = {
          alter: 'UPDATE microtransactions SET account = account || \'-x\', exec_us = exec_us + 1 WHERE work_id = ?',
          rehash: 'UPDATE microtransactions SET hash = randomblob(32) WHERE work_id = ?',
          delete: 'DELETE FROM microtransactions WHERE work_id = ?',
        }[change.kind];
        expect(db.prepare(sql).run(change.workId).changes).toBe(1);
      });
    },
    cleanup() {
      store.close();
      dir.cleanup();
    },
  };
}

describeLedgerStore('SqliteLedgerStore (normal)', () => sqliteFixture('normal'));
describeLedgerStore('SqliteLedgerStore (full)', () => sqliteFixture('full'));

describe('SqliteLedgerStore specifics', () => {
  const dirs: { cleanup(): void }[] = [];
  const newPath = (): string => {
    const d = tempDir();
    dirs.push(d);
    return join(d.path, 'sub', 'ledger.sqlite');
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) d.cleanup();
  });

  // The close reads its rows in chunks that SQLite aggregates into two values (hashes, and rows
  // with length-prefixed fields); an id holding a NUL (only rows from before records refused one)
  // sends it to the general reader. Either way: what push() makes of the same rows read column by column.
  it('property: the chunked cycle read closes a cycle as push() of the same rows does, whatever the ids hold, trees built here or on a worker', () => {
    const id = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).map((x) => x.replaceAll('\u0000', '0'));
    fc.assert(
      fc.property(
        fc.array(fc.record({ account: id, miner: fc.stringMatching(/^[0-9a-f]{1,64}$/), developer: id, operator: id, charity: id, price: fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 6n }), fc.bigInt({ min: 0n, max: 2n ** 63n - 1n })), priced: fc.boolean() }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 9 }),
        fc.boolean(),
        fc.boolean(),
        (rows, batchSize, oldNul, worker) => {
          const path = newPath();
          // With treeWorkerFrom 0 the batch trees are built on a worker thread.
          const store = new SqliteLedgerStore({ path, treeWorkerFrom: worker ? 0 : Infinity });
          store.appendBatch(rows.map((r, i) => makeRecord(i, {
            account: r.account, miner: r.miner,
            ...(r.priced ? { pricing: { priceMicros: r.price, split: { miner: 7000, developer: 2000, operator: 900, charity: 100 }, developer: r.developer, operator: r.operator, charity: r.charity } } : {}),
          })));
          const db = new Database(path);
          if (oldNul) {
            db.exec('DROP TRIGGER IF EXISTS microtransactions_no_update');
            db.prepare("UPDATE microtransactions SET account = account || char(0) || 'x' WHERE seq = (SELECT max(seq) FROM microtransactions)").run();
          }
          const want = new CycleAccumulator(batchSize);
          const raw = db.prepare('SELECT seq, account, miner, price_micros, tokens, parts, developer, operator, charity, hash FROM microtransactions ORDER BY seq').raw().all() as unknown[][];
          db.close();
          for (const r of raw) {
            want.push({
              seq: r[0] as number, account: r[1] as string, miner: r[2] as string, priceMicros: r[3] === null ? null : BigInt(r[3] as string),
              tokens: r[4] === null ? null : BigInt(r[4] as string), parts: r[5] === null ? null : decodeParts(r[5] as string),
              developer: r[6] as string | null, operator: r[7] as string | null, charity: r[8] as string | null, hash: r[9] as Buffer,
            });
          }
          const w = want.finish(1, { registered: new Map(), held: [] });
          const got = store.closeCycle({ batchSize });
          expect({ records: got.records, priced: got.pricedRecords, price: got.priceMicros, tokens: got.tokens, root: got.recordsRoot, payout: got.payoutRoot })
            .toEqual({ records: w.records, priced: w.pricedRecords, price: w.priceMicros, tokens: w.tokens, root: w.recordsRoot, payout: w.payoutRoot });
          const sorted = (xs: unknown[][]): string[] => xs.map((x) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))).sort();
          expect(sorted(store.debits(1).map((d) => [d.account, d.tokens, d.records]))).toEqual(sorted(w.debits.map((d) => [d.account, d.tokens, d.records])));
          expect(sorted(store.credits(1).map((c) => [c.role, c.beneficiary, c.tokens]))).toEqual(sorted(w.credits.map((c) => [c.role, c.beneficiary, c.tokens])));
          store.close();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('uses WAL, and synchronous NORMAL by default or FULL for durability "full"', () => {
    const normal = new SqliteLedgerStore({ path: newPath() });
    const full = new SqliteLedgerStore({ path: newPath(), durability: 'full' });
    expect(normal.settings()).toEqual({ journalMode: 'wal', synchronous: 'normal', schemaVersion: LATEST });
    expect(full.settings()).toEqual({ journalMode: 'wal', synchronous: 'full', schemaVersion: LATEST });
    normal.close();
    full.close();
  });

  it('records its schema version in ledger_migrations and applies each migration once', () => {
    const path = newPath();
    new SqliteLedgerStore({ path }).close();
    new SqliteLedgerStore({ path }).close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT version, name FROM ledger_migrations').all()).toEqual(SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: expect.any(String) })));
    db.close();
  });

  it('refuses a database written by a newer schema', () => {
    const path = newPath();
    new SqliteLedgerStore({ path }).close();
    const db = new Database(path);
    db.prepare('INSERT INTO ledger_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('from the future');
    db.close();
    expect(() => new SqliteLedgerStore({ path })).toThrow(/schema version 99 is newer/);
  });

  it('refuses UPDATE and DELETE of records through plain SQL (append-only)', () => {
    const path = newPath();
    const store = new SqliteLedgerStore({ path });
    store.appendBatch([makeRecord(1)]);
    const db = new Database(path);
    expect(() => db.prepare("UPDATE microtransactions SET account = 'x'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM microtransactions').run()).toThrow(/append-only/);
    db.close();
    expect(store.verifyChain()).toEqual({ ok: true, rows: 1 });
    store.close();
  });

  it('keeps work_id unique in the schema itself', () => {
    const path = newPath();
    const store = new SqliteLedgerStore({ path });
    store.appendBatch([makeRecord(1)]);
    const db = new Database(path);
    expect(() => db.prepare('INSERT INTO microtransactions SELECT NULL, work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us, bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash, cycle, price_micros, split_bps, developer, operator, charity, tokens, parts, reported_cpu_us FROM microtransactions').run()).toThrow(/UNIQUE/);
    db.close();
    store.close();
  });

  it('rolls a failed batch back whole, and the chain stays intact', () => {
    const path = newPath();
    const store = new SqliteLedgerStore({ path });
    store.appendBatch([makeRecord(1), makeRecord(2)]);
    // Make the chain-head write fail inside the transaction, after the rows were inserted.
    const db = new Database(path);
    db.exec("CREATE TRIGGER fail_heads BEFORE UPDATE ON chain_heads BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;");
    expect(() => store.appendBatch([makeRecord(3), makeRecord(4)])).toThrow(/disk on fire/);
    db.exec('DROP TRIGGER fail_heads');
    db.close();
    expect(store.count()).toBe(2);
    expect(store.get(makeRecord(3).workId)).toBeUndefined();
    store.appendBatch([makeRecord(3)]);
    expect(store.verifyChain()).toEqual({ ok: true, rows: 3 });
    store.close();
  });

  it('migrates a version-1 ledger: format-1 rows keep verifying next to format-2 rows, join cycle 1 and get proofs', () => {
    const path = newPath();
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    migrate(db, SQLITE_MIGRATIONS.slice(0, 1));
    let prev: Buffer = GENESIS_HASH;
    const old = Array.from({ length: 5 }, (_, i) => makeRecord(i));
    const ins = db.prepare(`INSERT INTO microtransactions (work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us,
      bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`);
    let seq = 0;
    for (const r of old) {
      const h = chainHash(prev, r, 1);
      seq = Number(ins.run(r.workId, r.account, r.endUser, r.dservice, r.tier, r.miner, r.node, r.receivedAt, r.queueUs, r.execUs, r.cpuUs, r.bytesIn, r.bytesOut, r.status, r.resultHash, r.attempts, prev, h).lastInsertRowid);
      prev = h;
    }
    db.prepare('INSERT INTO chain_heads (node, seq, hash) VALUES (?, ?, ?)').run('node-a', seq, prev);
    db.close();

    const store = new SqliteLedgerStore({ path });
    expect(store.settings().schemaVersion).toBe(LATEST);
    expect(store.verifyChain()).toEqual({ ok: true, rows: 5 });
    expect(store.getRow(old[0]!.workId)).toMatchObject({ format: 1, billing: null });
    store.appendBatch([makePricedRecord(10), makePricedRecord(11)]);
    expect(store.getRow(makePricedRecord(10).workId)?.format).toBe(2);
    expect(store.verifyChain()).toEqual({ ok: true, rows: 7 });
    const summary = store.closeCycle({ batchSize: 3 });
    expect(summary).toMatchObject({ records: 7, pricedRecords: 2, batches: 3 });
    for (const id of [old[0]!.workId, makePricedRecord(11).workId]) {
      expect(verifyRecordProof(store.recordProof(id)!, summary.recordsRoot)).toMatchObject({ ok: true });
    }
    store.close();
  });

  it('opens read-only for reports without writing', () => {
    const path = newPath();
    const w = new SqliteLedgerStore({ path });
    w.appendBatch([makePricedRecord(1)]);
    w.close();
    const r = new SqliteLedgerStore({ path, readonly: true });
    expect(r.count()).toBe(1);
    expect(() => r.appendBatch([makeRecord(2)])).toThrow(/readonly/);
    r.close();
  });

  it('works in memory', () => {
    const store = new SqliteLedgerStore({ path: ':memory:' });
    store.appendBatch([makeRecord(1), makeRecord(1)]);
    expect(store.count()).toBe(1);
    expect(store.verifyChain()).toEqual({ ok: true, rows: 1 });
    store.close();
  });

  it('checks its options', () => {
    expect(() => new SqliteLedgerStore({ path: '' })).toThrow(/option path/);
    expect(() => new SqliteLedgerStore({ path: ':memory:', durability: 'extra' as Durability })).toThrow(/option durability/);
  });
});

describe('format-2 chain step (the stores\' write path)', () => {
  // Format 3 (a kept report) is format 2's array with its tag changed and the report appended.
  const json = (tx: Microtransaction, cycle: number, p: string[] | null, c: string[] | null): string =>
    JSON.stringify([tx.reportedCpuUs === undefined ? 'cgn.mtx.2' : 'cgn.mtx.3', tx.workId, tx.account, tx.endUser, tx.dservice, tx.tier, tx.miner, tx.node, tx.receivedAt, tx.queueUs, tx.execUs, tx.cpuUs,
      tx.bytesIn, tx.bytesOut, tx.status, tx.resultHash, tx.attempts, cycle, p, c, ...(tx.reportedCpuUs === undefined ? [] : [tx.reportedCpuUs])]);
  const anyText = fc.string({ unit: 'binary', maxLength: 12 });
  it('property: encodeV2 is JSON.stringify of the fields, and chainStepV2 hashes hex(prev) + it', () => {
    fc.assert(
      fc.property(
        arbRecord(anyText, anyText), fc.nat({ max: 1000 }), fc.option(fc.tuple(anyText, anyText, anyText, anyText, anyText), { nil: null }),
        fc.option(fc.tuple(anyText, anyText), { nil: null }), fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (tx, cycle, p, c, prev) => {
          const charge = p === null ? null : c;
          const args = [p?.[0] ?? null, p?.[1] ?? '', p?.[2] ?? '', p?.[3] ?? '', p?.[4] ?? '', charge?.[0] ?? null, charge?.[1] ?? ''] as const;
          const enc = json(tx, cycle, p, charge);
          expect(encodeV2(tx, cycle, ...args)).toBe(enc);
          const prevHex = Buffer.from(prev).toString('hex');
          expect(chainStepV2(prevHex, tx, cycle, ...args)).toBe(createHash('sha256').update(prevHex + enc, 'utf8').digest('hex'));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
