/**
 * Demand per (DService, tier, fence): when accounts limited to data regions and accounts without
 * any want the same DService, each has its own demand, and the fenced one gets its instances in
 * its regions whenever miners there have room, however the unfenced demand competes for them.
 * (One demand per (DService, tier) made placement place "anywhere", and the fenced work starved.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { regionAllowed } from './filter.js';
import { place } from './place.js';
import { clockAt, demand, instance, miner } from './test-fixtures/builders.js';
import type { StartDecision } from './types.js';

const clock = clockAt(1_000_000);
const OUTSIDE = ['us-east', 'us-west', 'ap-south', undefined] as const;
const INSIDE = ['eu', 'eu-west', 'eu-north-1'] as const;

describe('place: fenced and unfenced demand of one DService', () => {
  it('the fenced demand gets its instances in its regions when they have room for both demands', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ region: fc.constantFrom(...INSIDE), cpus: fc.integer({ min: 1, max: 4 }) }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.record({ region: fc.constantFrom(...OUTSIDE), cpus: fc.integer({ min: 1, max: 4 }) }), { maxLength: 6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 8 }),
        fc.boolean(),
        fc.constantFrom(1, 2, 5),
        (inside, outside, fenced, anywhere, sameAccount, weightB) => {
          const euRoom = inside.reduce((n, m) => n + m.cpus, 0);
          fc.pre(euRoom >= fenced + anywhere); // room in eu even if every unfenced instance went there
          const miners = [...inside.map((m, k) => miner(`in${k}`, { region: m.region, cap: { cpus: m.cpus } })), ...outside.map((m, k) => {
            const v = miner(`out${k}`, { cap: { cpus: m.cpus } });
            if (m.region === undefined) delete v.region;
            else v.region = m.region;
            return v;
          })];
          const demands = [
            demand('echo', { regions: ['eu'], desiredInstances: fenced, account: 'A' }),
            demand('echo', { desiredInstances: anywhere, account: sameAccount ? 'A' : 'B' }),
          ];
          const plan = place({ miners, instances: [], accounts: [{ account: 'A', weight: 1 }, { account: 'B', weight: weightB }] }, demands, clock);
          const starts = plan.decisions.filter((d): d is StartDecision => d.kind === 'start');
          const regionOf = new Map(miners.map((m) => [m.id, m.region]));
          const fencedStarts = starts.filter((s) => s.regions !== undefined);
          expect(fencedStarts).toHaveLength(fenced);
          for (const s of fencedStarts) expect(regionAllowed(regionOf.get(s.minerId), ['eu'])).toBe(true);
          expect(plan.unplaced.filter((u) => u.regions !== undefined)).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("never starts a fenced demand's instance outside its regions, whatever the room", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ region: fc.constantFrom(...INSIDE, ...OUTSIDE), cpus: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 0, max: 6 }),
        (ms, fenced, anywhere) => {
          const miners = ms.map((m, k) => {
            const v = miner(`m${k}`, { cap: { cpus: m.cpus } });
            if (m.region === undefined) delete v.region;
            else v.region = m.region;
            return v;
          });
          const plan = place({ miners, instances: [], accounts: [] }, [demand('echo', { regions: ['eu'], desiredInstances: fenced, account: 'A' }), demand('echo', { desiredInstances: anywhere, account: 'B' })], clock);
          const regionOf = new Map(miners.map((m) => [m.id, m.region]));
          for (const s of plan.decisions) if (s.kind === 'start' && s.regions !== undefined) expect(regionAllowed(regionOf.get(s.minerId), ['eu'])).toBe(true);
        },
      ),
    );
  });

  it("an instance in the fence's regions counts for the fenced demand first; one elsewhere for the unfenced one", () => {
    const fenced = demand('echo', { regions: ['eu'], desiredInstances: 1 });
    const anywhere = demand('echo', { desiredInstances: 1 });
    const miners = [miner('eu1', { region: 'eu-west' }), miner('us1', { region: 'us-east' })];
    const inEu = place({ miners, instances: [instance(anywhere, 'eu1')], accounts: [] }, [fenced, anywhere], clock);
    expect(inEu.decisions).toEqual([expect.objectContaining({ kind: 'start', dservice: 'echo' })]);
    expect(inEu.decisions[0]).not.toHaveProperty('regions'); // the eu instance serves the fence; the start is for anywhere
    const inUs = place({ miners, instances: [instance(anywhere, 'us1')], accounts: [] }, [fenced, anywhere], clock);
    expect(inUs.decisions).toEqual([expect.objectContaining({ kind: 'start', minerId: 'eu1', regions: ['eu'] })]);
    // One demand per (DService, tier, fence): the same fence twice is still refused.
    expect(() => place({ miners, instances: [], accounts: [] }, [fenced, demand('echo', { regions: ['eu'] })], clock)).toThrow(/demanded twice in tier open fenced to eu/);
  });

  it('an instance started for anywhere on a miner inside a fence stays the anywhere demand\'s', () => {
    const eu1 = miner('eu1', { region: 'eu-west' });
    const eu2 = miner('eu2', { region: 'eu-west' });
    const fenced = demand('echo', { regions: ['eu'], desiredInstances: 1 });
    const anywhere = demand('echo', { desiredInstances: 1 });
    const own = instance(fenced, 'eu1', { fence: 'eu' });
    const other = instance(anywhere, 'eu2', { fence: '' });
    const plan = place({ miners: [eu1, eu2], instances: [own, other], accounts: [] }, [fenced, anywhere], clock);
    expect(plan.decisions).toEqual([]);
    // Without knowing what it was started for, it would count for the fence: one too many there, none anywhere.
    const { fence: _, ...unknown } = other;
    const blind = place({ miners: [eu1, eu2], instances: [own, unknown], accounts: [] }, [fenced, anywhere], clock);
    expect(blind.decisions.map((d) => d.kind).sort()).toEqual(['start', 'stop']);
  });
});
