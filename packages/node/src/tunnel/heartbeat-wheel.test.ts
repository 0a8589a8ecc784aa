import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HeartbeatWheel, heartbeatBuckets } from './heartbeat-wheel.js';

describe('HeartbeatWheel', () => {
  it('visits every member exactly once per period (one tick per bucket), whatever joins and leaves', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 200 }), (buckets, ops) => {
        const seen = new Map<number, number>();
        const wheel = new HeartbeatWheel<number>(1000, buckets, (members) => {
          for (const m of members) seen.set(m, (seen.get(m) ?? 0) + 1);
        });
        const members = new Set<number>();
        for (const [join, id] of ops) {
          if (join) wheel.add(id), members.add(id);
          else wheel.delete(id), members.delete(id);
        }
        expect(wheel.size).toBe(members.size);
        for (let period = 1; period <= 3; period++) {
          for (let i = 0; i < buckets; i++) wheel.tick(i);
          for (const m of members) expect(seen.get(m)).toBe(period);
          expect([...seen.keys()].every((k) => members.has(k))).toBe(true);
        }
      }),
    );
  });

  it('spreads members evenly over the buckets', () => {
    const sizes: number[] = [];
    const wheel = new HeartbeatWheel<number>(1000, 10, (members) => sizes.push([...members].length));
    for (let i = 0; i < 1005; i++) wheel.add(i);
    for (let i = 0; i < 10; i++) wheel.tick(0);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('a member dropped during its visit is not visited again', () => {
    let visits = 0;
    const wheel: HeartbeatWheel<string> = new HeartbeatWheel<string>(100, 1, (members) => {
      for (const m of members) visits++, wheel.delete(m);
    });
    wheel.add('a');
    wheel.tick(0);
    wheel.tick(0);
    expect(visits).toBe(1);
  });

  it('ticks about every 50 ms, at most 20 buckets', () => {
    expect(heartbeatBuckets(10)).toBe(1);
    expect(heartbeatBuckets(200)).toBe(4);
    expect(heartbeatBuckets(5000)).toBe(20);
  });
});
