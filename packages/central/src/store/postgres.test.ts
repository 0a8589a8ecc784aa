/**
 * The shared central store suite on PostgreSQL: one throwaway cluster (temp dir, free port) for
 * the file, a fresh schema per fixture. Skipped, saying why, only when the PostgreSQL server
 * binaries are not installed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPostgresBin, startPostgresCluster, type PostgresCluster } from '@cgn/ledger';
import { PostgresCentralStore } from './postgres.js';
import { runCentralFromArgs } from '../cli/central.js';
import type { CliIo } from '../cli/common.js';
import { describeCentralStore, type StoreFixture } from '../test-fixtures/store-suite.js';

const bin = findPostgresBin();
if (bin === null) {
  describe('PostgresCentralStore', () => {
    it.skip('SKIPPED: PostgreSQL server binaries (initdb, pg_ctl) are not installed; apt-get install postgresql to run these tests', () => {});
  });
} else {
  let cluster: PostgresCluster | undefined;
  let n = 0;
  beforeAll(async () => {
    cluster = await startPostgresCluster({ fsync: false });
  }, 120_000);
  afterAll(() => cluster?.stop());

  const pgFixture = async (): Promise<StoreFixture & { readonly store: PostgresCentralStore; readonly schema: string }> => {
    const schema = `c_${process.pid}_${n++}`;
    const url = cluster!.url;
    let store = await PostgresCentralStore.open({ url, schema, max: 4 });
    return {
      schema,
      get store() {
        return store;
      },
      async reopen() {
        await store.close();
        store = await PostgresCentralStore.open({ url, schema, max: 4 });
        return store;
      },
      async cleanup() {
        await store.close();
        const admin = await PostgresCentralStore.open({ url, schema: 'public', max: 1 });
        try {
          await admin.raw.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        } finally {
          await admin.close();
        }
      },
    };
  };

  describeCentralStore('PostgresCentralStore', pgFixture);

  describe('PostgresCentralStore specifics', () => {
    it('refuses audit edits, refuses a newer schema, and keeps schemas apart', async () => {
      const f = await pgFixture();
      const other = await pgFixture();
      try {
        const s = f.store;
        expect(await s.appendAudit({ at: 1, type: 't', actor: 'a', accountId: null, subject: null, ip: null, outcome: 'ok', details: {} })).toBe(1);
        await expect(s.raw`UPDATE audit SET actor = 'x'`).rejects.toThrow(/append-only/);
        await expect(s.raw`DELETE FROM audit`).rejects.toThrow(/append-only/);
        await expect(s.raw`TRUNCATE audit`).rejects.toThrow(/append-only/);
        expect(await s.queryAudit({})).toHaveLength(1);
        expect(await other.store.queryAudit({})).toHaveLength(0);
        await s.raw`INSERT INTO central_migrations (version, name, applied_at) VALUES (99, 'future', 0)`;
        await expect(PostgresCentralStore.open({ url: cluster!.url, schema: f.schema })).rejects.toThrow(/newer/);
      } finally {
        await f.cleanup();
        await other.cleanup();
      }
    });

    it('a unique violation throws and leaves nothing half-written; two opens migrate once', async () => {
      const f = await pgFixture();
      const again = await PostgresCentralStore.open({ url: cluster!.url, schema: f.schema, max: 1 });
      try {
        const s = f.store;
        await s.createAccount({ id: 'a1', name: 'acme', kinds: ['enterprise'], allowedRegions: null, disabled: false, createdAt: 1 });
        await expect(again.createAccount({ id: 'a2', name: 'acme', kinds: ['enterprise'], allowedRegions: null, disabled: false, createdAt: 1 }))
          .rejects.toMatchObject({ code: '23505' });
        expect(await again.listAccounts()).toHaveLength(1);
        expect(await s.raw`SELECT version FROM central_migrations`).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]); // each migration once
      } finally {
        await again.close();
        await f.cleanup();
      }
    });

    it('cgn central --postgres runs central on PostgreSQL and keeps its data across restarts', async () => {
      const schema = `cli_${process.pid}`;
      const io = (): { io: CliIo; out: () => string; err: () => string } => {
        let out = '';
        let err = '';
        return {
          io: {
            stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) },
            readStdin: async () => '', prompt: async () => null, env: { CGN_LOG_LEVEL: 'silent' }, cwd: cluster!.dir,
          },
          out: () => out,
          err: () => err,
        };
      };
      const args = ['--port', '0', '--no-link', '--postgres', cluster!.url, '--postgres-schema', schema];
      const m1 = io();
      const c1 = await runCentralFromArgs(args, m1.io);
      expect(c1, m1.err()).not.toBeNull();
      try {
        expect(c1!.store).toBeInstanceOf(PostgresCentralStore);
        expect(c1!.adminCreated).toBe(true);
        const ready = JSON.parse(m1.out().trim()) as { url: string; admin: { login: string; password: string } };
        expect(ready.admin.login).toBe('admin');
        const res = await fetch(`${ready.url}/openapi.json`);
        expect(res.status).toBe(200);
      } finally {
        await c1!.stop();
      }
      const m2 = io();
      const c2 = await runCentralFromArgs(args, m2.io);
      expect(c2, m2.err()).not.toBeNull();
      try {
        expect(c2!.adminCreated).toBe(false); // the administrator is still there
        expect(await c2!.store.countUsers()).toBe(1);
        expect((await c2!.store.queryAudit({})).length).toBeGreaterThan(0);
      } finally {
        await c2!.stop();
      }
      const bad = io();
      expect(await runCentralFromArgs(['--postgres', cluster!.url, '--data-dir', 'x'], bad.io)).toBeNull();
      expect(bad.err()).toMatch(/do not go together/);
      const bad2 = io();
      expect(await runCentralFromArgs(['--postgres-schema', 'x'], bad2.io)).toBeNull();
      expect(bad2.err()).toMatch(/needs --postgres/);
    });

    it('rejects a schema name that is not a plain identifier', async () => {
      await expect(PostgresCentralStore.open({ url: cluster!.url, schema: 'x; DROP' })).rejects.toThrow(/identifier/);
    });
  });
}
