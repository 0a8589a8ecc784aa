import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { frame, type AdvertiseFrame } from '@cgn/protocol';
import { regionAllowed } from '@cgn/scheduler';
import { regionKeys } from './broker.js';
import { brokerHarness } from './testing.js';

const ad = (slots: number, region?: string): AdvertiseFrame =>
  frame({ t: 'advertise', tier: 'open', slots, dservices: [{ name: 'echo', version: '1', digest: 'd' }], resources: { cpus: 1, memoryMb: 1 }, ...(region !== undefined ? { region } : {}) });

/** A broker whose accounts have the given fences (absent: anywhere). */
function fenced(fences: Record<string, string[]>, options: Parameters<typeof brokerHarness>[0] = {}) {
  const sets = new Map(Object.entries(fences).map(([a, r]) => [a, new Set(r) as ReadonlySet<string>]));
  return brokerHarness(options, { regionsOf: (a) => sets.get(a) ?? null });
}

const holder = (h: ReturnType<typeof brokerHarness>, id: string) => h.sent.find((s) => s.frame.t === 'work' && (s.frame as { id: string }).id === id)?.miner;

describe('region keys', () => {
  it('a miner is under its region and each parent of it; none without a region', () => {
    expect(regionKeys('eu-west-1')).toEqual(['eu-west-1', 'eu', 'eu-west']);
    expect(regionKeys('eu')).toEqual(['eu']);
    expect(regionKeys(undefined)).toEqual([]);
    expect(regionKeys('a-b-c-d-e-f-g-h-i-j-k').length).toBe(8); // bounded
  });

  it('property: the broker\'s fence admits exactly the miners placement\'s filter (regionAllowed) does', () => {
    const segment = fc.stringMatching(/^[a-z0-9]{1,3}$/);
    const region = fc.array(segment, { minLength: 1, maxLength: 7 }).map((xs) => xs.join('-'));
    fc.assert(
      fc.property(fc.option(region, { nil: undefined }), fc.array(region, { minLength: 1, maxLength: 4 }), (r, fence) => {
        // Fences drawn from the miner's own prefixes too, so that matches are common.
        const near = r === undefined ? fence : [...fence, r.split('-').slice(0, 1 + (fence.length % 3)).join('-')];
        const set = new Set(near);
        expect(regionKeys(r).some((k) => set.has(k))).toBe(regionAllowed(r, near));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('Broker region fence', () => {
  it('sends an account limited to regions only to miners in (or under) them, never to one without a region', () => {
    const h = fenced({ acme: ['eu'] });
    h.broker.addMiner('us', ad(4, 'us-east'));
    h.broker.addMiner('none', ad(4));
    h.broker.addMiner('eu', ad(4, 'eu-west-1'));
    const ids = [h.submit({ account: 'acme' }), h.submit({ account: 'acme' }), h.submit({ account: 'acme' })];
    for (const id of ids) expect(holder(h, id)).toBe('eu');
    // Other accounts go anywhere, the free miners first.
    const other = h.submit({ account: 'beta' });
    expect(['us', 'none']).toContain(holder(h, other));
  });

  it('a fenced unit waits for its region while others use the miners outside it, and runs when its region frees up', () => {
    const h = fenced({ acme: ['eu'] });
    h.broker.addMiner('eu', ad(1, 'eu'));
    h.broker.addMiner('us', ad(1, 'us'));
    const a1 = h.submit({ account: 'acme' });
    expect(holder(h, a1)).toBe('eu');
    const a2 = h.submit({ account: 'acme' }); // eu busy: queued, not sent to us
    expect(holder(h, a2)).toBeUndefined();
    const b1 = h.submit({ account: 'beta' }); // behind a2 in the queue, but us may take it
    expect(holder(h, b1)).toBe('us');
    const b2 = h.submit({ account: 'beta' }); // everything busy: queued
    h.broker.onResult('us', h.result(b1));
    expect(holder(h, b2)).toBe('us'); // us skips a2, which it may not take
    expect(holder(h, a2)).toBeUndefined();
    h.broker.onResult('eu', h.result(a1));
    expect(holder(h, a2)).toBe('eu');
    expect(h.outcomes.get(a1)?.kind).toBe('result');
  });

  it('tells placement the work it holds, queued or running, per fence', () => {
    const h = fenced({ acme: ['eu'], beta: ['us-east', 'ap'], delta: ['ap', 'us-east'] });
    h.broker.addMiner('eu', ad(1, 'eu'));
    const at = () => h.broker.fencesWaiting('echo', 'open');
    expect(at()).toBeNull();
    const g1 = h.submit({ account: 'gamma' }); // anywhere, running on eu: nothing fenced, the queue's figures say all
    expect(at()).toBeNull();
    h.broker.onResult('eu', h.result(g1));
    const a1 = h.submit({ account: 'acme' }); // running on eu
    expect(at()).toEqual([{ regions: ['eu'], queued: 0, running: 1, oldestMs: 0 }]);
    h.submit({ account: 'beta' }); // queued: no miner in its regions
    h.advance(300);
    h.submit({ account: 'delta' }); // the same fence, another account's set
    const c1 = h.submit({ account: 'gamma' }); // anywhere: queued behind the eu miner's one slot
    expect(at()).toEqual(expect.arrayContaining([
      { regions: ['eu'], queued: 0, running: 1, oldestMs: 0 },
      { regions: ['ap', 'us-east'], queued: 2, running: 0, oldestMs: 300 },
      { regions: null, queued: 1, running: 0, oldestMs: 0 },
    ]));
    expect(at()).toHaveLength(3);
    h.broker.cancel(c1);
    h.broker.onResult('eu', h.result(a1));
    expect(at()).toEqual([{ regions: ['ap', 'us-east'], queued: 2, running: 0, oldestMs: 300 }]);
    h.advance(20_000); // the queued ones pass their deadline
    expect(at()).toBeNull();
  });

  it('many accounts with the same regions are one fence, however many', () => {
    const accounts = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`eu${i}`, ['eu']]));
    const h = fenced({ ...accounts, ap: ['ap'] });
    for (let i = 0; i < 300; i++) h.submit({ account: `eu${i}` });
    h.submit({ account: 'ap' });
    expect(h.broker.fencesWaiting('echo', 'open')).toEqual(expect.arrayContaining([
      { regions: ['eu'], queued: 300, running: 0, oldestMs: 0 },
      { regions: ['ap'], queued: 1, running: 0, oldestMs: 0 },
    ]));
    expect(h.broker.fencesWaiting('echo', 'open')).toHaveLength(2);
  });

  it('a miner that found nothing it may take in a fenced queue looks again once work is added', () => {
    const h = fenced({ acme: ['eu'] });
    h.broker.addMiner('eu', ad(1, 'eu'));
    h.broker.addMiner('us', ad(1, 'us'));
    const a1 = h.submit({ account: 'acme' });
    h.submit({ account: 'acme' }); // waits for eu
    const b1 = h.submit({ account: 'beta' });
    expect(holder(h, b1)).toBe('us');
    h.broker.onResult('us', h.result(b1)); // us scans the queue: nothing it may take
    const b2 = h.submit({ account: 'beta' });
    expect(holder(h, b2)).toBe('us');
    const b3 = h.submit({ account: 'beta' }); // nothing free: queued behind the fenced unit
    expect(holder(h, b3)).toBeUndefined();
    h.broker.onResult('us', h.result(b2));
    expect(holder(h, b3)).toBe('us');
    expect(h.outcomes.has(a1)).toBe(false);
  });

  it('a fenced unit queued with no miner in its region runs on one that joins later, not before', () => {
    const h = fenced({ acme: ['eu'] });
    h.broker.addMiner('us', ad(2, 'us'));
    const a = h.submit({ account: 'acme' });
    expect(holder(h, a)).toBeUndefined();
    expect(h.broker.servable('echo', 'open', new Set(['eu']))).toBe(false);
    expect(h.broker.servable('echo', 'open', null)).toBe(true);
    h.broker.addMiner('eu2', ad(1, 'eu-north'));
    expect(holder(h, a)).toBe('eu2');
    expect(h.broker.servable('echo', 'open', new Set(['eu']))).toBe(true);
  });

  it('a miner lost mid-work gives its fenced unit back to its region only', () => {
    const h = fenced({ acme: ['eu'] });
    h.broker.addMiner('eu1', ad(1, 'eu'));
    h.broker.addMiner('us', ad(1, 'us'));
    const a = h.submit({ account: 'acme' });
    expect(holder(h, a)).toBe('eu1');
    h.broker.removeMiner('eu1', 'gone');
    expect(h.workSentTo('us')).toEqual([]);
    h.broker.addMiner('eu2', ad(1, 'eu'));
    expect(h.workSentTo('eu2')).toEqual([a]);
  });

  it('in a large pool, fenced units go to the few miners of their region, spread over them', () => {
    const h = fenced({ acme: ['eu'] });
    for (let i = 0; i < 1000; i++) h.broker.addMiner(`m${i}`, ad(4, i % 100 === 0 ? 'eu' : 'us'));
    const served = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const id = h.submit({ account: 'acme' });
      const to = holder(h, id)!;
      expect(Number(to.slice(1)) % 100).toBe(0);
      served.set(to, (served.get(to) ?? 0) + 1);
      h.broker.onResult(to, h.result(id));
    }
    expect(served.size).toBe(10);
  });

  it('verification replicas obey the fence: each on a distinct miner of the region, the second waits rather than leave it', () => {
    const h = fenced({ acme: ['eu'] }, { redundancy: 1 });
    h.broker.addMiner('eu1', ad(1, 'eu'));
    for (let i = 0; i < 20; i++) h.broker.addMiner(`us${i}`, ad(1, 'us'));
    const id = h.submit({ account: 'acme' });
    expect(h.workSentTo('eu1')).toEqual([`${id}~1`]);
    for (let i = 0; i < 20; i++) expect(h.workSentTo(`us${i}`)).toEqual([]);
    h.broker.addMiner('eu2', ad(1, 'eu-west'));
    expect(h.workSentTo('eu2')).toEqual([`${id}~2`]);
  });

  it('property: no unit ever runs outside its account\'s regions, and none waits while a miner it may use is free', () => {
    const REGIONS = ['eu', 'eu-west', 'us', 'us-east', 'ap'];
    const FENCES: Record<string, string[]> = { a: ['eu'], b: ['us-east', 'ap'], c: ['eu-west'] }; // d: anywhere
    const within = (region: string | undefined, fence: string[] | undefined) =>
      fence === undefined || (region !== undefined && fence.some((f) => region === f || region.startsWith(`${f}-`)));
    const op = fc.oneof(
      fc.record({ k: fc.constant('join' as const), region: fc.option(fc.constantFrom(...REGIONS), { nil: undefined }), slots: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ k: fc.constant('submit' as const), account: fc.constantFrom('a', 'b', 'c', 'd'), n: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ k: fc.constant('finish' as const), pick: fc.nat() }),
      fc.record({ k: fc.constant('fail' as const), pick: fc.nat() }),
      fc.record({ k: fc.constant('leave' as const), pick: fc.nat() }),
      fc.record({ k: fc.constant('drain' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), fc.boolean(), (ops, redundant) => {
        const h = fenced(FENCES, redundant ? { redundancy: 1 } : {});
        const miners = new Map<string, { region: string | undefined; slots: number; held: Set<string>; draining: boolean }>();
        const accountOf = new Map<string, string>();
        /** Units (a request, or its replicas `id~1`, `id~2`) not finished yet, and the miners each run was ever sent to. */
        const units = new Set<string>();
        const ranOn = new Map<string, Set<string>>();
        const runOf = (unit: string) => unit.split('~')[0]!;
        let seen = 0;
        let joined = 0;
        const check = () => {
          // Every work frame sent went to a miner inside its unit's fence.
          for (; seen < h.sent.length; seen++) {
            const s = h.sent[seen]!;
            if (s.frame.t !== 'work') continue;
            const id = (s.frame as { id: string }).id;
            const m = miners.get(s.miner)!;
            expect(within(m.region, FENCES[accountOf.get(runOf(id))!])).toBe(true);
            m.held.add(id);
            units.add(id);
            ranOn.get(runOf(id))!.add(s.miner);
          }
          // Nothing waits while a miner it may use has a free slot: one inside its fence (and for
          // a replica, one that no replica of its run was sent to).
          const held = new Set<string>();
          for (const m of miners.values()) for (const id of m.held) held.add(id);
          const waiting = [...units].filter((u) => !h.outcomes.has(runOf(u)) && !held.has(u));
          for (const [mid, m] of miners) {
            if (m.draining || m.held.size >= m.slots) continue;
            for (const u of waiting) {
              const may = within(m.region, FENCES[accountOf.get(runOf(u))!]) && !(u.includes('~') && ranOn.get(runOf(u))!.has(mid));
              expect({ free: mid, waiting: u, may }).toEqual({ free: mid, waiting: u, may: false });
            }
          }
        };
        for (const o of ops) {
          if (o.k === 'join') {
            const id = `m${joined++}`;
            miners.set(id, { region: o.region, slots: o.slots, held: new Set(), draining: false });
            h.broker.addMiner(id, ad(o.slots, o.region));
          } else if (o.k === 'submit') {
            for (let i = 0; i < o.n; i++) {
              const id = `w${accountOf.size}`;
              accountOf.set(id, o.account);
              ranOn.set(id, new Set());
              h.submit({ id, account: o.account });
              if (redundant) units.add(`${id}~1`).add(`${id}~2`);
              else units.add(id);
            }
          } else {
            const busy = [...miners.entries()].filter(([, m]) => m.held.size > 0 || o.k === 'leave' || o.k === 'drain');
            if (busy.length === 0) continue;
            const [mid, m] = busy[o.pick % busy.length]!;
            if (o.k === 'leave') {
              h.broker.removeMiner(mid, 'gone');
              miners.delete(mid);
            } else if (o.k === 'drain') {
              h.broker.drainMiner(mid);
              m.draining = true;
            } else {
              const wid = [...m.held][0]!;
              m.held.delete(wid);
              if (o.k === 'finish') units.delete(wid);
              if (o.k === 'finish') h.broker.onResult(mid, h.result(wid));
              else h.broker.onWorkError(mid, { t: 'error', id: wid, code: 'x', message: 'boom', retryable: true } as never);
            }
          }
          check();
        }
      }),
      { numRuns: 500 },
    );
  });
});
