import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BalanceGuard } from './balance-guard.js';
import { SqliteLedgerStore } from './sqlite-store.js';
import { makePricedRecord, makePricing } from './test-fixtures/records.js';

describe('BalanceGuard', () => {
  it('reserves against the prepaid balance, refuses what it cannot cover, settles and releases', async () => {
    const store = new SqliteLedgerStore({ path: ':memory:' });
    store.credit('acct_1', 1000n);
    const guard = await BalanceGuard.load(store);
    expect(guard.reserve('nobody', 1n)).toMatchObject({ ok: false, reason: 'insufficient', available: 0n, needed: 1n });
    const a = guard.reserve('acct_1', 600n);
    expect(a.ok).toBe(true);
    expect(guard.reserve('acct_1', 500n)).toMatchObject({ ok: false, available: 400n, needed: 500n });
    if (!a.ok) throw new Error('unreachable');
    // the work ran and was recorded at 450
    store.appendBatch([makePricedRecord(1, { pricing: makePricing(1, { priceMicros: 450n }) })]);
    expect(guard.settle(a.reservation, 450n)).toBe(450n);
    expect(guard.settle(a.reservation, 450n)).toBe(0n); // once
    expect(guard.available('acct_1')).toBe(550n);
    await guard.refresh(); // the store agrees
    expect(guard.available('acct_1')).toBe(550n);
    const b = guard.reserve('acct_1', 550n);
    if (!b.ok) throw new Error('expected ok');
    guard.release(b.reservation);
    expect(guard.available('acct_1')).toBe(550n);
    store.credit('acct_1', 50n); // a deposit shows after a refresh
    await guard.refresh();
    expect(guard.available('acct_1')).toBe(600n);
    store.close();
  });

  it('converts at the cycle rate: up for reservations, down for settlements', async () => {
    const store = new SqliteLedgerStore({ path: ':memory:' });
    store.setRate({ num: 1n, den: 3n });
    store.credit('a', 10n);
    const guard = await BalanceGuard.load(store);
    const r = guard.reserve('a', 10n); // ceil(10/3) = 4
    if (!r.ok) throw new Error('expected ok');
    expect(r.reservation.tokens).toBe(4n);
    expect(guard.settle(r.reservation, 10n)).toBe(3n);
    store.close();
  });

  it('property: never admits more than the balance; available == deposited - settled after all settle', async () => {
    await fc.assert(
      fc.asyncProperty(fc.bigInt({ min: 0n, max: 10_000n }), fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 2000n }), fc.boolean()), { maxLength: 30 }), async (deposit, ops) => {
        const store = new SqliteLedgerStore({ path: ':memory:' });
        if (deposit > 0n) store.credit('a', deposit);
        const guard = await BalanceGuard.load(store);
        let charged = 0n;
        for (const [max, run] of ops) {
          const r = guard.reserve('a', max);
          if (!r.ok) {
            expect(deposit - charged < max).toBe(true);
            continue;
          }
          if (run) charged += guard.settle(r.reservation, max / 2n);
          else guard.release(r.reservation);
          expect(guard.available('a')).toBe(deposit - charged);
          expect(charged <= deposit).toBe(true);
        }
        store.close();
      }),
      { numRuns: 100 },
    );
  });
});
