import { describe, expect, it } from 'vitest';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from './fast-metrics.js';

describe('FastHistogram and FastCounter', () => {
  it('expose exactly what prom-client\'s own metrics expose for the same observations', async () => {
    const bounds = [0.01, 0.1, 1];
    const mine = new Registry();
    const theirs = new Registry();
    const fh = new FastHistogram('h_seconds', 'help', ['a', 'b'], bounds, mine);
    const fc = new FastCounter('c_total', 'help', ['a'], mine);
    const ph = new Histogram({ name: 'h_seconds', help: 'help', labelNames: ['a', 'b'], buckets: bounds, registers: [theirs] });
    const pc = new Counter({ name: 'c_total', help: 'help', labelNames: ['a'], registers: [theirs] });
    const x = fh.child('x', 'y');
    const z = fh.child('z', 'y');
    for (const v of [0, 0.01, 0.010001, 0.5, 1, 2, 100]) {
      x.observe(v);
      ph.observe({ a: 'x', b: 'y' }, v);
    }
    z.observe(0.2);
    ph.observe({ a: 'z', b: 'y' }, 0.2);
    fc.child('x').inc();
    fc.child('x').inc(2);
    pc.inc({ a: 'x' }, 3);
    expect(await mine.metrics()).toBe(await theirs.metrics());
  });

  it('without labels, expose what prom-client\'s unlabelled histogram does: zero buckets before any observation, then the counts', async () => {
    const bounds = [1, 2, 8];
    const mine = new Registry();
    const theirs = new Registry();
    const fh = new FastHistogram('batch', 'help', [], bounds, mine).child();
    const ph = new Histogram({ name: 'batch', help: 'help', buckets: bounds, registers: [theirs] });
    expect(await mine.metrics()).toBe(await theirs.metrics());
    for (const v of [1, 3, 3, 9]) {
      fh.observe(v);
      ph.observe(v);
    }
    expect(await mine.metrics()).toBe(await theirs.metrics());
  });
});
