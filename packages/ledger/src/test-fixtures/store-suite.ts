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
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { BillingLedgerStore } from '../store.js';
import type { Microtransaction } from '../record.js';
import { verifyPayoutProof, verifyRecordProof, type CycleSummary } from '../billing.js';
import { BENEFICIARIES } from '../pricing/split.js';
import { arbPricing, arbRecord, makePricedRecord, makePricing, makeRecord } from './records.js';

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
  readonly store: BillingLedgerStore;
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

    describe('pricing and charges', () => {
      it('fixes cycle, tokens and split of a priced record inside the append, covered by the chain', async () => {
        const { store } = await fresh();
        await store.setRate({ num: 3n, den: 2n });
        const r = makePricedRecord(1, { pricing: { ...makePricedRecord(1).pricing!, priceMicros: 1001n } });
        await store.appendBatch([r, makeRecord(2)]);
        expect(await store.get(r.workId)).toEqual(r);
        const row = await store.getRow(r.workId);
        expect(row?.format).toBe(2);
        expect(row?.billing).toEqual({ cycle: 1, charge: { cycle: 1, tokens: 1501n, parts: { miner: 1051n, developer: 300n, operator: 135n, charity: 15n } } });
        expect((await store.getRow(makeRecord(2).workId))?.billing).toEqual({ cycle: 1, charge: null });
        expect(await store.verifyChain()).toEqual({ ok: true, rows: 2 });
        await expect(async () => store.setRate({ num: 1n, den: 1n })).rejects.toThrow(/fixed/);
      });

      it('refuses malformed pricing, writing nothing', async () => {
        const { store } = await fresh();
        const bad = makePricedRecord(1, { pricing: { ...makePricedRecord(1).pricing!, split: { miner: 5000, developer: 5000, operator: 1, charity: 0 } } });
        await expect(async () => store.appendBatch([makePricedRecord(0), bad])).rejects.toMatchObject({ code: 'bad_request' });
        const neg = makePricedRecord(2, { pricing: { ...makePricedRecord(2).pricing!, priceMicros: -1n } });
        await expect(async () => store.appendBatch([neg])).rejects.toMatchObject({ code: 'bad_request' });
        expect(await store.count()).toBe(0);
      });

      it('keeps each account\'s spent balance and takes credits', async () => {
        const { store } = await fresh();
        expect(await store.balance('acct_1')).toEqual({ account: 'acct_1', deposited: 0n, spent: 0n, available: 0n });
        await store.credit('acct_1', 10_000n, 'test deposit');
        await store.appendBatch([makePricedRecord(1), makePricedRecord(8), makeRecord(15)]); // all acct_1
        const spent = makePricedRecord(1).pricing!.priceMicros + makePricedRecord(8).pricing!.priceMicros;
        expect(await store.balance('acct_1')).toEqual({ account: 'acct_1', deposited: 10_000n, spent, available: 10_000n - spent });
        expect((await store.balances()).map((b) => b.account)).toEqual(['acct_1']);
        await expect(async () => store.credit('acct_1', 0n)).rejects.toMatchObject({ code: 'bad_request' });
        await store.credit('acct_1', 5n);
        expect((await store.deposits('acct_1')).map((d) => [d.amount, d.memo])).toEqual([[5n, null], [10_000n, 'test deposit']]);
        expect((await store.deposits('acct_1', { limit: 1 })).map((d) => d.amount)).toEqual([5n]);
        expect(await store.deposits('acct_2')).toEqual([]);
      });

      it('keeps a clipped report beside the billed CPU time (format 3), covered by the chain', async () => {
        const { store } = await fresh();
        const clipped = makePricedRecord(1, { cpuUs: 1500, reportedCpuUs: 5_000_000_000 });
        await store.appendBatch([makePricedRecord(0), clipped, makePricedRecord(2)]);
        expect(await store.get(clipped.workId)).toEqual(clipped);
        expect((await store.getRow(clipped.workId))!.format).toBe(3);
        expect((await store.getRow(makePricedRecord(2).workId))!.format).toBe(2);
        expect(await store.verifyChain()).toEqual({ ok: true, rows: 3 });
        await expect(async () => store.appendBatch([makePricedRecord(3, { cpuUs: 10, reportedCpuUs: 10 })])).rejects.toMatchObject({ code: 'bad_request' });
      });

      it('with refuseOverdraft, refuses each record its account cannot pay for and writes the rest', async () => {
        const { store } = await fresh();
        const price = (n: bigint) => ({ ...makePricedRecord(0).pricing!, priceMicros: n });
        await store.credit('acct_1', 100n, 'small deposit');
        const batch = [
          makePricedRecord(1, { account: 'acct_1', pricing: price(60n) }),
          makePricedRecord(2, { account: 'acct_1', pricing: price(60n) }), // 40 left: refused
          makePricedRecord(3, { account: 'acct_1', pricing: price(40n) }), // exactly what is left
          makePricedRecord(4, { account: 'acct_2', pricing: price(1n) }), // nothing deposited
          makePricedRecord(5, { account: 'acct_2', pricing: price(0n) }), // free: written
          makeRecord(6, { account: 'acct_2' }), // unpriced: written
        ];
        const r = await store.appendBatch(batch, { refuseOverdraft: true });
        expect(r.inserted).toBe(4);
        expect(r.refused).toEqual([
          { workId: batch[1]!.workId, account: 'acct_1', tokens: 60n, available: 40n },
          { workId: batch[3]!.workId, account: 'acct_2', tokens: 1n, available: 0n },
        ]);
        expect(await store.get(batch[1]!.workId)).toBeUndefined();
        expect(await store.balance('acct_1')).toMatchObject({ spent: 100n, available: 0n });
        expect((await store.balance('acct_2')).available).toBe(0n);
        expect(await store.verifyChain()).toMatchObject({ ok: true, rows: 4 });
        // Without the option the ledger writes what it is given (a ledger that holds no funds).
        expect((await store.appendBatch([batch[1]!])).inserted).toBe(1);
      });

      it('property: with refuseOverdraft no account ever spends more than it deposited', async () => {
        const { store } = await fresh();
        let n = 0;
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.record({ credit: fc.option(fc.bigInt({ min: 1n, max: 500n }), { nil: null }), account: fc.constantFrom('acct_a', 'acct_b'), prices: fc.array(fc.bigInt({ min: 0n, max: 300n }), { maxLength: 6 }) }), { maxLength: 8 }),
            async (steps) => {
              for (const st of steps) {
                if (st.credit !== null) await store.credit(st.account, st.credit, 'top-up');
                const batch = st.prices.map((p) => makePricedRecord(++n, { account: st.account, pricing: { ...makePricedRecord(0).pricing!, priceMicros: p } }));
                await store.appendBatch(batch, { refuseOverdraft: true });
                for (const b of await store.balances()) expect(b.spent <= b.deposited).toBe(true);
              }
            },
          ),
          { numRuns: 25 },
        );
      });
    });

    describe('billing cycles', () => {
      // The records root and the payout root are anchored on chain: for the same records they must
      // never change (a faster close must build the very same trees). These digests were taken
      // before the close was optimised (issue 18, 6).
      it('seals a fixed record set into the same roots, batches, totals and payouts as always', async () => {
        const { store } = await fresh();
        await store.setRate({ num: 1000n, den: 3n });
        await store.registerAddress('miner', 'ab'.repeat(32), '0x' + '11'.repeat(20));
        await store.registerAddress('developer', 'dev_0', '0x' + '22'.repeat(20));
        await store.registerAddress('operator', 'op_1', '0x' + '33'.repeat(20));
        const fixed = (i: number): Microtransaction => {
          const node = i % 3 === 0 ? 'node-b' : 'node-a';
          if (i % 4 === 0) return makeRecord(i, { node });
          const huge = i % 50 === 1 ? { priceMicros: 2n ** 62n + BigInt(i) } : {};
          const miner = i % 5 === 0 ? 'cd'.repeat(32) : 'ab'.repeat(32);
          const clipped = i === 7 ? { reportedCpuUs: 10_000_000 } : {};
          return makePricedRecord(i, { node, miner, ...clipped, pricing: { ...makePricing(i), ...huge } });
        };
        const digest = async (id: number, s: CycleSummary): Promise<string> => {
          const text = JSON.stringify(
            { s: { ...s, closedAt: 0, sealedAt: 0, openedAt: 0 }, b: await store.sealedBatches(id), d: await store.debits(id), c: await store.credits(id), p: await store.payouts(id) },
            (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v),
          );
          return createHash('sha256').update(text).digest('hex');
        };
        const first = Array.from({ length: 301 }, (_, i) => fixed(i));
        await store.appendBatch(first.slice(0, 150));
        await store.appendBatch(first.slice(150));
        const one = await store.closeCycle({ batchSize: 7, at: 1_790_000_000_000 });
        expect(one).toMatchObject({ records: 301, batches: 43, pricedRecords: 225 });
        expect(one.recordsRoot).toBe('8c846ce7f59580def0c98ffd06c94045e61d9c63bc889a65ac2c5e2c9dae2913');
        expect(one.payoutRoot).toBe('0xfa4f7a1f0f9daafdd5186812eb64f319d84e37c4ff11360da90972f11a18d9a3');
        expect(await digest(1, one)).toBe('6b3317d36da9b76a1c607fbca7c68948109c173eeffcace991e4cc0c69c746f2');
        const second = Array.from({ length: 4200 }, (_, i) => fixed(1000 + i));
        for (let i = 0; i < second.length; i += 1000) await store.appendBatch(second.slice(i, i + 1000));
        const progress: [number, number][] = [];
        const two = await store.closeCycle({ at: 1_790_000_100_000, onProgress: (done, total) => progress.push([done, total]) });
        expect(two).toMatchObject({ records: 4200, batches: 2 });
        // Progress of the read: rising, ending at its total, the cycle's records.
        expect(progress.length).toBeGreaterThan(0);
        expect(progress.at(-1)).toEqual([4200, 4200]);
        for (let i = 1; i < progress.length; i++) expect(progress[i]![0]).toBeGreaterThanOrEqual(progress[i - 1]![0]);
        expect(two.recordsRoot).toBe('afc5014a6832175079feae8536790532c1dad3b88ad38baa9aefb7dae048efc5');
        expect(two.payoutRoot).toBe('0x465b956c4f7aa3aa70cb45fc57497acfb326fb9f5e1da7e24ed079755eca8dd3');
        expect(await digest(2, two)).toBe('b43f6ddd7ffee04f7fee0b35eb5a78ab937f6e78be2c582f809da07f61687a94');
      });

      it('closes a cycle: later records join the next one, at its rate', async () => {
        const { store } = await fresh();
        await store.appendBatch([makePricedRecord(1), makePricedRecord(2)]);
        const s = await store.closeCycle({ nextRate: { num: 2n, den: 1n }, batchSize: 1 });
        expect(s).toMatchObject({ id: 1, records: 2, pricedRecords: 2, batches: 2, batchSize: 1 });
        expect((await store.currentCycle())).toMatchObject({ id: 2, rate: { num: 2n, den: 1n }, closedAt: null });
        await store.appendBatch([makePricedRecord(3)]);
        expect((await store.getRow(makePricedRecord(3).workId))?.billing?.charge?.tokens).toBe(makePricedRecord(3).pricing!.priceMicros * 2n);
        const s2 = await store.closeCycle();
        expect(s2).toMatchObject({ id: 2, records: 1, batches: 1 });
        expect((await store.cycles()).map((c) => c.id)).toEqual([1, 2, 3]);
        // an empty cycle closes too
        expect(await store.closeCycle()).toMatchObject({ id: 3, records: 0, batches: 0, payoutRoot: null, tokens: 0n });
        expect(await store.verifyChain()).toEqual({ ok: true, rows: 3 });
      });

      it("records where a cycle's rate came from and when it was read; a carried-over rate keeps its source", async () => {
        const { store } = await fresh();
        expect(await store.currentCycle()).not.toHaveProperty('rateSource');
        await store.setRate({ num: 5n, den: 1n }, { source: 'manual', fetchedAt: 1_000 });
        expect(await store.currentCycle()).toMatchObject({ id: 1, rate: { num: 5n, den: 1n }, rateSource: 'manual', rateFetchedAt: 1_000 });
        await store.appendBatch([makePricedRecord(1)]);
        await store.closeCycle({ nextRate: { num: 7n, den: 3n }, nextRateSource: { source: 'https://rates.example/cgn', fetchedAt: 1_765_000_000_000 } });
        expect(await store.currentCycle()).toMatchObject({ id: 2, rate: { num: 7n, den: 3n }, rateSource: 'https://rates.example/cgn', rateFetchedAt: 1_765_000_000_000 });
        await store.closeCycle();
        expect(await store.currentCycle()).toMatchObject({ id: 3, rate: { num: 7n, den: 3n }, rateSource: 'https://rates.example/cgn', rateFetchedAt: 1_765_000_000_000 });
        expect((await store.cycles()).find((c) => c.id === 2)).toMatchObject({ rateSource: 'https://rates.example/cgn', rateFetchedAt: 1_765_000_000_000 });
        // A rate given without a source is recorded as such: no source.
        await store.closeCycle({ nextRate: { num: 1n, den: 1n } });
        expect(await store.currentCycle()).not.toHaveProperty('rateSource');
      });

      it('refuses a proof before the cycle is sealed; unknown work ids have none', async () => {
        const { store } = await fresh();
        await store.appendBatch([makePricedRecord(1)]);
        await expect(async () => store.recordProof(makePricedRecord(1).workId)).rejects.toThrow(/not closed/);
        expect(await store.recordProof('w_nope')).toBeUndefined();
      });

      it('pays registered addresses; the rest keep a placeholder address and are held', async () => {
        const { store } = await fresh();
        const addr = '0x' + 'ab'.repeat(20);
        await store.registerAddress('miner', 'ab'.repeat(32), addr.toUpperCase().replace('0X', '0x'));
        await expect(async () => store.registerAddress('miner', 'x', '0x12')).rejects.toMatchObject({ code: 'bad_request' });
        await store.appendBatch([makePricedRecord(1)]);
        await store.closeCycle();
        const credits = await store.credits(1);
        expect(credits.find((c) => c.role === 'miner')?.address).toBe(addr);
        expect(credits.find((c) => c.role === 'charity')?.address).toMatch(/^0x[0-9a-f]{40}$/);
        const payouts = await store.payouts(1);
        const summary = (await store.cycleSummary(1))!;
        for (const p of payouts) expect(verifyPayoutProof(summary.payoutRoot!, p.address, p.amount, p.proof)).toBe(true);
        expect(verifyPayoutProof(summary.payoutRoot!, payouts[0]!.address, payouts[0]!.amount + 1n, payouts[0]!.proof)).toBe(false);
      });

      it('holds the credits of beneficiaries without an address and pays them in the first cycle after they register one', async () => {
        const { store } = await fresh();
        const miner = 'ab'.repeat(32);
        const minerAddr = '0x' + '11'.repeat(20);
        for (const [role, id] of [['developer', 'dev_0'], ['developer', 'dev_1'], ['operator', 'op_1'], ['charity', 'charity_1']] as const) await store.registerAddress(role, id, '0x' + '22'.repeat(20));
        await store.appendBatch([makePricedRecord(1), makePricedRecord(2)]);
        const one = await store.closeCycle();
        const held1 = (await store.credits(1)).find((c) => c.role === 'miner')!;
        expect(held1.held).toBe(held1.tokens);
        expect(held1.tokens > 0n).toBe(true);
        expect(one.held).toBe(held1.tokens);
        expect((await store.payouts(1)).map((p) => p.address)).toEqual(['0x' + '22'.repeat(20)]);
        expect((await store.payouts(1))[0]!.amount).toBe(one.tokens - one.held);
        const pending = await store.heldCredits({ pending: true });
        expect(pending.reduce((a, h) => a + h.tokens, 0n)).toBe(held1.tokens);
        expect(pending.every((h) => h.cycle === 1 && h.role === 'miner' && h.beneficiary === miner && h.releasedIn === null)).toBe(true);
        const debits1 = await store.debits(1);
        expect(debits1.reduce((a, d) => a + d.held, 0n)).toBe(one.held);
        // Still no address at the next close: still held, nothing released.
        await store.appendBatch([makePricedRecord(3)]);
        const two = await store.closeCycle();
        expect(two.released).toBe(0n);
        await store.registerAddress('miner', miner, minerAddr);
        const three = await store.closeCycle();
        const owed = one.held + two.held;
        expect(three).toMatchObject({ records: 0, tokens: 0n, held: 0n, released: owed });
        expect(await store.payouts(3)).toEqual([expect.objectContaining({ address: minerAddr, amount: owed })]);
        expect(verifyPayoutProof(three.payoutRoot!, minerAddr, owed, (await store.payouts(3))[0]!.proof)).toBe(true);
        expect((await store.credits(3))).toEqual([expect.objectContaining({ role: 'miner', beneficiary: miner, tokens: 0n, released: owed, address: minerAddr })]);
        expect((await store.debits(3)).reduce((a, d) => a + d.released, 0n)).toBe(owed);
        expect(await store.heldCredits({ pending: true })).toEqual([]);
        expect((await store.heldCredits()).every((h) => h.releasedIn === 3)).toBe(true);
        // Released once: the next cycle pays nothing more.
        expect((await store.closeCycle()).released).toBe(0n);
        expect((await store.cycleSummary(1))).toMatchObject({ held: one.held, released: 0n });
      });

      it('keeps one cycle-closer lease: held and renewed by its holder, refused to others until it lapses; a close request reaches it', async () => {
        const { store } = await fresh();
        const settle = { holder: 'cgn settle', pid: 10, host: 'h', everyMs: 120_000, ttlMs: 30_000 };
        const manual = { holder: 'cgn ledger close-cycle --every', pid: 11, host: 'h', everyMs: 60_000, ttlMs: 30_000 };
        expect(await store.cycleCloser()).toBeNull();
        expect(await store.requestCycleClose(1000)).toBeNull(); // nobody to ask
        expect(await store.holdCycleCloser(settle, 1000)).toMatchObject({ held: true, closer: { holder: 'cgn settle', pid: 10, heartbeatAt: 1000, everyMs: 120_000 } });
        expect(await store.holdCycleCloser(manual, 2000)).toMatchObject({ held: false, closer: { holder: 'cgn settle', pid: 10 } });
        expect(await store.requestCycleClose(3000)).toMatchObject({ holder: 'cgn settle', closeRequestedAt: 3000 });
        // The holder renews and still sees the request.
        expect(await store.holdCycleCloser(settle, 4000)).toMatchObject({ held: true, closer: { heartbeatAt: 4000, closeRequestedAt: 3000 } });
        // Lapsed (30 s without renewal): another may take it, with no request carried over.
        expect(await store.holdCycleCloser(manual, 40_000)).toMatchObject({ held: true, closer: { holder: 'cgn ledger close-cycle --every', closeRequestedAt: null } });
        await store.releaseCycleCloser(settle); // not its lease any more: nothing happens
        expect((await store.cycleCloser())?.pid).toBe(11);
        await store.releaseCycleCloser(manual);
        expect(await store.cycleCloser()).toBeNull();
      });

      it('reports usage per DService, end user and day', async () => {
        const { store } = await fresh();
        await store.appendBatch([
          makePricedRecord(1, { dservice: 'a', receivedAt: Date.UTC(2030, 0, 1, 10) }),
          makePricedRecord(8, { dservice: 'b', receivedAt: Date.UTC(2030, 0, 2, 10) }),
          makeRecord(15, { dservice: 'a', receivedAt: Date.UTC(2030, 0, 2, 11) }),
          makePricedRecord(2, { dservice: 'a' }),
        ]);
        const byService = await store.usage('dservice', { account: 'acct_1' });
        expect(byService.map((l) => [l.key, l.records])).toEqual([['a', 2], ['b', 1]]);
        expect(byService[0]!.priceMicros).toBe(makePricedRecord(1).pricing!.priceMicros);
        expect((await store.usage('day', { account: 'acct_1' })).map((l) => [l.key, l.records])).toEqual([['2030-01-01', 1], ['2030-01-02', 2]]);
        expect((await store.usage('endUser', { account: 'acct_1' })).map((l) => l.key)).toEqual(['-', 'user_1', 'user_8']);
      });

      it('reports usage over time per day and per cycle in one pass: each bucket is usage() of that day or cycle alone', async () => {
        const { store } = await fresh();
        const day = (d: number, h: number) => Date.UTC(2030, 0, d, h);
        await store.appendBatch([
          makePricedRecord(1, { dservice: 'a', receivedAt: day(1, 10) }),
          makePricedRecord(8, { dservice: 'b', receivedAt: day(2, 10) }),
          makeRecord(15, { dservice: 'a', receivedAt: day(2, 11) }),
        ]);
        await store.closeCycle({ at: day(3, 0) });
        await store.appendBatch([makePricedRecord(22, { dservice: 'b', receivedAt: day(3, 1) }), makePricedRecord(2, { dservice: 'a', receivedAt: day(3, 2) })]);
        for (const group of ['dservice', 'endUser'] as const) {
          const byDay = await store.usageOverTime('day', group, { account: 'acct_1' });
          expect([...new Set(byDay.map((l) => l.bucket))]).toEqual(['2030-01-01', '2030-01-02', '2030-01-03']);
          for (const d of [1, 2, 3]) {
            const want = await store.usage(group, { account: 'acct_1', from: day(d, 0), to: day(d + 1, 0) });
            expect(byDay.filter((l) => l.bucket === `2030-01-0${d}`).map(({ bucket: _b, ...l }) => l)).toEqual(want);
          }
          const byCycle = await store.usageOverTime('cycle', group, { account: 'acct_1' });
          expect([...new Set(byCycle.map((l) => l.bucket))]).toEqual(['1', '2']);
          for (const c of [1, 2]) expect(byCycle.filter((l) => l.bucket === String(c)).map(({ bucket: _b, ...l }) => l)).toEqual(await store.usage(group, { account: 'acct_1', cycle: c }));
        }
        expect(await store.usageOverTime('day', 'dservice', { account: 'nobody' })).toEqual([]);
        await expect(async () => store.usageOverTime('hour' as 'day', 'dservice')).rejects.toMatchObject({ code: 'bad_request' });
      });

      it('reports activity per miner and per node and DService over a window (records, 5xx failures, latency)', async () => {
        const { store } = await fresh();
        const t0 = Date.UTC(2030, 0, 1);
        await store.appendBatch([
          makeRecord(1, { miner: 'm2', node: 'n1', dservice: 'b', receivedAt: t0, execUs: 100, queueUs: 7, status: 200 }),
          makeRecord(2, { miner: 'm1', node: 'n1', dservice: 'a', receivedAt: t0 + 1, execUs: 300, queueUs: 5, status: 503 }),
          makeRecord(3, { miner: 'm1', node: 'n2', dservice: 'a', receivedAt: t0 + 2, execUs: 200, queueUs: 1, status: 404 }),
          makeRecord(4, { miner: 'm1', node: 'n2', dservice: 'b', receivedAt: t0 + 3, execUs: 50, queueUs: 2, status: 500 }),
          makeRecord(5, { miner: 'm1', node: 'n1', dservice: 'a', receivedAt: t0 + 10, execUs: 999, queueUs: 9, status: 200 }),
        ]);
        expect(await store.activity('miner', { from: t0, to: t0 + 10 })).toEqual([
          { subject: 'm1', dservice: 'a', records: 2, failures: 1, latencyUs: 500 },
          { subject: 'm1', dservice: 'b', records: 1, failures: 1, latencyUs: 50 },
          { subject: 'm2', dservice: 'b', records: 1, failures: 0, latencyUs: 100 },
        ]);
        expect(await store.activity('node', { from: t0 + 1 })).toEqual([
          { subject: 'n1', dservice: 'a', records: 2, failures: 1, latencyUs: 14 },
          { subject: 'n2', dservice: 'a', records: 1, failures: 0, latencyUs: 1 },
          { subject: 'n2', dservice: 'b', records: 1, failures: 1, latencyUs: 2 },
        ]);
        expect(await store.activity('miner', { from: t0 + 100 })).toEqual([]);
      });

      it('property: credits == debits == record tokens, no negative part, every record in exactly one batch, every proof verifies and a tampered one fails', async () => {
        const arbBatch = fc.array(
          fc.record({ i: fc.nat({ max: 1_000_000 }), pricing: fc.option(arbPricing, { nil: undefined }), account: fc.constantFrom('a1', 'a2', 'a3'), cpuUs: fc.nat({ max: 10_000_000 }) }),
          { minLength: 0, maxLength: 15 },
        );
        await fc.assert(
          fc.asyncProperty(fc.array(arbBatch, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 7 }), fc.bigInt({ min: 1n, max: 10n ** 6n }), fc.bigInt({ min: 1n, max: 1000n }), async (batches, batchSize, num, den) => {
            const f = await makeStore();
            try {
              await f.store.setRate({ num, den });
              let n = 0;
              const all: Microtransaction[] = [];
              for (const b of batches) {
                const records = b.map((x) => makeRecord(n++, { account: x.account, cpuUs: x.cpuUs, node: n % 2 ? 'node-a' : 'node-b', ...(x.pricing === undefined ? {} : { pricing: x.pricing }) }));
                await f.store.appendBatch(records);
                all.push(...records);
              }
              const s: CycleSummary = await f.store.closeCycle({ batchSize });
              const debits = await f.store.debits(1);
              const credits = await f.store.credits(1);
              let recordTokens = 0n;
              for (const r of all) {
                const row = (await f.store.getRow(r.workId))!;
                const c = row.billing!.charge;
                if (r.pricing === undefined) {
                  expect(c).toBeNull();
                  continue;
                }
                expect(c!.tokens).toBe((r.pricing.priceMicros * num) / den);
                let sum = 0n;
                for (const k of BENEFICIARIES) {
                  expect(c!.parts[k] >= 0n).toBe(true);
                  sum += c!.parts[k];
                }
                expect(sum).toBe(c!.tokens);
                recordTokens += c!.tokens;
              }
              const sumD = debits.reduce((a, d) => a + d.tokens, 0n);
              const sumC = credits.reduce((a, c) => a + c.tokens, 0n);
              expect(sumD).toBe(recordTokens);
              expect(sumC).toBe(recordTokens);
              expect(s.tokens).toBe(recordTokens);
              for (const c of credits) expect(c.tokens >= 0n).toBe(true);
              // Nobody registered an address: everything is held (kept owed), nothing paid to a placeholder.
              const payouts = await f.store.payouts(1);
              expect(payouts).toEqual([]);
              expect(s.held).toBe(recordTokens);
              expect(credits.reduce((a, c) => a + c.held, 0n)).toBe(recordTokens);
              expect(debits.reduce((a, d) => a + d.held, 0n)).toBe(recordTokens);
              expect((await f.store.heldCredits({ pending: true })).reduce((a, h) => a + h.tokens, 0n)).toBe(recordTokens);
              for (const p of payouts) expect(verifyPayoutProof(s.payoutRoot!, p.address, p.amount, p.proof)).toBe(true);
              // batches: disjoint, in order, covering every record once
              const sealed = await f.store.sealedBatches(1);
              expect(sealed.reduce((a, b) => a + b.records, 0)).toBe(all.length);
              expect(s.records).toBe(all.length);
              const seqs = await Promise.all(all.map(async (r) => (await f.store.getRow(r.workId))!.seq));
              for (const seq of seqs) expect(sealed.filter((b) => b.firstSeq <= seq && seq <= b.lastSeq)).toHaveLength(1);
              for (let k = 1; k < sealed.length; k++) expect(sealed[k]!.firstSeq > sealed[k - 1]!.lastSeq).toBe(true);
              for (const r of all) {
                const proof = (await f.store.recordProof(r.workId))!;
                expect(verifyRecordProof(proof, s.recordsRoot)).toMatchObject({ ok: true, workId: r.workId, cycle: 1 });
                expect(verifyRecordProof(JSON.parse(JSON.stringify(proof)))).toMatchObject({ ok: true });
                const tampered = { ...proof, record: { ...proof.record, cpuUs: proof.record.cpuUs + 1 } };
                expect(verifyRecordProof(tampered).ok).toBe(false);
                if (proof.charge !== null) expect(verifyRecordProof({ ...proof, charge: { ...proof.charge, tokens: (BigInt(proof.charge.tokens) + 1n).toString() } }).ok).toBe(false);
                if (proof.batchProof.length > 0) {
                  const step = proof.batchProof[0]!;
                  expect(verifyRecordProof({ ...proof, batchProof: [`${step[0] === 'L' ? 'R' : 'L'}${step.slice(1)}`, ...proof.batchProof.slice(1)] }).ok).toBe(false);
                }
                expect(verifyRecordProof(proof, 'ff'.repeat(32)).ok).toBe(false);
              }
            } finally {
              await f.cleanup();
            }
          }),
          { numRuns: 25 },
        );
      });
    });

    describe('on-chain escrow', () => {
      const A = '0x' + '1a'.repeat(20);
      const B = '0x' + '2b'.repeat(20);
      const ref = (n: number) => `0x${n.toString(16).padStart(64, '0')}:${n % 3}`;

      it('credits a confirmed deposit once per event reference, also after a restart', async () => {
        const f = await fresh();
        await f.store.linkAddress('acct_1', A.toUpperCase().replace('0X', '0x'));
        const first = await f.store.recordChainDeposit({ ref: ref(1), address: A, amount: 500n, block: 7n });
        expect(first).toMatchObject({ status: 'credited', account: 'acct_1', balance: { deposited: 500n, available: 500n } });
        expect(await f.store.recordChainDeposit({ ref: ref(1), address: A, amount: 500n, block: 7n })).toEqual({ status: 'duplicate' });
        await f.reopen();
        expect(await f.store.recordChainDeposit({ ref: ref(1).toUpperCase().replace('0X', '0x'), address: A, amount: 500n, block: 7n })).toEqual({ status: 'duplicate' });
        expect((await f.store.balance('acct_1')).deposited).toBe(500n);
        expect((await f.store.deposits('acct_1')).map((d) => [d.amount, d.memo])).toEqual([[500n, `chain deposit ${ref(1)}`]]);
        await expect(async () => f.store.recordChainDeposit({ ref: 'nope', address: A, amount: 1n, block: 1n })).rejects.toMatchObject({ code: 'bad_request' });
        await expect(async () => f.store.recordChainDeposit({ ref: ref(2), address: A, amount: 0n, block: 1n })).rejects.toMatchObject({ code: 'bad_request' });
      });

      it('holds a deposit for an unlinked address and credits it when the address is linked', async () => {
        const { store } = await fresh();
        expect(await store.recordChainDeposit({ ref: ref(3), address: B, amount: 40n, block: 1n })).toEqual({ status: 'unlinked' });
        expect(await store.recordChainDeposit({ ref: ref(3), address: B, amount: 40n, block: 1n })).toEqual({ status: 'duplicate' });
        expect((await store.balance('acct_2')).deposited).toBe(0n);
        const r = await store.linkAddress('acct_2', B);
        expect(r).toMatchObject({ credited: 40n, link: { account: 'acct_2', address: B } });
        expect((await store.linkAddress('acct_2', B)).credited).toBe(0n);
        expect((await store.balance('acct_2')).deposited).toBe(40n);
        await expect(async () => store.linkAddress('acct_1', B)).rejects.toMatchObject({ code: 'conflict' });
        await expect(async () => store.linkAddress('acct_1', '0x12')).rejects.toMatchObject({ code: 'bad_request' });
        expect((await store.links()).map((l) => [l.account, l.address])).toEqual([['acct_2', B]]);
        expect(await store.links('acct_1')).toEqual([]);
      });

      it('unlinks an address linked by mistake; refuses while deposits credited through it are not withdrawn', async () => {
        const { store } = await fresh();
        await store.linkAddress('acme', A); // a name, not the account: linked by mistake, nothing deposited
        await expect(async () => store.unlinkAddress('acct_1', A)).rejects.toMatchObject({ code: 'not_found', message: expect.stringContaining('linked to account acme') });
        expect(await store.unlinkAddress('acme', A.toUpperCase().replace('0X', '0x'))).toMatchObject({ account: 'acme', address: A });
        expect(await store.links()).toEqual([]);
        await expect(async () => store.unlinkAddress('acme', A)).rejects.toMatchObject({ code: 'not_found' });
        // Now the real account links it, and a deposit is credited through it: the link stays.
        await store.linkAddress('acct_1', A);
        await store.recordChainDeposit({ ref: ref(9), address: A, amount: 500n, block: 1n });
        await expect(async () => store.unlinkAddress('acct_1', A)).rejects.toMatchObject({ code: 'conflict', message: expect.stringContaining('cgn ledger withdraw --account acct_1') });
        // Withdrawn in full: it may go.
        await store.requestWithdrawal('acct_1', A, 'all');
        expect(await store.unlinkAddress('acct_1', A)).toMatchObject({ account: 'acct_1' });
      });

      it('debits a withdrawal once, capped by the balance and the address escrow, and tracks its posting', async () => {
        const { store } = await fresh();
        await store.linkAddress('acct_1', A);
        await store.recordChainDeposit({ ref: ref(4), address: A, amount: 10_000n, block: 1n });
        await store.credit('acct_1', 5_000n, 'off-chain credit'); // not in A's escrow: cannot leave through A
        await store.appendBatch([makePricedRecord(1)]); // spends acct_1
        const spent = (await store.balance('acct_1')).spent;
        expect(spent).toBeGreaterThan(0n);
        await expect(async () => store.requestWithdrawal('acct_1', A, 10_001n)).rejects.toMatchObject({ code: 'conflict' });
        await expect(async () => store.requestWithdrawal('acct_2', A, 1n)).rejects.toMatchObject({ code: 'conflict' });
        const w1 = await store.requestWithdrawal('acct_1', A, 6_000n);
        expect(w1).toMatchObject({ account: 'acct_1', address: A, amount: 6_000n, cycle: null, postedAt: null });
        expect(await store.balance('acct_1')).toMatchObject({ deposited: 9_000n, available: 9_000n - spent });
        const w2 = await store.requestWithdrawal('acct_1', A, 'all'); // the rest of A's escrow
        expect(w2.amount).toBe(4_000n);
        await expect(async () => store.requestWithdrawal('acct_1', A, 'all')).rejects.toMatchObject({ code: 'payment_required' });
        expect((await store.withdrawals({ pending: true })).map((w) => w.id)).toEqual([w1.id, w2.id]);
        await store.assignWithdrawals([w1.id, w2.id], 3);
        await store.markWithdrawalsPosted([w1.id], '0xabc');
        await store.markWithdrawalsPosted([w1.id], '0xdef'); // the first mark stands
        expect((await store.withdrawals()).map((w) => [w.cycle, w.tx, w.postedAt !== null])).toEqual([
          [3, '0xabc', true],
          [3, null, false],
        ]);
        expect((await store.withdrawals({ pending: true, account: 'acct_1' })).map((w) => w.id)).toEqual([w2.id]);
      });

      it('marks anchored cycles once', async () => {
        const { store } = await fresh();
        await store.markAnchored(1, '0xaa');
        await store.markAnchored(1, '0xbb');
        await store.markAnchored(2, null);
        expect((await store.anchors()).map((a) => [a.cycle, a.tx])).toEqual([
          [1, '0xaa'],
          [2, null],
        ]);
      });
    });

    describe('idempotency', () => {
      const base = { account: 'acme', key: 'k-1', fingerprint: 'f1', workId: 'w_1', now: 1_000_000 };
      const response = { status: 201, headers: [['content-type', 'text/plain'], ['x-a', 'b']] as [string, string][], body: Buffer.from('hello') };

      it('runs a key once, replays the stored response, refuses another request under the same key', async () => {
        const { store } = await fresh();
        expect(await store.idempotencyBegin(base)).toEqual({ kind: 'new' });
        expect(await store.idempotencyBegin({ ...base, workId: 'w_2', now: base.now + 10 })).toEqual({ kind: 'pending', workId: 'w_1' });
        await store.idempotencyComplete('acme', 'k-1', 'w_1', response);
        expect(await store.idempotencyBegin({ ...base, workId: 'w_3', now: base.now + 20 })).toEqual({ kind: 'replay', workId: 'w_1', response });
        expect(await store.idempotencyBegin({ ...base, fingerprint: 'f2', workId: 'w_4' })).toEqual({ kind: 'mismatch', workId: 'w_1' });
        // another account's key is another key
        expect(await store.idempotencyBegin({ ...base, account: 'other', workId: 'w_5' })).toEqual({ kind: 'new' });
      });

      it('forgets an abandoned key and expires entries after their ttl', async () => {
        const { store } = await fresh();
        expect(await store.idempotencyBegin(base)).toEqual({ kind: 'new' });
        await store.idempotencyAbandon('acme', 'k-1', 'w_1');
        expect(await store.idempotencyBegin({ ...base, workId: 'w_2' })).toEqual({ kind: 'new' });
        await store.idempotencyComplete('acme', 'k-1', 'w_2', response);
        const day = 24 * 3600 * 1000;
        expect(await store.idempotencyBegin({ ...base, workId: 'w_3', now: base.now + day - 1 })).toMatchObject({ kind: 'replay' });
        expect(await store.idempotencyBegin({ ...base, fingerprint: 'other', workId: 'w_3', now: base.now + day })).toEqual({ kind: 'new' });
        expect(await store.idempotencyPurge(base.now + 3 * day)).toBe(1);
        await expect(async () => store.idempotencyComplete('acme', 'k-1', 'w_nope', response)).rejects.toThrow(/pending/);
      });

      it('a stale pending key: taken over if its work was never recorded, outcome_unknown if it was', async () => {
        const { store } = await fresh();
        const rec = makeRecord(1);
        expect(await store.idempotencyBegin({ ...base, workId: rec.workId })).toEqual({ kind: 'new' });
        await store.appendBatch([rec]);
        const later = base.now + 11 * 60 * 1000;
        expect(await store.idempotencyBegin({ ...base, workId: 'w_x', now: later })).toEqual({ kind: 'unknown', workId: rec.workId });
        expect(await store.idempotencyBegin({ ...base, key: 'k-2', workId: 'w_never' })).toEqual({ kind: 'new' });
        expect(await store.idempotencyBegin({ ...base, key: 'k-2', workId: 'w_y', now: later })).toEqual({ kind: 'new' });
      });
    });
  });
}
