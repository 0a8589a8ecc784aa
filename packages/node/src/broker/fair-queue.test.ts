import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FairQueue } from './fair-queue.js';

interface Req {
  account: string;
  n: number;
}

const fq = (weights: Record<string, number> = {}) => new FairQueue<Req>((r) => r.account, (a) => weights[a] ?? 1);
const drain = (q: FairQueue<Req>): string[] => {
  const out: string[] = [];
  for (let r = q.shift(); r !== undefined; r = q.shift()) out.push(`${r.account}${r.n}`);
  return out;
};

describe('FairQueue', () => {
  it('is FIFO for one account', () => {
    const q = fq();
    for (let n = 0; n < 5; n++) q.push({ account: 'a', n });
    expect(drain(q)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
  });

  it('a burst of one account does not hold back another: they alternate', () => {
    const q = fq();
    for (let n = 0; n < 100; n++) q.push({ account: 'flood', n });
    q.push({ account: 'v', n: 0 });
    q.push({ account: 'v', n: 1 });
    expect(drain(q).slice(0, 5)).toEqual(['flood0', 'v0', 'flood1', 'v1', 'flood2']);
  });

  it('weights share the turns: weight 3 gets three for one', () => {
    const q = fq({ big: 3 });
    for (let n = 0; n < 8; n++) q.push({ account: 'big', n });
    for (let n = 0; n < 8; n++) q.push({ account: 'small', n });
    const first8 = drain(q).slice(0, 8);
    expect(first8.filter((x) => x.startsWith('big'))).toHaveLength(6);
  });

  it('an account that was idle does not bank credit for later', () => {
    const q = fq();
    for (let n = 0; n < 10; n++) q.push({ account: 'a', n });
    for (let i = 0; i < 8; i++) q.shift();
    for (let n = 0; n < 10; n++) q.push({ account: 'b', n });
    q.push({ account: 'a', n: 10 });
    // b joins now: it alternates with a from here, it does not get 8 turns in a row
    expect(drain(q).slice(0, 4)).toEqual(['b0', 'a8', 'b1', 'a9']);
  });

  it('work handed back goes first; a dropped head does not cost its account a turn', () => {
    const q = fq();
    q.push({ account: 'a', n: 0 });
    q.push({ account: 'a', n: 1 });
    q.push({ account: 'b', n: 0 });
    q.unshift({ account: 'b', n: 9 });
    expect(q.length).toBe(4);
    expect(q.peek()).toEqual({ account: 'b', n: 9 });
    q.shift();
    expect(q.dropHead()).toEqual({ account: 'a', n: 0 });
    expect(drain(q)).toEqual(['a1', 'b0']);
  });

  it('remove takes an item out of turn and charges its account', () => {
    const q = fq();
    const items = [0, 1, 2].map((n) => ({ account: 'a', n }));
    for (const r of items) q.push(r);
    q.push({ account: 'b', n: 0 });
    expect(q.remove(items[1]!)).toBe(true);
    expect(q.remove({ account: 'a', n: 7 })).toBe(false);
    expect(q.depthOf('a')).toBe(2);
    expect(drain(q)).toEqual(['b0', 'a0', 'a2']);
  });

  it('under any arrival sequence no request waits behind more than its weighted share of any other account', () => {
    const accounts = ['a', 'b', 'c', 'd'];
    const op = fc.oneof(
      { arbitrary: fc.record({ k: fc.constant('arrive' as const), account: fc.constantFrom(...accounts), count: fc.integer({ min: 1, max: 40 }) }), weight: 3 },
      { arbitrary: fc.record({ k: fc.constant('serve' as const), count: fc.integer({ min: 1, max: 30 }) }), weight: 2 },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 4, maxLength: 4 }), (ops, ws) => {
        const weight: Record<string, number> = Object.fromEntries(accounts.map((a, i) => [a, ws[i]!]));
        const q = new FairQueue<{ account: string; k: number; servedOthers: Map<string, number> }>((r) => r.account, (a) => weight[a]!);
        const waiting = new Set<{ account: string; k: number; servedOthers: Map<string, number> }>();
        const serveOne = () => {
          const r = q.shift();
          if (r === undefined) return;
          waiting.delete(r);
          for (const w of waiting) if (w.account !== r.account) w.servedOthers.set(r.account, (w.servedOthers.get(r.account) ?? 0) + 1);
          for (const [b, n] of r.servedOthers) {
            // r was k-th in its account's queue when it arrived
            const bound = Math.floor((r.k * weight[b]!) / weight[r.account]! + 1e-9) + 1;
            if (n > bound) throw new Error(`${r.account} (weight ${weight[r.account]}, k=${r.k}) waited behind ${n} of ${b} (weight ${weight[b]}), bound ${bound}`);
          }
        };
        for (const o of ops) {
          if (o.k === 'arrive') {
            for (let i = 0; i < o.count; i++) {
              const r = { account: o.account, k: q.depthOf(o.account) + 1, servedOthers: new Map<string, number>() };
              q.push(r);
              waiting.add(r);
            }
          } else for (let i = 0; i < o.count; i++) serveOne();
        }
        while (q.length > 0) serveOne();
        expect(waiting.size).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('serves every item exactly once, per account in arrival order, under any mix of operations', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('push' as const), account: fc.constantFrom('a', 'b', 'c') }),
      fc.record({ k: fc.constant('unshift' as const), account: fc.constantFrom('a', 'b') }),
      fc.record({ k: fc.constant('shift' as const) }),
      fc.record({ k: fc.constant('drop' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const q = fq({ a: 2 });
        let n = 0;
        const inQueue = new Set<Req>();
        const lastServed = new Map<string, number>();
        for (const o of ops) {
          if (o.k === 'push' || o.k === 'unshift') {
            const r = { account: o.account, n: o.k === 'push' ? n++ : -1 };
            q[o.k](r);
            inQueue.add(r);
          } else {
            const r = o.k === 'shift' ? q.shift() : q.dropHead();
            if (r === undefined) expect(inQueue.size).toBe(0);
            else {
              expect(inQueue.delete(r)).toBe(true);
              if (r.n >= 0) {
                expect(r.n).toBeGreaterThan(lastServed.get(r.account) ?? -1);
                lastServed.set(r.account, r.n);
              }
            }
          }
          expect(q.length).toBe(inQueue.size);
          expect(new Set(q)).toEqual(inQueue);
        }
      }),
    );
  });
});
