import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocateDebits, describeShortfall } from './debits.js';

const A = '0x' + 'a'.repeat(40);
const B = '0x' + 'b'.repeat(40);
const C = '0x' + 'c'.repeat(40);

describe('allocateDebits', () => {
  it("takes an account's debit from its own addresses, most free first, and remembers it", () => {
    const free = new Map([[A, 10n], [B, 30n], [C, 100n]]);
    const links = (acc: string) => (acc === 'acme' ? [A, B] : acc === 'other' ? [C] : []);
    const r = allocateDebits([{ account: 'acme', tokens: 35n }], links, free);
    expect(r).toEqual({ ok: true, debits: [{ address: B, amount: 30n }, { address: A, amount: 5n }] });
    expect(free).toEqual(new Map([[A, 5n], [B, 0n], [C, 100n]]));
  });

  it("refuses rather than touch another account's escrow, and changes nothing", () => {
    const free = new Map([[A, 10n], [C, 100n]]);
    const links = (acc: string) => (acc === 'acme' ? [A] : acc === 'other' ? [C] : []);
    const r = allocateDebits([{ account: 'acme', tokens: 11n }, { account: 'nobody', tokens: 1n }, { account: 'other', tokens: 1n }], links, free);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.short.map((s) => [s.account, s.needed, s.available])).toEqual([['acme', 11n, 10n], ['nobody', 1n, 0n]]);
    expect(describeShortfall(r.short)).toMatch(/nobody owes 1 but has no linked address/);
    expect(free).toEqual(new Map([[A, 10n], [C, 100n]]));
  });

  it('for any debits and escrows: each address pays at most its free escrow, only for its own account, and the debits add up', () => {
    const addrs = Array.from({ length: 6 }, (_, i) => '0x' + String(i).repeat(40));
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 0n, max: 1000n }), { minLength: 6, maxLength: 6 }),
        fc.array(fc.record({ account: fc.constantFrom('x', 'y', 'z'), tokens: fc.bigInt({ min: 0n, max: 1500n }) }), { maxLength: 5 }),
        (escrows, wanted) => {
          // x owns addresses 0-1, y 2-3, z 4-5; one debit per account as the ledger gives them
          const owner = (i: number) => ['x', 'y', 'z'][Math.floor(i / 2)]!;
          const debits = [...new Map(wanted.map((d) => [d.account, d])).values()];
          const free = new Map(addrs.map((a, i) => [a, escrows[i]!]));
          const before = new Map(free);
          const r = allocateDebits(debits, (acc) => addrs.filter((_, i) => owner(i) === acc), free);
          const need = (acc: string) => debits.filter((d) => d.account === acc).reduce((s, d) => s + d.tokens, 0n);
          const has = (acc: string) => addrs.filter((_, i) => owner(i) === acc).reduce((s, a) => s + before.get(a)!, 0n);
          if (!r.ok) {
            expect(r.short.every((s) => need(s.account) > has(s.account))).toBe(true);
            expect(free).toEqual(before);
            return;
          }
          for (const acc of ['x', 'y', 'z']) {
            expect(need(acc)).toBeLessThanOrEqual(has(acc));
            const paid = r.debits.filter((d) => owner(addrs.indexOf(d.address)) === acc).reduce((s, d) => s + d.amount, 0n);
            expect(paid).toBe(need(acc));
          }
          for (const d of r.debits) {
            expect(d.amount).toBeGreaterThan(0n);
            expect(d.amount).toBeLessThanOrEqual(before.get(d.address)!);
            expect(free.get(d.address)).toBe(before.get(d.address)! - d.amount);
          }
        },
      ),
    );
  });
});
