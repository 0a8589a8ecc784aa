/**
 * The shared store suite on PostgreSQL: one throwaway cluster (temp dir, free port) for the
 * file, a fresh schema per fixture. Skipped, saying why, only when the PostgreSQL server binaries
 * are not installed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPostgresBin, startPostgresCluster, type PostgresCluster } from './pg-cluster.js';
import { PostgresLedgerStore } from './pg-store.js';
import type { Durability } from './store.js';
import { describeLedgerStore, type LedgerStoreFixture, type Tamper } from './test-fixtures/store-suite.js';
import { makeRecord } from './test-fixtures/records.js';

const bin = findPostgresBin();
if (bin === null) {
  describe('PostgresLedgerStore', () => {
    it.skip('SKIPPED: PostgreSQL server binaries (initdb, pg_ctl) are not installed; apt-get install postgresql to run these tests', () => {});
  });
} else {
  let cluster: PostgresCluster | undefined;
  let n = 0;
  beforeAll(async () => {
    cluster = await startPostgresCluster({ fsync: false });
  });
  afterAll(() => cluster?.stop());

  const pgFixture = async (durability: Durability = 'normal'): Promise<LedgerStoreFixture & { readonly store: PostgresLedgerStore }> => {
    const schema = `t_${process.pid}_${n++}`;
    const url = cluster!.url;
    // Every close builds its batch trees on a worker thread here (the SQLite suite builds them in
    // the reading thread), so the pinned roots hold both ways.
    let store = await PostgresLedgerStore.open({ url, schema, durability, max: 2, treeWorkerFrom: 0 });
    return {
      get store() {
        return store;
      },
      async reopen() {
        await store.close();
        store = await PostgresLedgerStore.open({ url, schema, durability, max: 2, treeWorkerFrom: 0 });
      },
      async tamper(change: Tamper) {
        const sql = store.raw;
        await sql.begin(async (tx) => {
          await tx`ALTER TABLE microtransactions DISABLE TRIGGER microtransactions_no_change`;
          const r =
            change.kind === 'alter'
              ? await tx`UPDATE microtransactions SET account = account || '-x', exec_us = exec_us + 1 WHERE work_id = ${change.workId}`
              : change.kind === 'rehash'
                ? await tx`UPDATE microtransactions SET hash = decode(md5(random()::text) || md5(random()::text), 'hex') WHERE work_id = ${change.workId}`
                : await tx`DELETE FROM microtransactions WHERE work_id = ${change.workId}`;
          expect(r.count).toBe(1);
          await tx`ALTER TABLE microtransactions ENABLE TRIGGER microtransactions_no_change`;
        });
      },
      async cleanup() {
        const sql = store.raw;
        try {
          await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        } catch {
          // closed already
        }
        await store.close();
      },
    };
  };

  describeLedgerStore('PostgresLedgerStore (normal)', () => pgFixture('normal'));

  describe('PostgresLedgerStore specifics', () => {
    it('sets synchronous_commit from the durability, refuses UPDATE/DELETE of records', async () => {
      const full = await pgFixture('full');
      const normal = await pgFixture('normal');
      try {
        expect((await full.store.raw`SHOW synchronous_commit`)[0]).toEqual({ synchronous_commit: 'on' });
        expect((await normal.store.raw`SHOW synchronous_commit`)[0]).toEqual({ synchronous_commit: 'off' });
        await full.store.appendBatch([makeRecord(1)]);
        await expect(full.store.raw`UPDATE microtransactions SET account = 'x'`).rejects.toThrow(/append-only/);
        await expect(full.store.raw`DELETE FROM microtransactions`).rejects.toThrow(/append-only/);
        expect(await full.store.verifyChain()).toEqual({ ok: true, rows: 1 });
      } finally {
        await full.cleanup();
        await normal.cleanup();
      }
    });

    it('two stores (two nodes) appending concurrently to one ledger keep every chain intact', async () => {
      const a = await pgFixture();
      const b = await PostgresLedgerStore.open({ url: cluster!.url, schema: (a.store as PostgresLedgerStore).schema, max: 2 });
      try {
        await Promise.all(
          Array.from({ length: 20 }, (_, k) =>
            (k % 2 ? a.store : b).appendBatch(Array.from({ length: 20 }, (_, i) => makeRecord(k * 20 + i, { node: k % 2 ? 'node-a' : 'node-b' }))),
          ),
        );
        expect(await a.store.verifyChain()).toEqual({ ok: true, rows: 400 });
      } finally {
        await b.close();
        await a.cleanup();
      }
    });
  });
}
