/**
 * Held credits: a beneficiary without an address is held, never paid to a placeholder, and paid
 * in full in the first cycle sealed after it registers one. Money is conserved in every cycle and
 * over all of them. Pure (the accumulator); the stores' persistence of the same is in the shared
 * store suite.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CycleAccumulator, creditPaid, derivedAddress, escrowDebit, payableTokens, type CycleClose, type HeldCredit } from './billing.js';
import { BENEFICIARIES, type Beneficiary, type SplitParts } from './pricing/split.js';

const MINERS = ['m1', 'm2', 'm3'];
const DEVS = ['d1', 'd2'];
const ACCOUNTS = ['a1', 'a2', 'a3'];
const ADDRESS: Record<string, string> = {
  'miner\u0000m1': '0x1000000000000000000000000000000000000001',
  'miner\u0000m2': '0x1000000000000000000000000000000000000002',
  'miner\u0000m3': '0x1000000000000000000000000000000000000003',
  'developer\u0000d1': '0x2000000000000000000000000000000000000001',
  'developer\u0000d2': '0x1000000000000000000000000000000000000001', // shares m1's address
  'operator\u0000op': '0x3000000000000000000000000000000000000001',
  'charity\u0000ch': '0x4000000000000000000000000000000000000001',
};
const KEYS = Object.keys(ADDRESS);

interface Rec {
  account: string;
  miner: string;
  developer: string;
  parts: SplitParts;
}

const arbParts = fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 20n }), fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 100n }))
  .map(([miner, developer, operator, charity]): SplitParts => ({ miner, developer, operator, charity }));
const arbRec = fc.record({ account: fc.constantFrom(...ACCOUNTS), miner: fc.constantFrom(...MINERS), developer: fc.constantFrom(...DEVS), parts: arbParts });
/** Per cycle: its records, and the beneficiaries that register an address before it is sealed. */
const arbCycles = fc.array(fc.record({ records: fc.array(arbRec, { maxLength: 30 }), register: fc.subarray(KEYS) }), { minLength: 1, maxLength: 6 });

const sum = (xs: readonly bigint[]): bigint => xs.reduce((a, b) => a + b, 0n);
const total = (p: SplitParts): bigint => p.miner + p.developer + p.operator + p.charity;

function closeCycle(id: number, records: readonly Rec[], registered: Map<string, string>, held: readonly HeldCredit[], seq0: number): CycleClose {
  const acc = new CycleAccumulator(4);
  records.forEach((r, i) => acc.push({
    seq: seq0 + i + 1, account: r.account, miner: r.miner, priceMicros: total(r.parts), tokens: total(r.parts), parts: r.parts,
    developer: r.developer, operator: 'op', charity: 'ch', hash: new Uint8Array(32).fill(i % 256),
  }));
  return acc.finish(id, { registered, held });
}

describe('held credits', () => {
  it('conserve money per cycle and overall; nothing is paid to a placeholder; a registered beneficiary gets everything held for it', () => {
    fc.assert(
      fc.property(arbCycles, (cycles) => {
        const registered = new Map<string, string>();
        const pool: HeldCredit[] = [];
        let seq = 0;
        let charged = 0n;
        let paid = 0n;
        const earned = new Map<string, bigint>(); // per beneficiary, what its records earned
        const received = new Map<string, bigint>(); // per beneficiary, what payout trees paid it
        cycles.forEach((c, i) => {
          const id = i + 1;
          for (const k of c.register) registered.set(k, ADDRESS[k]!);
          const heldBefore = sum(pool.filter((h) => h.releasedIn === null).map((h) => h.tokens));
          const r = closeCycle(id, c.records, registered, pool, seq);
          seq += c.records.length;
          // Per cycle: debits == credits == record tokens; what escrow pays == what the tree pays.
          const tokens = sum(c.records.map((x) => total(x.parts)));
          expect(r.tokens).toBe(tokens);
          expect(sum(r.debits.map((d) => d.tokens))).toBe(tokens);
          expect(sum(r.credits.map((x) => x.tokens))).toBe(tokens);
          expect(sum(r.debits.map((d) => d.held))).toBe(r.held);
          expect(sum(r.credits.map((x) => x.held))).toBe(r.held);
          expect(sum(r.debits.map((d) => d.released))).toBe(r.released);
          expect(sum(r.credits.map((x) => x.released))).toBe(r.released);
          const tree = sum(r.payouts.map((p) => p.amount));
          expect(tree).toBe(payableTokens(r));
          expect(sum(r.debits.map(escrowDebit))).toBe(tree);
          expect(sum(r.credits.map(creditPaid))).toBe(tree);
          for (const d of r.debits) expect(escrowDebit(d) >= 0n).toBe(true);
          expect(r.payoutRoot === null).toBe(tree === 0n);
          // Nobody is paid to a placeholder: every leaf is a registered address.
          const real = new Set(registered.values());
          for (const p of r.payouts) {
            expect(real.has(p.address)).toBe(true);
            expect(p.amount > 0n).toBe(true);
          }
          // Held now: exactly the unregistered beneficiaries' earnings; released: everything held for the registered.
          for (const x of r.credits) {
            const k = `${x.role}\u0000${x.beneficiary}`;
            expect(x.held).toBe(registered.has(k) ? 0n : x.tokens);
            if (!registered.has(k)) expect(x.address).toBe(derivedAddress(x.role, x.beneficiary));
            const owed = sum(pool.filter((h) => h.releasedIn === null && `${h.role}\u0000${h.beneficiary}` === k).map((h) => h.tokens));
            expect(x.released).toBe(registered.has(k) ? owed : 0n);
            earned.set(k, (earned.get(k) ?? 0n) + x.tokens);
            received.set(k, (received.get(k) ?? 0n) + creditPaid(x));
          }
          // The pool: new holds join, releases leave (each once).
          for (const h of r.releasedHeld) {
            const at = pool.findIndex((p) => p.cycle === h.cycle && p.account === h.account && p.role === h.role && p.beneficiary === h.beneficiary);
            expect(pool[at]!.releasedIn).toBe(null);
            pool[at] = { ...pool[at]!, releasedIn: id };
          }
          pool.push(...r.newlyHeld);
          const heldAfter = sum(pool.filter((h) => h.releasedIn === null).map((h) => h.tokens));
          expect(heldAfter).toBe(heldBefore + r.held - r.released);
          charged += tokens;
          paid += tree;
          // Over all cycles so far: charged == paid + still held.
          expect(charged).toBe(paid + heldAfter);
        });
        // Each beneficiary: earned == received + still held for it; a registered one has nothing held.
        for (const [k, e] of earned) {
          const still = sum(pool.filter((h) => h.releasedIn === null && `${h.role}\u0000${h.beneficiary}` === k).map((h) => h.tokens));
          expect(e).toBe((received.get(k) ?? 0n) + still);
          if (registered.has(k)) expect(still).toBe(0n);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('charges each held credit to the accounts whose records earned it', () => {
    const parts = (miner: bigint): SplitParts => ({ miner, developer: 0n, operator: 0n, charity: 0n });
    const registered = new Map([['operator\u0000op', ADDRESS['operator\u0000op']!], ['charity\u0000ch', ADDRESS['charity\u0000ch']!], ['developer\u0000d1', ADDRESS['developer\u0000d1']!]]);
    const one = closeCycle(1, [{ account: 'a1', miner: 'm1', developer: 'd1', parts: parts(70n) }, { account: 'a2', miner: 'm1', developer: 'd1', parts: parts(30n) }], registered, [], 0);
    expect(one.payoutRoot).toBe(null);
    expect(one.newlyHeld.map((h) => [h.account, h.tokens])).toEqual([['a1', 70n], ['a2', 30n]]);
    expect(one.debits.map((d) => [d.account, d.tokens, d.held, escrowDebit(d)])).toEqual([['a1', 70n, 70n, 0n], ['a2', 30n, 30n, 0n]]);
    // Cycle 2: m1 registers; a3 alone spends. a1 and a2 pay what they owe m1 from cycle 1.
    registered.set('miner\u0000m1', ADDRESS['miner\u0000m1']!);
    const two = closeCycle(2, [{ account: 'a3', miner: 'm1', developer: 'd1', parts: parts(5n) }], registered, one.newlyHeld, 2);
    expect(two.debits.map((d) => [d.account, d.tokens, d.released, escrowDebit(d)])).toEqual([['a1', 0n, 70n, 70n], ['a2', 0n, 30n, 30n], ['a3', 5n, 0n, 5n]]);
    expect(two.payouts.map((p) => [p.address, p.amount])).toEqual([[ADDRESS['miner\u0000m1'], 105n]]);
    expect(two.releasedHeld.every((h) => h.releasedIn === 2)).toBe(true);
  });

  it('never releases a credit into the cycle that held it or an earlier one', () => {
    const held: HeldCredit = { cycle: 3, account: 'a1', role: 'miner' as Beneficiary, beneficiary: 'm1', tokens: 9n, releasedIn: null };
    const registered = new Map([['miner\u0000m1', ADDRESS['miner\u0000m1']!]]);
    expect(closeCycle(3, [], registered, [held], 0).released).toBe(0n);
    expect(closeCycle(4, [], registered, [held], 0).released).toBe(9n);
    expect(BENEFICIARIES).toContain('miner');
  });
});
