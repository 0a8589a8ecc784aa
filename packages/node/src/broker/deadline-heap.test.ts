import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DeadlineHeap } from './deadline-heap.js';

describe('DeadlineHeap', () => {
  it('pops in key order, whatever the pushes and pops between', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constant(null)), { maxLength: 200 }), (ops) => {
        const heap = new DeadlineHeap<number>();
        const model: number[] = [];
        for (const op of ops) {
          if (op === null) {
            model.sort((a, b) => a - b);
            expect(heap.pop()).toBe(model.shift());
          } else {
            heap.push(op, op);
            model.push(op);
          }
          expect(heap.size).toBe(model.length);
          expect(heap.peekKey()).toBe(model.length === 0 ? Infinity : Math.min(...model));
        }
      }),
    );
  });

  it('popWhile takes exactly the due items, smallest first', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 })), fc.integer({ min: 0, max: 1000 }), (keys, cut) => {
        const heap = new DeadlineHeap<number>();
        for (const k of keys) heap.push(k, k);
        const got: number[] = [];
        heap.popWhile((k) => k < cut, (item, key) => {
          expect(item).toBe(key);
          got.push(key);
        });
        const sorted = [...keys].sort((a, b) => a - b);
        expect(got).toEqual(sorted.filter((k) => k < cut));
        expect(heap.size).toBe(keys.length - got.length);
      }),
    );
  });
});
