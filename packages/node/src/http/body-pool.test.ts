import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { holdBody, joinBody } from '@cgn/protocol';
import { BodyPool, type PooledBody } from './body-pool.js';

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

function build(pool: BodyPool, pieces: readonly Buffer[]): PooledBody {
  const b = pool.begin();
  for (const p of pieces) b.append(p);
  return b.finish();
}

describe('BodyPool', () => {
  it('keeps the bytes of any chunking, in blocks of blockBytes', () => {
    const pool = new BodyPool({ blockBytes: 16, maxBytes: 1024 });
    const input = bytes(100, 7);
    const body = build(pool, [input.subarray(0, 5), input.subarray(5, 40), input.subarray(40, 41), input.subarray(41)]);
    expect(body.length).toBe(100);
    expect(joinBody(body).equals(input)).toBe(true);
    expect(body.chunks.map((c) => c.length)).toEqual([16, 16, 16, 16, 16, 16, 4]);
    expect(pool.counters).toMatchObject({ blocks: 7, inUse: 7, bodies: 1 });
  });

  it('gives the blocks back only when the request and every hold let go, and then reuses them', () => {
    const pool = new BodyPool({ blockBytes: 8, maxBytes: 1024 });
    const a = build(pool, [bytes(20, 1)]);
    const blocksOfA = a.chunks.map((c) => c.buffer);
    const releaseWrite = holdBody(a)!;
    a.release();
    a.release(); // idempotent
    expect(pool.counters.inUse).toBe(3);
    const b = build(pool, [bytes(20, 2)]);
    expect(b.chunks.some((c) => blocksOfA.includes(c.buffer))).toBe(false); // a is still held
    expect(joinBody(a).equals(bytes(20, 1))).toBe(true);
    releaseWrite();
    releaseWrite(); // idempotent
    expect(pool.counters.inUse).toBe(3); // b's
    const c = build(pool, [bytes(20, 3)]);
    expect(c.chunks.every((x) => blocksOfA.includes(x.buffer))).toBe(true);
    expect(pool.counters.blocks).toBe(6);
    expect(() => holdBody(a)).toThrow(/given back/);
  });

  it('when full, gives a body blocks of its own that never join the pool', () => {
    const pool = new BodyPool({ blockBytes: 8, maxBytes: 16 });
    const a = build(pool, [bytes(24, 4)]); // 2 pool blocks + 1 of its own
    expect(joinBody(a).equals(bytes(24, 4))).toBe(true);
    expect(pool.counters).toMatchObject({ blocks: 2, inUse: 2, bodies: 0, overflowBodies: 1 });
    a.release();
    expect(pool.counters).toMatchObject({ blocks: 2, inUse: 0 });
  });

  it('takes the blocks of an aborted read back', () => {
    const pool = new BodyPool({ blockBytes: 8, maxBytes: 64 });
    const b = pool.begin();
    b.append(bytes(20, 5));
    b.abort();
    b.abort();
    expect(pool.counters.inUse).toBe(0);
    expect(() => b.append(bytes(1, 0))).toThrow(/after finish or abort/);
  });

  it('trim drops only the blocks that stayed free for a whole period', () => {
    const pool = new BodyPool({ blockBytes: 8, maxBytes: 1024 });
    build(pool, [bytes(80, 6)]).release(); // 10 blocks, all free
    pool.trim(); // starts a period: nothing is known yet about how many blocks go unused
    const busy = build(pool, [bytes(24, 7)]); // uses 3 of the free blocks
    pool.trim(); // 7 stayed free throughout
    expect(pool.counters.blocks).toBe(3);
    expect(pool.counters.trimmed).toBeGreaterThanOrEqual(7);
    busy.release();
    expect(joinBody(build(pool, [bytes(40, 8)])).equals(bytes(40, 8))).toBe(true);
  });

  it('property: a body reads its own bytes until its last holder lets go, and blocks are all accounted for', () => {
    type Op =
      | { k: 'new'; size: number; cut: number; seed: number }
      | { k: 'hold'; i: number }
      | { k: 'release'; i: number }
      | { k: 'drop-hold'; i: number }
      | { k: 'abort'; size: number }
      | { k: 'trim' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ k: fc.constant('new' as const), size: fc.integer({ min: 1, max: 200 }), cut: fc.integer({ min: 1, max: 50 }), seed: fc.nat(255) }),
      fc.record({ k: fc.constant('hold' as const), i: fc.nat() }),
      fc.record({ k: fc.constant('release' as const), i: fc.nat() }),
      fc.record({ k: fc.constant('drop-hold' as const), i: fc.nat() }),
      fc.record({ k: fc.constant('abort' as const), size: fc.integer({ min: 1, max: 100 }) }),
      fc.record({ k: fc.constant('trim' as const) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 40 }), fc.array(op, { maxLength: 60 }), (blockBytes, maxBlocks, ops) => {
        const pool = new BodyPool({ blockBytes, maxBytes: blockBytes * maxBlocks });
        const live: { body: PooledBody; expect: Buffer; released: boolean; holds: (() => void)[] }[] = [];
        const alive = (x: (typeof live)[number]): boolean => !x.released || x.holds.length > 0;
        for (const o of ops) {
          if (o.k === 'new') {
            const input = bytes(o.size, o.seed);
            const pieces: Buffer[] = [];
            for (let at = 0; at < input.length; at += o.cut) pieces.push(input.subarray(at, at + o.cut));
            live.push({ body: build(pool, pieces), expect: input, released: false, holds: [] });
          } else if (o.k === 'abort') {
            const b = pool.begin();
            b.append(bytes(o.size, 9));
            b.abort();
          } else if (o.k === 'trim') {
            pool.trim();
          } else {
            const candidates = live.filter(alive);
            if (candidates.length === 0) continue;
            const x = candidates[o.i % candidates.length]!;
            if (o.k === 'hold') x.holds.push(holdBody(x.body)!);
            else if (o.k === 'release') {
              x.body.release();
              x.released = true;
            } else x.holds.pop()?.();
          }
          // Every body somebody still holds reads its own bytes: no block of it went to another body.
          for (const x of live.filter(alive)) expect(joinBody(x.body).equals(x.expect)).toBe(true);
          const c = pool.counters;
          expect(c.inUse).toBeGreaterThanOrEqual(0);
          expect(c.inUse).toBeLessThanOrEqual(c.blocks);
          expect(c.blocks).toBeLessThanOrEqual(maxBlocks);
        }
        for (const x of live) {
          x.body.release();
          for (const h of x.holds) h();
        }
        expect(pool.counters.inUse).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
