/** The chart series: every bucket adds up to its lines, whatever the top N folds into "(others)". */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { UsageLine } from '@cgn/ledger';
import { buildSeries, dayStarts, DAY_MS, OTHER, rankKeys, type Bucket } from './series.js';

const line = (key: string, records: number, price: bigint): UsageLine => ({ key, records, cpuUs: records * 10, bytesIn: 0, bytesOut: 0, priceMicros: price, tokens: price * 3n });

const lineArb = fc.record({
  key: fc.constantFrom('a', 'b', 'c', 'd', 'e', OTHER, '-'),
  records: fc.integer({ min: 0, max: 1000 }),
  price: fc.bigInt({ min: 0n, max: 10n ** 15n }),
});
// The ledger gives one line per key in a bucket.
const bucketArb = fc.uniqueArray(lineArb, { selector: (l) => l.key, maxLength: 7 }).map((ls) => ls.map((l) => line(l.key, l.records, l.price)));

describe('buildSeries', () => {
  it('property: per bucket, the series sum to the bucket total; at most top + 1 series, keys unique; the top keys keep their own numbers', () => {
    fc.assert(fc.property(fc.array(bucketArb, { maxLength: 10 }), fc.integer({ min: 1, max: 8 }), (lineSets, top) => {
      const buckets: Bucket[] = lineSets.map((lines, i) => ({ label: `d${i}`, start: i * DAY_MS, lines }));
      const s = buildSeries(buckets, top);
      const keys = s.series.map((x) => x.key);
      expect(new Set(keys).size).toBe(keys.length);
      expect(s.series.length).toBeLessThanOrEqual(top + 1);
      buckets.forEach((b, j) => {
        const price = b.lines.reduce((a, l) => a + l.priceMicros, 0n);
        const records = b.lines.reduce((a, l) => a + l.records, 0);
        expect(s.series.reduce((a, x) => a + BigInt(x.priceMicros[j]!), 0n)).toBe(price);
        expect(s.series.reduce((a, x) => a + x.records[j]!, 0)).toBe(records);
        expect(s.total.priceMicros[j]).toBe(price.toString());
        for (const x of s.series) {
          if (x.key === OTHER) continue;
          const own = b.lines.find((l) => l.key === x.key);
          expect(x.priceMicros[j]).toBe((own?.priceMicros ?? 0n).toString());
        }
      });
      expect(s.keys).toBe(rankKeys(buckets).length);
    }));
  });

  it('ranks by price, then records, then name; folds the rest', () => {
    const s = buildSeries([
      { label: 'd1', start: 0, lines: [line('cheap', 9, 1n), line('dear', 1, 100n), line('mid', 1, 50n)] },
      { label: 'd2', start: DAY_MS, lines: [line('cheap', 1, 1n), line('other', 1, 1n)] },
    ], 2);
    expect(s.series.map((x) => x.key)).toEqual(['dear', 'mid', OTHER]);
    expect(s.series[2]!.priceMicros).toEqual(['1', '2']);
    expect(s.series[2]!.records).toEqual([9, 2]);
    expect(s.keys).toBe(4);
  });

  it('no buckets, no series; days run from..to exclusive', () => {
    expect(buildSeries([], 5)).toEqual({ buckets: [], series: [], total: { records: [], priceMicros: [], tokens: [] }, keys: 0 });
    expect(dayStarts(0, 3 * DAY_MS)).toEqual([0, DAY_MS, 2 * DAY_MS]);
  });
});
