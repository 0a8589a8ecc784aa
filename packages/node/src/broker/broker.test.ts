import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CgnError, frame } from '@cgn/protocol';
import { brokerHarness as harness } from './testing.js';

describe('Broker', () => {
  it('assigns at once when a miner slot is free, and completes with the result', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(2));
    const id = h.submit();
    expect(h.workSentTo('m1')).toEqual([id]);
    h.broker.onAck('m1', id);
    h.broker.onResult('m1', h.result(id));
    expect(h.outcomes.get(id)?.kind).toBe('result');
    expect(h.broker.pending).toBe(0);
  });

  it('queues FIFO while miners are full and drains in arrival order', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(1));
    const a = h.submit();
    const b = h.submit();
    const c = h.submit();
    expect(h.workSentTo('m1')).toEqual([a]);
    h.broker.onResult('m1', h.result(a));
    expect(h.workSentTo('m1')).toEqual([a, b]);
    h.broker.onResult('m1', h.result(b));
    expect(h.workSentTo('m1')).toEqual([a, b, c]);
  });

  it('a new miner takes queued work', () => {
    const h = harness();
    const a = h.submit();
    const b = h.submit();
    h.broker.addMiner('m1', h.ad(4));
    expect(h.workSentTo('m1')).toEqual([a, b]);
  });

  it('no ack within the timeout: miner dropped, tunnel closed, work back at the head and run elsewhere', () => {
    const h = harness({ ackTimeoutMs: 100 });
    h.broker.addMiner('dead', h.ad(1));
    const a = h.submit(); // goes to dead
    h.broker.addMiner('ok', h.ad(1));
    const b = h.submit(); // goes to ok
    const c = h.submit(); // queued
    expect(h.workSentTo('dead')).toEqual([a]);
    expect(h.workSentTo('ok')).toEqual([b]);
    h.broker.onAck('ok', b);
    h.advance(101);
    h.broker.sweep();
    expect(h.closed.map((x) => x.miner)).toEqual(['dead']);
    expect(h.closed[0]!.reason).toMatch(/no ack/);
    // a is at the head, before c
    h.broker.onResult('ok', h.result(b));
    expect(h.workSentTo('ok')).toEqual([b, a]);
    h.broker.onResult('ok', h.result(a));
    expect(h.workSentTo('ok')).toEqual([b, a, c]);
    expect(h.outcomes.get(a)?.kind).toBe('result');
  });

  it('a miner that acked is not dropped while it works', () => {
    const h = harness({ ackTimeoutMs: 100 });
    h.broker.addMiner('m1', h.ad(1));
    const a = h.submit();
    h.broker.onAck('m1', a);
    h.advance(5000);
    h.broker.sweep();
    expect(h.closed).toEqual([]);
  });

  it('a miner lost mid-work: its units run on another miner, in their original order', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(3));
    const ids = [h.submit(), h.submit(), h.submit()];
    const later = h.submit();
    h.broker.removeMiner('m1', 'tunnel closed');
    h.broker.addMiner('m2', h.ad(2));
    expect(h.workSentTo('m2')).toEqual([ids[0], ids[1]]);
    h.broker.onResult('m2', h.result(ids[0]!));
    expect(h.workSentTo('m2')).toEqual([ids[0], ids[1], ids[2]]);
    h.broker.onResult('m2', h.result(ids[1]!));
    expect(h.workSentTo('m2')).toEqual([ids[0], ids[1], ids[2], later]);
    expect([...h.outcomes.values()].every((o) => o.kind === 'result')).toBe(true);
  });

  it('gives up with miner_failed after maxAttempts miners failed the unit', () => {
    const h = harness({ maxAttempts: 2 });
    h.broker.addMiner('m1', h.ad(1));
    const a = h.submit();
    h.broker.removeMiner('m1', 'x');
    h.broker.addMiner('m2', h.ad(1));
    h.broker.removeMiner('m2', 'x');
    const o = h.outcomes.get(a);
    expect(o?.kind).toBe('error');
    expect(o?.kind === 'error' && o.error.code).toBe('miner_failed');
  });

  it('retryable work error from a miner: runs elsewhere, preferring another miner', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(2));
    h.broker.addMiner('m2', h.ad(2));
    const a = h.submit();
    const first = h.workSentTo('m1').includes(a) ? 'm1' : 'm2';
    const other = first === 'm1' ? 'm2' : 'm1';
    h.broker.onWorkError(first, frame({ t: 'error', code: 'dservice_unavailable', message: 'down', id: a, retryable: true }));
    expect(h.workSentTo(other)).toContain(a);
  });

  it('deadline: 504 outcome, cancel sent to the miner, slot freed for the next unit', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(1));
    const a = h.submit({ timeoutMs: 50 });
    const b = h.submit({ timeoutMs: 10_000 });
    h.advance(51);
    const o = h.outcomes.get(a);
    expect(o?.kind === 'error' && o.error.code).toBe('deadline_exceeded');
    expect(h.sent.some((s) => s.frame.t === 'cancel' && s.frame.id === a)).toBe(true);
    expect(h.workSentTo('m1')).toEqual([a, b]);
    // a late result for the expired unit is ignored
    h.broker.onResult('m1', h.result(a));
    expect(h.outcomes.get(a)?.kind).toBe('error');
  });

  it('queued unit past its deadline completes with 504 and leaves the queue', () => {
    const h = harness();
    const a = h.submit({ timeoutMs: 10 });
    h.advance(11);
    expect(h.outcomes.get(a)?.kind).toBe('error');
    h.broker.addMiner('m1', h.ad(1));
    expect(h.workSentTo('m1')).toEqual([]);
  });

  it('refuses with queue_full past the depth threshold', () => {
    const h = harness({ maxQueueDepth: 2 });
    h.submit();
    h.submit();
    expect(() => h.submit()).toThrowError(CgnError);
    try {
      h.submit();
    } catch (e) {
      expect((e as CgnError).code).toBe('queue_full');
      expect((e as CgnError).httpStatus).toBe(503);
    }
    expect(h.broker.counters.refusedQueueFull).toBe(2);
  });

  it('refuses with queue_full past the age threshold', () => {
    const h = harness({ maxQueueAgeMs: 100 });
    h.submit();
    h.advance(50);
    h.submit();
    h.advance(60);
    expect(() => h.submit()).toThrowError(/full/);
  });

  it('draining miner gets no new work but finishes what it has', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(2));
    const a = h.submit();
    h.broker.drainMiner('m1');
    const b = h.submit();
    expect(h.workSentTo('m1')).toEqual([a]);
    h.broker.onResult('m1', h.result(a));
    expect(h.outcomes.get(a)?.kind).toBe('result');
    expect(h.workSentTo('m1')).toEqual([a]);
    expect(h.outcomes.has(b)).toBe(false);
  });

  it('cancel frees the slot and tells the miner', () => {
    const h = harness();
    h.broker.addMiner('m1', h.ad(1));
    const a = h.submit();
    const b = h.submit();
    h.broker.cancel(a);
    expect(h.sent.some((s) => s.frame.t === 'cancel' && s.frame.id === a)).toBe(true);
    expect(h.workSentTo('m1')).toEqual([a, b]);
  });

  it('honours per-DService slots within the miner slots', () => {
    const h = harness();
    const ad = h.ad(3, ['mediagen', 'echo']);
    ad.dservices[0]!.slots = 1;
    h.broker.addMiner('m1', ad);
    const a = h.submit({ dservice: 'mediagen' });
    const b = h.submit({ dservice: 'mediagen' }); // mediagen's one slot is taken: queued
    const c = h.submit({ dservice: 'echo' });
    const d = h.submit({ dservice: 'echo' });
    const e = h.submit({ dservice: 'echo' }); // the miner's 3 slots are taken
    expect(h.workSentTo('m1')).toEqual([a, c, d]);
    h.broker.onResult('m1', h.result(a));
    expect(h.workSentTo('m1')).toEqual([a, c, d, b]);
    h.broker.onResult('m1', h.result(c));
    expect(h.workSentTo('m1')).toEqual([a, c, d, b, e]);
  });

  it('routes by DService and tier', () => {
    const h = harness();
    h.broker.addMiner('img', h.ad(1, ['mediagen']));
    h.broker.addMiner('echo', h.ad(1, ['echo']));
    const a = h.submit({ dservice: 'mediagen' });
    const b = h.submit({ dservice: 'echo' });
    const c = h.submit({ dservice: 'echo', tier: 'dedicated' });
    expect(h.workSentTo('img')).toEqual([a]);
    expect(h.workSentTo('echo')).toEqual([b]);
    expect(h.outcomes.has(c)).toBe(false);
  });

  describe('fair queueing among accounts', () => {
    const serveAll = (h: ReturnType<typeof harness>, miner: string) => {
      for (let i = 0; i < 1000; i++) {
        const ids = h.workSentTo(miner).filter((id) => !h.outcomes.has(id));
        if (ids.length === 0) return;
        for (const id of ids) h.broker.onResult(miner, h.result(id));
      }
    };

    it("one account's flood does not make another wait behind it", () => {
      const h = harness();
      h.broker.addMiner('m1', h.ad(1));
      const flood = Array.from({ length: 200 }, () => h.submit({ account: 'flood' }));
      const v1 = h.submit({ account: 'victim' });
      const v2 = h.submit({ account: 'victim' });
      serveAll(h, 'm1');
      const order = h.workSentTo('m1');
      expect(order.indexOf(v1)).toBeLessThanOrEqual(2);
      expect(order.indexOf(v2)).toBeLessThanOrEqual(4);
      expect(order.filter((id) => flood.includes(id))).toEqual(flood); // the flood keeps its own order
    });

    it('weights set the shares: an account of weight 3 gets three turns for one', () => {
      const h = harness({}, { weightOf: (a) => (a === 'big' ? 3 : 1) });
      h.broker.addMiner('m1', h.ad(1));
      const blocker = h.submit({ account: 'small' });
      const big = Array.from({ length: 30 }, () => h.submit({ account: 'big' }));
      const small = Array.from({ length: 30 }, () => h.submit({ account: 'small' }));
      serveAll(h, 'm1');
      const first20 = h.workSentTo('m1').filter((id) => id !== blocker).slice(0, 20);
      const bigServed = first20.filter((id) => big.includes(id)).length;
      expect(bigServed).toBeGreaterThanOrEqual(14);
      expect(bigServed).toBeLessThanOrEqual(16);
      expect(small.every((id) => h.outcomes.get(id)?.kind === 'result')).toBe(true);
    });

    it('through the broker, under any arrivals and completions, no unit waits behind more than its weighted share of another account', () => {
      const accounts = ['a', 'b', 'c'];
      fc.assert(
        fc.property(
          fc.array(fc.oneof(fc.record({ arrive: fc.constantFrom(...accounts), n: fc.integer({ min: 1, max: 20 }) }), fc.record({ complete: fc.integer({ min: 1, max: 10 }) })), { maxLength: 60 }),
          fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 3, maxLength: 3 }),
          fc.integer({ min: 1, max: 3 }),
          (ops, ws, slots) => {
            const weight = Object.fromEntries(accounts.map((a, i) => [a, ws[i]!]));
            const h = harness({ maxQueueDepth: 1e6, maxQueueAgeMs: 1e9 }, { weightOf: (a) => weight[a]! });
            h.broker.addMiner('m1', h.ad(slots));
            const info = new Map<string, { account: string; k: number; seen: Map<string, number> }>();
            const account = new Map<string, string>();
            let dispatched = 0;
            const check = () => {
              const sent = h.workSentTo('m1');
              for (; dispatched < sent.length; dispatched++) {
                const id = sent[dispatched]!;
                const me = info.get(id);
                info.delete(id);
                const by = account.get(id)!;
                for (const [, w] of info) if (w.account !== by) w.seen.set(by, (w.seen.get(by) ?? 0) + 1);
                if (me === undefined) continue;
                // the k-th of its account waits behind at most floor(k * wb / wa) + 1 units of each other account b
                for (const [b, n] of me.seen) expect(n).toBeLessThanOrEqual(Math.floor((me.k * weight[b]!) / weight[me.account]! + 1e-9) + 1);
              }
            };
            for (const o of ops) {
              if ('arrive' in o) {
                for (let i = 0; i < o.n; i++) {
                  const queued = [...info.values()].filter((w) => w.account === o.arrive).length;
                  const id = h.submit({ account: o.arrive });
                  account.set(id, o.arrive);
                  info.set(id, { account: o.arrive, k: queued + 1, seen: new Map() });
                  check();
                }
              } else {
                for (let i = 0; i < o.complete; i++) {
                  const running = h.workSentTo('m1').filter((id) => !h.outcomes.has(id));
                  if (running.length === 0) break;
                  h.broker.onResult('m1', h.result(running[0]!));
                  check();
                }
              }
            }
          },
        ),
        { numRuns: 150 },
      );
    });

    it('a full queue still takes work of an account holding less than an equal share; the flooder is refused', () => {
      const h = harness({ maxQueueDepth: 10 });
      for (let i = 0; i < 10; i++) h.submit({ account: 'flood' });
      expect(() => h.submit({ account: 'flood' })).toThrowError(/full/);
      for (let i = 0; i < 5; i++) h.submit({ account: 'victim' });
      expect(() => h.submit({ account: 'victim' })).toThrowError(/full/);
    });

    it('the age threshold is read from the account\'s own oldest unit', () => {
      const h = harness({ maxQueueAgeMs: 100 });
      h.submit({ account: 'flood' });
      h.advance(150);
      expect(() => h.submit({ account: 'flood' })).toThrowError(/full/);
      expect(() => h.submit({ account: 'victim' })).not.toThrow();
    });
  });

  it('servable: a connected miner could take the work, busy or not; not one without the memory, draining, or in another tier', () => {
    const h = harness({}, { memoryOf: (d) => (d === 'big' ? 512 : 64) });
    expect(h.broker.servable('echo', 'open')).toBe(false);
    const small = h.ad(1, ['echo', 'big']);
    small.resources.memoryMb = 100;
    h.broker.addMiner('m1', small);
    expect(h.broker.servable('echo', 'open')).toBe(true);
    expect(h.broker.servable('echo', 'dedicated')).toBe(false);
    expect(h.broker.servable('big', 'open')).toBe(false);
    h.submit(); // takes the only slot: busy is still servable
    expect(h.broker.servable('echo', 'open')).toBe(true);
    const big = h.submit({ dservice: 'big' });
    h.broker.onResult('m1', h.result(h.workSentTo('m1')[0]!));
    expect(h.workSentTo('m1')).not.toContain(big); // too little memory: never sent there
    h.broker.drainMiner('m1');
    expect(h.broker.servable('echo', 'open')).toBe(false);
    expect(h.broker.minersOf('big')).toMatchObject([{ id: 'm1', memoryMb: 100, draining: true }]);
  });
});
