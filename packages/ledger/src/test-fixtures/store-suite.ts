/**
 * The compliance suite every `LedgerStore` adapter runs (SQLite now, PostgreSQL later):
 *
 * ```ts
 * describeLedgerStore('SqliteLedgerStore', () => sqliteFixture());
 * ```
 *
 * The adapter supplies a fixture per test: a fresh, empty store, a way to reopen it on the same
 * data (restart), a way to tamper with rows behind its back (raw SQL), and cleanup.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { LedgerStore } from '../store.js';
import type { Microtransaction } from '../record.js';
import { arbRecord, makeRecord } from './records.js';

/** Changes made behind the store's back, by raw SQL, bypassing any append-only guard. */
export type Tamper =
  /** Change a recorded field of the row (e.g. its account and execution time). */
  | { kind: 'alter'; workId: string }
  /** Overwrite the row's stored hash. */
  | { kind: 'rehash'; workId: string }
  /** Delete the row. */
  | { kind: 'delete'; workId: string };

export interface LedgerStoreFixture {
  /** The store under test (the latest one after `reopen`). */
  readonly store: LedgerStore;
  /** Closes the store and opens a new one on the same data, as after a process restart. */
  reopen(): Promise<void> | void;
  tamper(change: Tamper): Promise<void> | void;
  /** Closes the store and removes its data. */
  cleanup(): Promise<void> | void;
}

export function describeLedgerStore(name: string, makeStore: () => Promise<LedgerStoreFixture> | LedgerStoreFixture): void {
  describe(`LedgerStore contract: ${name}`, () => {
    const open: LedgerStoreFixture[] = [];
    const fresh = async (): Promise<LedgerStoreFixture> => {
      const f = await makeStore();
      open.push(f);
      return f;
    };
    afterEach(async () => {
      for (const f of open.splice(0)) await f.cleanup();
    });

    it('starts empty', async () => {
      const { store } = await fresh();
      expect(await store.count()).toBe(0);
      expect(await store.get('w_none')).toBeUndefined();
      expect(await store.verifyChain()).toEqual({ ok: true, rows: 0 });
    });

    it('appends batches and reads every record back as written', async () => {
      const { store } = await fresh();
      const records = Array.from({ length: 25 }, (_, i) => makeRecord(i));
      expect(await store.appendBatch(records.slice(0, 10))).toEqual({ inserted: 10, duplicates: [] });
      expect(await store.appendBatch(records.slice(10))).toEqual({ inserted: 15, duplicates: [] });
      expect(await store.appendBatch([])).toEqual({ inserted: 0, duplicates: [] });
      expect(await store.count()).toBe(25);
      for (const r of records) expect(await store.get(r.workId)).toEqual(r);
    });

    it('ignores and reports a work id it already has, keeping the first record', async () => {
      const { store } = await fresh();
      const first = makeRecord(1);
      await store.appendBatch([first, makeRecord(2)]);
      const again = makeRecord(1, { account: 'someone-else', execUs: 999_999 });
      expect(await store.appendBatch([makeRecord(3), again])).toEqual({ inserted: 1, duplicates: [first.workId] });
      expect(await store.count()).toBe(3);
      expect(await store.get(first.workId)).toEqual(first);
      expect(await store.verifyChain()).toEqual({ ok: true, rows: 3 });
    });

    it('ignores a work id repeated within one batch', async () => {
      const { store } = await fresh();
      const r = makeRecord(7);
      expect(await store.appendBatch([r, makeRecord(8), { ...r, status: 500 }])).toEqual({ inserted: 2, duplicates: [r.workId] });
      expect(await store.get(r.workId)).toEqual(r);
      expect(await store.count()).toBe(2);
    });

    it('refuses a batch with a malformed record and writes none of it', async () => {
      const { store } = await fresh();
      const bad = [makeRecord(1), makeRecord(2, { execUs: 1.5 }), makeRecord(3)];
      await expect(async () => store.appendBatch(bad)).rejects.toMatchObject({ code: 'bad_request' });
      await expect(async () => store.appendBatch([makeRecord(4, { tier: 'gold' as Microtransaction['tier'] })])).rejects.toMatchObject({ code: 'bad_request' });
      await expect(async () => store.appendBatch([makeRecord(5, { workId: '' })])).rejects.toMatchObject({ code: 'bad_request' });
      expect(await store.count()).toBe(0);
    });

    it('keeps one hash chain per node, and the chains verify', async () => {
      const { store } = await fresh();
      const nodes = ['node-a', 'node-b', 'node-c'];
      for (let b = 0; b < 5; b++) {
        await store.appendBatch(Array.from({ length: 9 }, (_, i) => makeRecord(b * 9 + i, { node: nodes[(b + i) % 3]! })));
      }
      expect(await store.verifyChain()).toEqual({ ok: true, rows: 45 });
    });

    it('keeps the chain heads across a restart', async () => {
      const f = await fresh();
      await f.store.appendBatch(Array.from({ length: 10 }, (_, i) => makeRecord(i, { node: i % 2 ? 'node-a' : 'node-b' })));
      await f.reopen();
      expect(await f.store.count()).toBe(10);
      // Appending after the restart must link to the last rows written before it.
      await f.store.appendBatch(Array.from({ length: 10 }, (_, i) => makeRecord(10 + i, { node: i % 2 ? 'node-a' : 'node-b' })));
      expect(await f.store.appendBatch([makeRecord(3)])).toEqual({ inserted: 0, duplicates: [makeRecord(3).workId] });
      expect(await f.store.verifyChain()).toEqual({ ok: true, rows: 20 });
    });

    describe('detects tampering', () => {
      const seeded = async (): Promise<LedgerStoreFixture> => {
        const f = await fresh();
        await f.store.appendBatch(Array.from({ length: 20 }, (_, i) => makeRecord(i, { node: i % 2 ? 'node-a' : 'node-b' })));
        expect(await f.store.verifyChain()).toEqual({ ok: true, rows: 20 });
        return f;
      };

      it('a recorded field changed: that row is the first bad one', async () => {
        const f = await seeded();
        await f.tamper({ kind: 'alter', workId: 'w_test_7' });
        expect(await f.store.verifyChain()).toEqual({
          ok: false, rows: 7, firstBad: { reason: 'hash_mismatch', node: 'node-a', seq: expect.any(Number), workId: 'w_test_7' },
        });
      });

      it('a stored hash overwritten: that row is the first bad one', async () => {
        const f = await seeded();
        await f.tamper({ kind: 'rehash', workId: 'w_test_12' });
        const v = await f.store.verifyChain();
        expect(v).toMatchObject({ ok: false, rows: 12, firstBad: { reason: 'hash_mismatch', node: 'node-b', workId: 'w_test_12' } });
      });

      it('a row removed from the middle: the next row of that node no longer links', async () => {
        const f = await seeded();
        await f.tamper({ kind: 'delete', workId: 'w_test_4' });
        expect(await f.store.verifyChain()).toMatchObject({ ok: false, firstBad: { reason: 'broken_link', node: 'node-b', workId: 'w_test_6' } });
      });

      it('the last row removed: the chain head no longer matches', async () => {
        const f = await seeded();
        await f.tamper({ kind: 'delete', workId: 'w_test_19' });
        expect(await f.store.verifyChain()).toMatchObject({ ok: false, rows: 19, firstBad: { reason: 'head_mismatch', node: 'node-a', workId: null } });
      });
    });

    it('property: any sequence of batches (with repeated work ids) -> one row per distinct work id, first record wins, chain verifies', async () => {
      const workIds = fc.constantFrom(...Array.from({ length: 30 }, (_, i) => `w_${i}`));
      const nodes = fc.constantFrom('node-a', 'node-b');
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(arbRecord(workIds, nodes), { maxLength: 12 }), { maxLength: 8 }), async (batches) => {
          const f = await makeStore();
          try {
            const firsts = new Map<string, Microtransaction>();
            let duplicates = 0;
            for (const batch of batches) {
              const seen = new Set(firsts.keys());
              const expectedDups = batch.filter((r) => (seen.has(r.workId) ? true : (seen.add(r.workId), false))).map((r) => r.workId);
              const result = await f.store.appendBatch(batch);
              expect(result).toEqual({ inserted: batch.length - expectedDups.length, duplicates: expectedDups });
              for (const r of batch) if (!firsts.has(r.workId)) firsts.set(r.workId, r);
              duplicates += expectedDups.length;
            }
            expect(await f.store.count()).toBe(firsts.size);
            expect(duplicates).toBe(batches.flat().length - firsts.size);
            for (const [id, r] of firsts) expect(await f.store.get(id)).toEqual(r);
            expect(await f.store.verifyChain()).toEqual({ ok: true, rows: firsts.size });
          } finally {
            await f.cleanup();
          }
        }),
        { numRuns: 60 },
      );
    });

    it('fails clearly once closed; closing twice is harmless', async () => {
      const { store } = await fresh();
      await store.close();
      await store.close();
      await expect(async () => store.appendBatch([makeRecord(1)])).rejects.toThrow(/closed/);
      await expect(async () => store.count()).rejects.toThrow(/closed/);
    });
  });
}
