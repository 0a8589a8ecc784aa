/**
 * The money path of one work unit, composed from the real pieces the work endpoint uses:
 * reservation (BalanceGuard through NodeBilling) → the miner's metering bounded by the node's own
 * measurement (charge-bound.ts) → price bounded by the reservation → ledger append refusing
 * overdraft → settlement of the hold. Whatever the miner reports: the charge is at most the
 * reservation, the reservation at most the available balance, no account goes below zero, and the
 * closed cycle balances to the unit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SqliteLedgerStore, toTokens, type Microtransaction } from '@cgn/ledger';
import { parseDescriptor } from '@cgn/protocol';
import { BILLING_DEFAULTS, NodeBilling } from './billing.js';
import { boundMetering, boundPrice } from './charge-bound.js';

const echo = parseDescriptor({ name: 'echo', version: '1', entry: 'main.js', developer: 'dev_1', resources: { cpus: 2, memoryMb: 64 }, maxBodyBytes: 65_536, timeouts: { requestMs: 2000 } });

const unit = fc.record({
  bytesIn: fc.nat({ max: 65_536 }),
  bytesOut: fc.nat({ max: 65_536 }),
  nodeExecUs: fc.nat({ max: 2_000_000 }),
  // Anything a miner might say, honest or not.
  reportedCpuUs: fc.oneof(fc.nat({ max: 4_000_000 }), fc.constant(5_000_000_000), fc.nat({ max: 86_400_000_000 })),
  account: fc.constantFrom('a', 'b'),
});

describe('the charge path', () => {
  it('property: charge <= reservation <= available; no overdraft; cycles balance to the unit', async () => {
    await fc.assert(
      fc.asyncProperty(fc.bigInt({ min: 0n, max: 20_000_000n }), fc.bigInt({ min: 0n, max: 20_000_000n }), fc.array(unit, { maxLength: 25 }), fc.integer({ min: 1, max: 1000 }), async (depositA, depositB, units, rateNum) => {
        const store = new SqliteLedgerStore({ path: ':memory:' });
        store.setRate({ num: BigInt(rateNum), den: 1000n });
        const deposits: Record<string, bigint> = { a: depositA, b: depositB };
        for (const [acc, d] of Object.entries(deposits)) if (d > 0n) store.credit(acc, d);
        const billing = await NodeBilling.open(store, { ...BILLING_DEFAULTS, enforceBalance: true });
        const guard = billing.guard!;
        try {
          for (const [i, u] of units.entries()) {
            const max = billing.maxPrice(echo, 'open', u.bytesIn, echo.timeouts.requestMs);
            const available = guard.available(u.account);
            const r = guard.reserve(u.account, max);
            if (!r.ok) {
              expect(r.needed).toBeGreaterThan(available);
              continue;
            }
            expect(r.reservation.tokens).toBeLessThanOrEqual(available);
            const metering = boundMetering({ reportedCpuUs: u.reportedCpuUs, nodeExecUs: Math.min(u.nodeExecUs, echo.timeouts.requestMs * 1000), cpus: echo.resources.cpus });
            const pricing = billing.pricing(echo, 'open', { cpuUs: metering.cpuUs, bytesIn: u.bytesIn, bytesOut: Math.min(u.bytesOut, echo.maxBodyBytes) });
            pricing.priceMicros = boundPrice(pricing.priceMicros, max);
            const charge = toTokens(pricing.priceMicros, guard.tokenRate);
            expect(charge).toBeLessThanOrEqual(r.reservation.tokens);
            const record: Microtransaction = {
              workId: `w_${i}`, account: u.account, endUser: null, dservice: 'echo', tier: 'open', miner: 'm1', node: 'n1', receivedAt: 1_790_000_000_000 + i,
              queueUs: 0, execUs: metering.execUs, cpuUs: metering.cpuUs, bytesIn: u.bytesIn, bytesOut: u.bytesOut, status: 200, resultHash: null, attempts: 1, pricing,
              ...(metering.clipped ? { reportedCpuUs: u.reportedCpuUs } : {}),
            };
            const res = await store.appendBatch([record], { refuseOverdraft: true });
            expect(res.refused ?? []).toEqual([]); // the reservation already made sure it could pay
            expect(guard.settle(r.reservation, pricing.priceMicros)).toBe(charge);
            const b = store.balance(u.account);
            expect(b.spent).toBeLessThanOrEqual(b.deposited);
          }
          if (store.count() > 0) {
            const s = store.closeCycle();
            const debits = store.debits(s.id).reduce((a, d) => a + d.tokens, 0n);
            const credits = store.credits(s.id).reduce((a, c) => a + c.tokens, 0n);
            expect(debits).toBe(s.tokens);
            expect(credits).toBe(s.tokens);
            for (const acc of ['a', 'b']) expect(store.balance(acc).available).toBeGreaterThanOrEqual(0n);
          }
        } finally {
          billing.stop();
          store.close();
        }
      }),
      { numRuns: 150 },
    );
  });
});
