import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WorkQueue } from './queue.js';

describe('WorkQueue', () => {
  it('is FIFO', () => {
    const q = new WorkQueue<number>(2);
    for (let i = 0; i < 10; i++) q.push(i);
    const out: number[] = [];
    while (q.length > 0) out.push(q.shift()!);
    expect(out).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('unshift puts requeued work at the head', () => {
    const q = new WorkQueue<string>(2);
    q.push('b');
    q.push('c');
    q.unshift('a');
    expect([...q]).toEqual(['a', 'b', 'c']);
    expect(q.shift()).toBe('a');
    expect(q.peek()).toBe('b');
  });

  it('behaves like an array deque under any sequence of operations', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('push' as const), v: fc.integer() }),
      fc.record({ k: fc.constant('unshift' as const), v: fc.integer() }),
      fc.record({ k: fc.constant('shift' as const) }),
      fc.record({ k: fc.constant('remove' as const), v: fc.integer({ min: -3, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const q = new WorkQueue<number>(2);
        const model: number[] = [];
        for (const o of ops.map((x) => (x.k === 'push' || x.k === 'unshift' ? { ...x, v: x.v % 4 } : x))) {
          if (o.k === 'push') (q.push(o.v), model.push(o.v));
          else if (o.k === 'unshift') (q.unshift(o.v), model.unshift(o.v));
          else if (o.k === 'remove') {
            const i = model.indexOf(o.v);
            expect(q.remove(o.v)).toBe(i >= 0);
            if (i >= 0) model.splice(i, 1);
          } else expect(q.shift()).toBe(model.shift());
          expect(q.length).toBe(model.length);
          expect(q.peek()).toBe(model[0]);
        }
        expect([...q]).toEqual(model);
      }),
    );
  });
});
