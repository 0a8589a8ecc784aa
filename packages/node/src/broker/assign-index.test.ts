import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { frame, type AdvertiseFrame } from '@cgn/protocol';
import { IndexedSet } from './indexed-set.js';
import { pickSampled, xorshift, type SampleView } from './assign.js';
import { brokerHarness as harness } from './testing.js';

describe('IndexedSet', () => {
  it('property: behaves as a set under any adds and deletes, items packed', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 15 })), { maxLength: 200 }), (ops) => {
        const s = new IndexedSet<number>();
        const model = new Set<number>();
        for (const [add, x] of ops) {
          expect(add ? s.add(x) : s.delete(x)).toBe(add ? !model.has(x) : model.has(x));
          if (add) model.add(x);
          else model.delete(x);
          expect(s.size).toBe(model.size);
          expect(new Set(s.items)).toEqual(model);
          for (let i = 0; i < 16; i++) expect(s.has(i)).toBe(model.has(i));
        }
      }),
    );
  });
});

describe('pickSampled', () => {
  const view = (score: Record<string, number>, banned: string[] = []): SampleView<string> => ({
    admissible: (m) => !banned.includes(m),
    score: (m) => score[m]!,
    inFlight: () => 0,
  });
  const seq = (...xs: number[]) => () => xs.shift() ?? 0;

  it('takes the lower score of two distinct draws', () => {
    const free = ['a', 'b', 'c', 'd'];
    expect(pickSampled(free, seq(0, 0, 0.5), view({ a: 5, b: 1, c: 3, d: 0 }))).toBe('c'); // draws a, a (skipped), c
    expect(pickSampled(free, seq(0.3, 0.9), view({ a: 5, b: 1, c: 3, d: 0 }))).toBe('d');
  });

  it('skips inadmissible draws and gives up (null) when it cannot find two', () => {
    expect(pickSampled(['a', 'b', 'c'], seq(0, 0.5, 0.9), view({ a: 1, b: 2, c: 3 }, ['a']))).toBe('b');
    expect(pickSampled(['a', 'b', 'c'], xorshift(7), view({ a: 1, b: 2, c: 3 }, ['a', 'b']))).toBeNull();
  });
});

const ad = (slots: number, dservices: [string, number][]): AdvertiseFrame =>
  frame({ t: 'advertise', tier: 'open', slots, dservices: dservices.map(([name, s]) => ({ name, version: '1', digest: 'd', slots: s })), resources: { cpus: 1, memoryMb: 1 } });

describe('Broker assignment over a large pool (the free index)', () => {
  it('spreads work over equally good miners instead of piling it on one', () => {
    const h = harness();
    for (let i = 0; i < 1000; i++) h.broker.addMiner(`m${String(i).padStart(4, '0')}`, h.ad(4));
    const served = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const id = h.submit();
      const to = h.sent[h.sent.length - 1]!.miner;
      served.set(to, (served.get(to) ?? 0) + 1);
      h.broker.onResult(to, h.result(id));
    }
    expect(served.size).toBeGreaterThan(900);
    expect(Math.max(...served.values())).toBeLessThan(20);
  });

  it('still prefers faster miners: of two equal halves, the fast one does most of the work', () => {
    const h = harness();
    for (let i = 0; i < 40; i++) h.broker.addMiner(`${i % 2 === 0 ? 'fast' : 'slow'}${i}`, h.ad(4));
    // One unit each to learn their latencies: 1 ms and 10 ms.
    const first = Array.from({ length: 40 }, () => h.submit());
    const sentTo = new Map(h.sent.map((s) => [(s.frame as { id: string }).id, s.miner]));
    h.advance(1);
    for (const id of first) if (sentTo.get(id)!.startsWith('fast')) h.broker.onResult(sentTo.get(id)!, h.result(id));
    h.advance(9);
    for (const id of first) if (sentTo.get(id)!.startsWith('slow')) h.broker.onResult(sentTo.get(id)!, h.result(id));
    let fast = 0;
    for (let i = 0; i < 2000; i++) {
      const id = h.submit();
      const to = h.sent[h.sent.length - 1]!.miner;
      if (to.startsWith('fast')) fast++;
      h.advance(to.startsWith('fast') ? 1 : 10);
      h.broker.onResult(to, h.result(id));
    }
    // Best of two draws: a fast miner wins unless both are slow (1 - 20/40 * 19/39 = 76%).
    expect(fast).toBeGreaterThan(1400);
  });

  it('property: under any joins, leaves, drains, results and failures, no miner exceeds its slots, none gets work it may not take, and work waits only while every able miner is full', () => {
    // Few miners (so work waits) and more arrivals than anything else.
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.record({ submit: fc.constantFrom('echo', 'img') }) },
      { weight: 3, arbitrary: fc.record({ complete: fc.nat(), fail: fc.boolean() }) },
      { weight: 2, arbitrary: fc.record({ join: fc.integer({ min: 0, max: 11 }), slots: fc.integer({ min: 1, max: 3 }), echo: fc.integer({ min: 0, max: 3 }), img: fc.integer({ min: 0, max: 3 }) }) },
      { weight: 1, arbitrary: fc.record({ leave: fc.integer({ min: 0, max: 11 }) }) },
      { weight: 1, arbitrary: fc.record({ drain: fc.integer({ min: 0, max: 11 }) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 150 }), (ops) => {
        const h = harness({ maxQueueDepth: 10_000, maxQueueAgeMs: 1e9 });
        const present = new Map<string, { draining: boolean }>();
        const held = new Map<string, string>(); // work id -> miner
        let seen = 0;
        const absorb = () => {
          for (; seen < h.sent.length; seen++) {
            const s = h.sent[seen]!;
            if (s.frame.t !== 'work') continue;
            const m = present.get(s.miner);
            expect(m !== undefined && !m.draining).toBe(true); // only joined, non-draining miners get work
            held.set(s.frame.id, s.miner);
          }
        };
        const inUse = new Map<string, number>(); // before the op, per miner and per (miner, DService)
        // A miner that advertised fewer slots while holding work may be over them; it gets nothing more.
        const within = (k: string, used: number, slots: number) => expect(used <= slots || used <= (inUse.get(k) ?? 0)).toBe(true);
        for (const o of ops) {
          if ('submit' in o) h.submit({ dservice: o.submit });
          else if ('complete' in o) {
            const ids = [...held.keys()];
            if (ids.length === 0) continue;
            const id = ids[o.complete % ids.length]!;
            const miner = held.get(id)!;
            held.delete(id);
            if (o.fail) h.broker.onWorkError(miner, { t: 'error', id, code: 'x', message: 'x', retryable: true } as never);
            else h.broker.onResult(miner, h.result(id));
          } else if ('join' in o) {
            const ds: [string, number][] = [];
            if (o.echo > 0) ds.push(['echo', o.echo]);
            if (o.img > 0) ds.push(['img', o.img]);
            if (ds.length === 0) continue;
            const id = `m${o.join}`;
            present.set(id, { draining: false }); // advertising again resumes a drained miner
            h.broker.addMiner(id, ad(o.slots, ds));
          } else if ('leave' in o) {
            const id = `m${o.leave}`;
            present.delete(id);
            for (const [w, m] of held) if (m === id) held.delete(w);
            h.broker.removeMiner(id, 'test');
          } else {
            const id = `m${o.drain}`;
            const m = present.get(id);
            if (m !== undefined) m.draining = true;
            h.broker.drainMiner(id);
          }
          absorb();
          const snap = h.broker.snapshot();
          for (const m of snap.miners) within(m.id, m.inUse, m.slots);
          for (const ds of ['echo', 'img']) {
            const miners = h.broker.minersOf(ds);
            for (const m of miners) within(`${m.id}/${ds}`, m.inUse, m.slots);
            if (h.broker.queueOf(ds, 'open').depth === 0) continue;
            for (const m of miners) {
              if (m.draining) continue;
              const total = snap.miners.find((x) => x.id === m.id)!;
              expect(m.inUse >= m.slots || total.inUse >= total.slots).toBe(true);
            }
          }
          inUse.clear();
          for (const m of snap.miners) inUse.set(m.id, m.inUse);
          for (const ds of ['echo', 'img']) for (const m of h.broker.minersOf(ds)) inUse.set(`${m.id}/${ds}`, m.inUse);
        }
      }),
      { numRuns: 150 },

    );
  });
});
