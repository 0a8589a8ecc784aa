import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ledgerAddressLookup, ledgerServiceLevels, levelsByAddress, serviceLevels, smoothServiceLevels, type ActivityLine, type ServiceLevel } from './reputation.js';
import { SqliteLedgerStore } from './sqlite-store.js';
import { makeRecord } from './test-fixtures/records.js';

const line = (subject: string, dservice: string, records: number, failures: number, latencyUs: number): ActivityLine => ({ subject, dservice, records, failures, latencyUs });
const bpsOf = (levels: ServiceLevel[], s: string) => levels.find((l) => l.subject === s)?.bps;

const arbLines = fc.array(
  fc
    .record({
      subject: fc.constantFrom('m1', 'm2', 'm3', 'm4'),
      dservice: fc.constantFrom('a', 'b', 'c'),
      records: fc.integer({ min: 0, max: 10_000 }),
      failRatio: fc.double({ min: 0, max: 1, noNaN: true }),
      meanUs: fc.integer({ min: 0, max: 10_000_000 }),
    })
    .map((r) => line(r.subject, r.dservice, r.records, Math.floor(r.records * r.failRatio), r.records * r.meanUs)),
  { minLength: 1, maxLength: 12 },
);

describe('service levels', () => {
  it('follows the documented formula', () => {
    // m1: 100 records on a, 10 failed, twice as slow as m2; m2: 10 records, all fine.
    const levels = serviceLevels([line('m1', 'a', 100, 10, 100 * 2000), line('m2', 'a', 10, 0, 10 * 1000)]);
    const m1 = levels.find((l) => l.subject === 'm1')!;
    const m2 = levels.find((l) => l.subject === 'm2')!;
    expect(m1).toMatchObject({ records: 100, failures: 10, success: 0.9, latency: 0.5, volume: 1, penalized: false });
    expect(m1.bps).toBe(Math.round(10_000 * 0.9 * (0.5 + 0.25 * 0.5 + 0.25 * 1)));
    expect(m2.latency).toBe(1);
    expect(m2.volume).toBeCloseTo(Math.log(11) / Math.log(101), 12);
    expect(m2.bps).toBe(Math.round(10_000 * (0.75 + 0.25 * (Math.log(11) / Math.log(101)))));
  });

  it('gives a lone flawless miner 10,000 and a penalized or silent one 0', () => {
    expect(serviceLevels([line('m1', 'a', 5, 0, 500)])[0]!.bps).toBe(10_000);
    expect(serviceLevels([line('m1', 'a', 5, 0, 500)], { penalized: new Set(['m1']) })[0]).toMatchObject({ bps: 0, penalized: true });
    expect(serviceLevels([line('m1', 'a', 0, 0, 0), line('m2', 'a', 3, 0, 3)])[0]).toMatchObject({ subject: 'm1', bps: 0 });
    expect(serviceLevels([line('m1', 'a', 4, 0, 4)], { minRecords: 5 })[0]!.bps).toBe(0);
    expect(serviceLevels([line('m1', 'a', 4, 4, 4)])[0]!.bps).toBe(0);
  });

  it('refuses bad weights and malformed lines with a reason', () => {
    expect(() => serviceLevels([], { latencyWeight: 0.7, volumeWeight: 0.7 })).toThrow(/sum to at most 1/);
    expect(() => serviceLevels([line('m1', 'a', 1, 2, 0)])).toThrow(/failures cannot exceed records/);
    expect(() => serviceLevels([line('m1', 'a', -1, 0, 0)])).toThrow(/records must be a non-negative integer/);
  });

  it('property: every level is an integer in 0..10,000 and does not depend on line order', () => {
    fc.assert(
      fc.property(arbLines, fc.double({ min: 0, max: 0.5, noNaN: true }), fc.double({ min: 0, max: 0.5, noNaN: true }), (lines, wl, wv) => {
        const a = serviceLevels(lines, { latencyWeight: wl, volumeWeight: wv });
        for (const l of a) {
          expect(Number.isInteger(l.bps)).toBe(true);
          expect(l.bps).toBeGreaterThanOrEqual(0);
          expect(l.bps).toBeLessThanOrEqual(10_000);
        }
        expect(serviceLevels([...lines].reverse(), { latencyWeight: wl, volumeWeight: wv })).toEqual(a);
      }),
    );
  });

  it('property: monotone in the success ratio (a failure that succeeds never lowers the level, and leaves the others alone)', () => {
    fc.assert(
      fc.property(arbLines, fc.nat(), (lines, pick) => {
        const withFailure = lines.map((l, i) => ({ l, i })).filter(({ l }) => l.failures > 0);
        fc.pre(withFailure.length > 0);
        const { i } = withFailure[pick % withFailure.length]!;
        const better = lines.map((l, j) => (j === i ? { ...l, failures: l.failures - 1 } : l));
        const before = serviceLevels(lines);
        const after = serviceLevels(better);
        const who = lines[i]!.subject;
        expect(bpsOf(after, who)!).toBeGreaterThanOrEqual(bpsOf(before, who)!);
        for (const l of before) if (l.subject !== who) expect(bpsOf(after, l.subject)).toBe(l.bps);
      }),
    );
  });

  it('property: a faster miner never scores lower', () => {
    fc.assert(
      fc.property(arbLines, fc.nat(), fc.double({ min: 0, max: 1, noNaN: true }), (lines, pick, factor) => {
        const i = pick % lines.length;
        const faster = lines.map((l, j) => (j === i ? { ...l, latencyUs: Math.floor(l.latencyUs * factor) } : l));
        const who = lines[i]!.subject;
        expect(bpsOf(serviceLevels(faster), who)!).toBeGreaterThanOrEqual(bpsOf(serviceLevels(lines), who)!);
      }),
    );
  });

  it('property: penalized subjects are 0, the others unchanged', () => {
    fc.assert(
      fc.property(arbLines, fc.subarray(['m1', 'm2', 'm3', 'm4']), (lines, bad) => {
        const plain = serviceLevels(lines);
        const pen = serviceLevels(lines, { penalized: new Set(bad) });
        for (const l of pen) expect(l.bps).toBe(bad.includes(l.subject) ? 0 : bpsOf(plain, l.subject));
      }),
    );
  });
});

describe('smoothing and addresses', () => {
  it('weights the newest window most, counts absence as 0 and a penalty in any window as 0', () => {
    const w = (subject: string, bps: number, penalized = false): ServiceLevel => ({ subject, records: 1, failures: 0, success: 1, latency: 1, volume: 1, penalized, bps });
    const s = smoothServiceLevels([[w('a', 10_000), w('b', 0)], [w('a', 0), w('b', 10_000), w('c', 4000, true)]]);
    // weights 0.5 and 0.25, normalised by 0.75
    expect(s).toEqual([
      { subject: 'a', records: 2, bps: Math.round(5000 / 0.75) },
      { subject: 'b', records: 2, bps: Math.round(2500 / 0.75) },
      { subject: 'c', records: 1, bps: 0 },
    ]);
    expect(smoothServiceLevels([[w('a', 7000)]])).toEqual([{ subject: 'a', records: 1, bps: 7000 }]);
  });

  it('property: smoothing stays in 0..10,000 and equal windows smooth to themselves', () => {
    fc.assert(
      fc.property(arbLines, fc.integer({ min: 1, max: 6 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (lines, k, alpha) => {
        const one = serviceLevels(lines);
        const s = smoothServiceLevels(Array.from({ length: k }, () => one), alpha);
        for (const l of s) expect(l.bps).toBe(bpsOf(one, l.subject));
      }),
    );
  });

  it('maps subjects to addresses, record-weighted, and lists the unmapped', () => {
    const A = '0x' + 'aa'.repeat(20);
    const book: Record<string, string> = { m1: A, m2: A.toUpperCase().replace('0X', '0x'), m3: 'not-an-address' };
    const r = levelsByAddress(
      [
        { subject: 'm1', records: 3, bps: 10_000 },
        { subject: 'm2', records: 1, bps: 2000 },
        { subject: 'm3', records: 1, bps: 5000 },
        { subject: 'm4', records: 1, bps: 5000 },
      ],
      (s) => book[s],
    );
    expect([...r.levels]).toEqual([[A, 8000]]);
    expect(r.unmapped).toEqual(['m3', 'm4']);
  });

  it('computes levels from a real ledger over windows and maps them through its payout addresses', async () => {
    const store = new SqliteLedgerStore({ path: ':memory:' });
    try {
      const now = Date.UTC(2030, 5, 1, 12);
      const hour = 3_600_000;
      const recs = [];
      // good: 20 fast successes in the last hour; flaky: 20 in the last hour, half 5xx; old: only 2 hours ago
      for (let i = 0; i < 20; i++) recs.push(makeRecord(i, { miner: 'good', receivedAt: now - 1000 - i, execUs: 1000 }));
      for (let i = 0; i < 20; i++) recs.push(makeRecord(100 + i, { miner: 'flaky', receivedAt: now - 2000 - i, execUs: 1000, status: i % 2 ? 500 : 200 }));
      for (let i = 0; i < 20; i++) recs.push(makeRecord(200 + i, { miner: 'old', receivedAt: now - hour - 1000 - i, execUs: 1000 }));
      store.appendBatch(recs);
      const A = '0x' + '11'.repeat(20);
      const B = '0x' + '22'.repeat(20);
      store.registerAddress('miner', 'good', A);
      store.registerAddress('miner', 'flaky', B);
      const r = await ledgerServiceLevels(store, { now, windowMs: hour, windows: 2 });
      expect(r.latest.map((l) => [l.subject, l.bps])).toEqual([['flaky', 5000], ['good', 10_000]]);
      expect(r.subjects).toEqual([
        { subject: 'flaky', records: 20, bps: Math.round((0.5 * 5000) / 0.75) },
        { subject: 'good', records: 20, bps: Math.round((0.5 * 10_000) / 0.75) },
        { subject: 'old', records: 20, bps: Math.round((0.25 * 10_000) / 0.75) },
      ]);
      const mapped = levelsByAddress(r.subjects, await ledgerAddressLookup(store));
      expect(Object.fromEntries(mapped.levels)).toEqual({ [A]: 6667, [B]: 3333 });
      expect(mapped.unmapped).toEqual(['old']);
    } finally {
      store.close();
    }
  });
});
