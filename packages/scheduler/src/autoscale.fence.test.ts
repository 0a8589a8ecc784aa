/**
 * autoscale's split of one (DService, tier) into parts per fence (the rule in autoscale.ts): each
 * part scaled on its own queue, then, past maxInstances, instances dealt a round at a time with the
 * fences first. With `place` after it, every fence with work gets an instance in its regions.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { autoscale, fenceFor, fenceKey, partKey, type AutoscaleMemory, type DServiceMetrics } from './autoscale.js';
import { regionAllowed } from './filter.js';
import { place } from './place.js';
import { clockAt, demand, miner } from './test-fixtures/builders.js';
import type { StartDecision } from './types.js';

const none: AutoscaleMemory = new Map();
const part = (regions: string[] | undefined, over: Partial<DServiceMetrics> = {}): DServiceMetrics => ({
  dservice: 'echo', tier: 'open', minInstances: 0, maxInstances: 10, ready: 0, starting: 0, concurrency: 1,
  queueDepth: 0, queueWaitMs: 0, inFlight: 0, ...(regions !== undefined ? { regions } : {}), ...over,
});
const wanted = (r: ReturnType<typeof autoscale>) => Object.fromEntries(r.desired.map((d) => [fenceKey(d.regions) || '*', d.instances]));

describe('autoscale: parts per fence', () => {
  it('under maxInstances each part is scaled as if alone', () => {
    const r = autoscale(none, [part(undefined, { queueDepth: 3 }), part(['eu'], { queueDepth: 2 }), part(['ap'])], clockAt(0));
    expect(wanted(r)).toEqual({ '*': 3, eu: 2, ap: 0 });
    expect(r.decisions).toContainEqual({ dservice: 'echo', tier: 'open', regions: ['eu'], from: 0, to: 2, reason: 'cold_start' });
  });

  it('past maxInstances every part with work gets one before any gets two, the fences first', () => {
    const clock = clockAt(0);
    const loads = [part(undefined, { queueDepth: 5, maxInstances: 2 }), part(['eu'], { queueDepth: 5, maxInstances: 2 })];
    expect(wanted(autoscale(none, loads, clock))).toEqual({ '*': 1, eu: 1 });
    const one = loads.map((m) => ({ ...m, maxInstances: 1 }));
    // Work without regions may run on the eu instance; the eu work may run nowhere else.
    expect(wanted(autoscale(none, one, clock))).toEqual({ '*': 0, eu: 1 });
    const cut = autoscale(none, one, clock).decisions.find((d) => d.regions === undefined);
    expect(cut).toBeUndefined(); // 0 -> 0 is no decision
    const three = [part(['us'], { queueDepth: 1, queueWaitMs: 100, maxInstances: 1 }), part(['ap'], { queueDepth: 1, queueWaitMs: 900, maxInstances: 1 })];
    expect(wanted(autoscale(none, three, clock))).toEqual({ us: 0, ap: 1 }); // the longest wait first
  });

  it('minInstances is the anywhere part\'s; a part given twice or parts disagreeing on the maximum are refused', () => {
    const clock = clockAt(0);
    expect(wanted(autoscale(none, [part(undefined, { minInstances: 2 }), part(['eu'], { queueDepth: 1 })], clock))).toEqual({ '*': 2, eu: 1 });
    expect(() => autoscale(none, [part(['eu']), part(['eu'])], clock)).toThrow(/given twice/);
    expect(() => autoscale(none, [part(['eu']), part(undefined, { maxInstances: 3 })], clock)).toThrow(/disagree on maxInstances/);
  });

  it('each part keeps its own memory: an idle fence goes to zero on its own clock', () => {
    const clock = clockAt(0);
    let r = autoscale(none, [part(undefined, { ready: 1, inFlight: 1, lastRequestAt: 0 }), part(['eu'], { ready: 1, lastRequestAt: 0 })], clock, { idleToZeroMs: 1000 });
    expect(r.memory.has(partKey('echo', 'open', ['eu']))).toBe(true);
    clock.set(2000);
    r = autoscale(r.memory, [part(undefined, { ready: 1, inFlight: 1, lastRequestAt: 2000 }), part(['eu'], { ready: 1, lastRequestAt: 0 })], clock, { idleToZeroMs: 1000 });
    expect(wanted(r)).toEqual({ '*': 1, eu: 0 });
  });

  it('an instance counts for the first fence (by key) whose regions take its miner, else for anywhere', () => {
    const fences = [{ key: 'eu-west', regions: ['eu-west'] }, { key: 'eu', regions: ['eu'] }, { key: 'ap,us', regions: ['us', 'ap'] }];
    expect(fenceFor('eu-west-1', fences)).toBe('eu');
    expect(fenceFor('eu-north', fences)).toBe('eu');
    expect(fenceFor('us-east', fences)).toBe('ap,us');
    expect(fenceFor('sa', fences)).toBe('');
    expect(fenceFor(undefined, fences)).toBe('');
    // The part it was started for, while its miner is in it.
    expect(fenceFor('eu-west-1', fences, '')).toBe('');
    expect(fenceFor('eu-west-1', fences, 'eu-west')).toBe('eu-west');
    expect(fenceFor('us-east', fences, 'eu')).toBe('ap,us'); // its miner left that fence
    expect(fenceFor('eu-west-1', fences, 'gone')).toBe('eu'); // no such part any more
  });

  const REGIONS = ['eu', 'us', 'ap', 'sa'] as const;
  const partsArb = fc.record({
    max: fc.integer({ min: 1, max: 8 }),
    min: fc.integer({ min: 0, max: 8 }),
    anywhere: fc.option(fc.record({ queued: fc.nat(12), inFlight: fc.nat(6), ready: fc.nat(6), wait: fc.nat(5000) }), { nil: undefined }),
    fenced: fc.uniqueArray(fc.record({ region: fc.constantFrom(...REGIONS), queued: fc.nat(12), inFlight: fc.nat(6), ready: fc.nat(6), wait: fc.nat(5000) }), { maxLength: 4, selector: (f) => f.region }),
    concurrency: fc.integer({ min: 1, max: 4 }),
  });
  const metricsOf = (c: fc.RecordValue<typeof partsArb extends fc.Arbitrary<infer T> ? T : never>): DServiceMetrics[] => {
    const min = Math.min(c.min, c.max);
    const out = c.fenced.map((f) => part([f.region], { maxInstances: c.max, queueDepth: f.queued, inFlight: f.inFlight, ready: f.ready, queueWaitMs: f.queued > 0 ? f.wait : 0, concurrency: c.concurrency, lastRequestAt: 0 }));
    if (c.anywhere !== undefined) {
      const a = c.anywhere;
      out.push(part(undefined, { minInstances: min, maxInstances: c.max, queueDepth: a.queued, inFlight: a.inFlight, ready: a.ready, queueWaitMs: a.queued > 0 ? a.wait : 0, concurrency: c.concurrency, lastRequestAt: 0 }));
    }
    return out;
  };

  it('property: the parts never want more than maxInstances together; each part with work wants one when the parts with work fit; the anywhere part keeps minInstances in the total', () => {
    fc.assert(
      fc.property(partsArb, fc.nat(400_000), (c, later) => {
        const ms = metricsOf(c);
        const r = autoscale(none, ms, clockAt(later));
        const total = r.desired.reduce((n, d) => n + d.instances, 0);
        expect(total).toBeLessThanOrEqual(c.max);
        const busy = ms.filter((m) => m.queueDepth + m.inFlight > 0);
        if (busy.length <= c.max) {
          for (const m of busy) expect(r.desired.find((d) => fenceKey(d.regions) === fenceKey(m.regions))!.instances).toBeGreaterThanOrEqual(1);
        }
        if (c.anywhere !== undefined) expect(total).toBeGreaterThanOrEqual(Math.min(c.min, c.max));
      }),
      { numRuns: 500 },
    );
  });

  it('property: with place after it and nothing running yet, every fence with work gets an instance in its regions when a miner there has room', () => {
    fc.assert(
      fc.property(partsArb, fc.subarray([...REGIONS]), (c, hosted) => {
        const ms = metricsOf(c).map((m) => ({ ...m, ready: 0 }));
        const busy = ms.filter((m) => m.queueDepth + m.inFlight > 0);
        fc.pre(busy.length <= c.max);
        const clock = clockAt(0);
        const r = autoscale(none, ms, clock);
        // Each hosted region has room for every instance the DService may have.
        const miners = hosted.map((region) => miner(`m-${region}`, { region: `${region}-1`, cap: { cpus: c.max, memoryMb: 512 * c.max } }));
        const demands = r.desired.map((d) => demand('echo', { ...(d.regions !== undefined ? { regions: [...d.regions] } : {}), maxInstances: c.max, desiredInstances: d.instances }));
        const plan = place({ miners, instances: [], accounts: [] }, demands, clock);
        const starts = plan.decisions.filter((d): d is StartDecision => d.kind === 'start');
        const regionOf = new Map(miners.map((m) => [m.id, m.region]));
        for (const s of starts) if (s.regions !== undefined) expect(regionAllowed(regionOf.get(s.minerId), s.regions)).toBe(true);
        for (const m of busy) {
          if (m.regions === undefined || !hosted.includes(m.regions[0] as (typeof REGIONS)[number])) continue;
          expect(starts.filter((s) => fenceKey(s.regions) === fenceKey(m.regions)).length).toBeGreaterThanOrEqual(1);
        }
      }),
      { numRuns: 300 },
    );
  });
});
