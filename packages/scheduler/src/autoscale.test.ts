import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { autoscale, DEFAULT_AUTOSCALE_POLICY, scaleKey, type AutoscaleMemory, type DServiceMetrics } from './autoscale.js';
import { place } from './place.js';
import { clockAt, demand, miner } from './test-fixtures/builders.js';

const metrics = (over: Partial<DServiceMetrics> = {}): DServiceMetrics => ({
  dservice: 'mediagen',
  tier: 'open',
  minInstances: 0,
  maxInstances: 10,
  ready: 0,
  starting: 0,
  concurrency: 2,
  queueDepth: 0,
  queueWaitMs: 0,
  inFlight: 0,
  ...over,
});
const none: AutoscaleMemory = new Map();

describe('autoscale', () => {
  it('cold start: the first queued request scales a DService up from zero at once', () => {
    const clock = clockAt(0);
    const r = autoscale(none, [metrics({ queueDepth: 1, queueWaitMs: 0, lastRequestAt: 0 })], clock);
    expect(r.decisions).toEqual([{ dservice: 'mediagen', tier: 'open', from: 0, to: 1, reason: 'cold_start' }]);
    // ...and place starts it in the same tick: the wait before the instance starts is one tick, not a delay.
    const d = { ...demand('mediagen'), desiredInstances: r.desired[0]!.instances };
    const p = place({ miners: [miner('m1')], instances: [], accounts: [] }, [d], clock);
    expect(p.decisions).toHaveLength(1);
  });

  it('scales up as the queue deepens, by the instances needed, at most doubling (or maxStepUp)', () => {
    const clock = clockAt(0);
    const r = autoscale(none, [metrics({ ready: 2, queueDepth: 10, inFlight: 4, queueWaitMs: 100 })], clock); // needs 7
    expect(r.decisions[0]).toMatchObject({ from: 2, to: 7, reason: 'queue_depth' });
    const big = autoscale(none, [metrics({ ready: 2, maxInstances: 100, queueDepth: 200, queueWaitMs: 100 })], clock);
    expect(big.decisions[0]).toMatchObject({ from: 2, to: 2 + DEFAULT_AUTOSCALE_POLICY.maxStepUp });
  });

  it('scales up on a rising queue wait even when the count looks sufficient, unless instances are starting', () => {
    const clock = clockAt(0);
    const slow = metrics({ ready: 4, queueDepth: 2, inFlight: 4, queueWaitMs: 5_000 });
    expect(autoscale(none, [slow], clock).decisions[0]).toMatchObject({ from: 4, to: 6, reason: 'queue_wait' });
    expect(autoscale(none, [{ ...slow, ready: 3, starting: 1 }], clock).decisions).toEqual([]);
    expect(autoscale(none, [{ ...slow, queueWaitMs: 500 }], clock).decisions).toEqual([]);
  });

  it('never goes above maxInstances', () => {
    const clock = clockAt(0);
    const r = autoscale(none, [metrics({ ready: 3, maxInstances: 4, queueDepth: 100, queueWaitMs: 60_000 })], clock);
    expect(r.decisions[0]).toMatchObject({ to: 4 });
    expect(autoscale(none, [metrics({ ready: 4, maxInstances: 4, queueDepth: 100, queueWaitMs: 60_000 })], clock).decisions).toEqual([]);
  });

  it('brings the count back within min..max when the bounds moved', () => {
    const clock = clockAt(0);
    expect(autoscale(none, [metrics({ ready: 1, minInstances: 3 })], clock).decisions[0]).toMatchObject({ from: 1, to: 3, reason: 'min' });
    expect(autoscale(none, [metrics({ ready: 6, maxInstances: 2 })], clock).decisions[0]).toMatchObject({ from: 6, to: 2, reason: 'max' });
  });

  it('scales down only after a quiet spell (hysteresis), and no sooner after a scale-up', () => {
    const clock = clockAt(0);
    let mem: AutoscaleMemory = none;
    const quiet = metrics({ ready: 8, inFlight: 2, lastRequestAt: 0 }); // 2 in flight on 16 slots
    for (let t = 0; t < DEFAULT_AUTOSCALE_POLICY.scaleDownDelayMs; t += 10_000) {
      clock.set(t);
      const r = autoscale(mem, [{ ...quiet, lastRequestAt: t }], clock);
      expect(r.decisions).toEqual([]);
      mem = r.memory;
    }
    clock.set(DEFAULT_AUTOSCALE_POLICY.scaleDownDelayMs);
    const r = autoscale(mem, [{ ...quiet, lastRequestAt: clock.now() }], clock);
    expect(r.decisions[0]).toMatchObject({ from: 8, to: 4, reason: 'underused' }); // at most half per step
    // A burst in between restarts the quiet spell.
    const burst = autoscale(mem, [{ ...quiet, inFlight: 12, lastRequestAt: clock.now() }], clock);
    expect(burst.decisions).toEqual([]);
    expect(burst.memory.get(scaleKey('mediagen', 'open'))!.lowSince).toBeUndefined();
  });

  it('does not flap: load between the down and up thresholds changes nothing', () => {
    const clock = clockAt(0);
    let mem: AutoscaleMemory = none;
    for (let t = 0; t < 600_000; t += 5_000) {
      clock.set(t);
      const r = autoscale(mem, [metrics({ ready: 4, inFlight: 5 + (t / 5_000) % 3, lastRequestAt: t })], clock); // 5..7 of 8 slots
      expect(r.decisions).toEqual([]);
      mem = r.memory;
    }
  });

  it('goes down to zero once idle for idleToZeroMs, never below minInstances', () => {
    const clock = clockAt(0);
    const idle = metrics({ ready: 3, lastRequestAt: 0 });
    clock.set(DEFAULT_AUTOSCALE_POLICY.idleToZeroMs - 1);
    // Before the idle time, only underuse steps apply (and never below one instance).
    let r = autoscale(new Map([[scaleKey('mediagen', 'open'), { seenAt: 0, lowSince: 0 }]]), [idle], clock);
    expect(r.decisions[0]).toMatchObject({ reason: 'underused', to: 2 });
    r = autoscale(new Map([[scaleKey('mediagen', 'open'), { seenAt: 0, lowSince: 0 }]]), [{ ...idle, ready: 1 }], clock);
    expect(r.decisions).toEqual([]);
    clock.set(DEFAULT_AUTOSCALE_POLICY.idleToZeroMs);
    expect(autoscale(none, [idle], clock).decisions[0]).toMatchObject({ from: 3, to: 0, reason: 'idle' });
    expect(autoscale(none, [{ ...idle, minInstances: 1 }], clock).decisions[0]).toMatchObject({ from: 3, to: 1, reason: 'idle' });
  });

  it('with no request since it started, a DService counts as idle from when autoscale first saw it', () => {
    const clock = clockAt(1_000);
    const first = autoscale(none, [metrics({ ready: 2 })], clock);
    expect(first.decisions).toEqual([]);
    clock.set(1_000 + DEFAULT_AUTOSCALE_POLICY.idleToZeroMs);
    expect(autoscale(first.memory, [metrics({ ready: 2 })], clock).decisions[0]).toMatchObject({ to: 0, reason: 'idle' });
  });

  it('always stays within min..max, whatever the metrics and memory (property)', () => {
    const arb = fc.record({
      min: fc.integer({ min: 0, max: 5 }),
      extra: fc.integer({ min: 0, max: 10 }),
      ready: fc.integer({ min: 0, max: 20 }),
      starting: fc.integer({ min: 0, max: 5 }),
      concurrency: fc.integer({ min: 1, max: 8 }),
      queueDepth: fc.integer({ min: 0, max: 500 }),
      queueWaitMs: fc.integer({ min: 0, max: 100_000 }),
      inFlight: fc.integer({ min: 0, max: 100 }),
      idle: fc.integer({ min: 0, max: 1_000_000 }),
      lowFor: fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(arb, (a) => {
        const now = 2_000_000;
        const m = metrics({ ...a, minInstances: a.min, maxInstances: a.min + a.extra, lastRequestAt: now - a.idle });
        const mem = new Map([[scaleKey('mediagen', 'open'), { seenAt: 0, ...(a.lowFor !== undefined ? { lowSince: now - a.lowFor } : {}) }]]);
        const r = autoscale(mem, [m], clockAt(now));
        const to = r.desired[0]!.instances;
        const from = a.ready + a.starting;
        const inBounds = to >= m.minInstances && to <= m.maxInstances;
        // Work waiting and room to grow: never zero instances.
        const served = !(a.queueDepth > 0 && m.maxInstances > 0) || to >= 1;
        // Never scales down while work is queued.
        const noDownUnderLoad = a.queueDepth === 0 || to >= Math.min(from, m.maxInstances);
        return inBounds && served && noDownUnderLoad;
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses metrics that make no sense, naming the field', () => {
    const clock = clockAt(0);
    expect(() => autoscale(none, [metrics({ concurrency: 0 })], clock)).toThrow(/concurrency must be an integer >= 1/);
    expect(() => autoscale(none, [metrics({ minInstances: 3, maxInstances: 2 })], clock)).toThrow(/minInstances \(3\) exceeds maxInstances \(2\)/);
    expect(() => autoscale(none, [metrics(), metrics()], clock)).toThrow(/given twice/);
    expect(() => autoscale(none, [], clock, { lowUtilization: 0.9 })).toThrow(/lowUtilization < targetUtilization/);
  });
});
