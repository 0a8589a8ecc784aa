import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diagnose, filter, isEligible, refusalReasons, regionAllowed } from './filter.js';
import { resources } from './resources.js';
import { miner } from './test-fixtures/builders.js';
import type { MinerView, Requirements } from './types.js';

const req = (over: Partial<Requirements> = {}): Requirements => ({ resources: resources({ cpus: 1, memoryMb: 512 }), tier: 'open', ...over });

describe('filter', () => {
  it('gives every reason a miner fails, in a fixed order', () => {
    const m = miner('m', { status: 'draining', tier: 'attested', region: 'us-east', priceFloor: 50, cap: { memoryMb: 256, gpus: 0 } });
    expect(refusalReasons(m, req({ regions: ['eu'], maxPrice: 20, requireMeasured: true, resources: resources({ cpus: 1, memoryMb: 512, gpus: 1 }) }))).toEqual([
      'draining',
      'tier',
      'region',
      'unmeasured',
      'price',
      'memory',
      'gpu',
    ]);
  });

  it('splits miners into eligible and refused', () => {
    const r = filter([miner('ok'), miner('small', { cap: { cpus: 0.5 } }), miner('off', { status: 'offline' }), miner('bad', { banned: true })], req());
    expect(r.eligible.map((m) => m.id)).toEqual(['ok']);
    expect(r.refused).toEqual([
      { minerId: 'small', reasons: ['cpus'] },
      { minerId: 'off', reasons: ['offline'] },
      { minerId: 'bad', reasons: ['banned'] },
    ]);
  });

  it('matches regions and their sub-regions, not mere prefixes', () => {
    expect(regionAllowed('eu-west', ['eu'])).toBe(true);
    expect(regionAllowed('eu', ['eu'])).toBe(true);
    expect(regionAllowed('europe', ['eu'])).toBe(false);
    expect(regionAllowed(undefined, ['eu'])).toBe(false);
    expect(regionAllowed(undefined, undefined)).toBe(true);
  });

  it('the fast check agrees with the reasons', () => {
    const arbMiner: fc.Arbitrary<MinerView> = fc
      .record({
        tier: fc.constantFrom('open', 'attested', 'dedicated'),
        region: fc.constantFrom('eu-west', 'us-east', 'eu', undefined),
        status: fc.constantFrom('online', 'draining', 'offline'),
        banned: fc.boolean(),
        cpus: fc.integer({ min: 0, max: 4 }),
        mem: fc.integer({ min: 0, max: 4 }),
        mcpus: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
        price: fc.integer({ min: 0, max: 4 }),
      })
      .map((r) => ({
        ...miner('m', { tier: r.tier, status: r.status, banned: r.banned, priceFloor: r.price, cap: { cpus: r.cpus, memoryMb: r.mem * 512 } }),
        ...(r.region !== undefined ? { region: r.region } : { region: undefined }),
        ...(r.mcpus !== undefined ? { measured: resources({ cpus: r.mcpus, memoryMb: 4096, diskMb: 1e6, gpus: 1, bandwidthMbps: 1e6 }) } : {}),
      }) as MinerView);
    const arbReq: fc.Arbitrary<Requirements> = fc
      .record({
        tier: fc.constantFrom('open', 'attested', 'dedicated'),
        regions: fc.option(fc.subarray(['eu', 'us-east']), { nil: undefined }),
        cpus: fc.integer({ min: 0, max: 4 }),
        mem: fc.integer({ min: 0, max: 4 }),
        maxPrice: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
        requireMeasured: fc.boolean(),
      })
      .map((r) => ({
        tier: r.tier,
        resources: resources({ cpus: r.cpus, memoryMb: r.mem * 512 }),
        requireMeasured: r.requireMeasured,
        ...(r.regions !== undefined ? { regions: r.regions } : {}),
        ...(r.maxPrice !== undefined ? { maxPrice: r.maxPrice } : {}),
      }));
    fc.assert(fc.property(arbMiner, arbReq, (m, r) => isEligible(m, r) === (refusalReasons(m, r).length === 0)), { numRuns: 3000 });
  });
});

describe('diagnose: why nothing can run', () => {
  it('names the first requirement that leaves no miner, with numbers', () => {
    const ms = [miner('a', { cap: { memoryMb: 2048 } }), miner('b', { cap: { memoryMb: 1024 } })];
    const d = diagnose(ms, req({ resources: resources({ cpus: 1, memoryMb: 4096 }) }));
    expect(d.eligible).toBe(0);
    expect(d.blocking).toBe('memory');
    expect(d.message).toBe('no online miner in tier open with enough memory: an instance needs 4096 MB of memory, the largest has 2048');
    expect(d.funnel.map((s) => [s.requirement, s.remaining])).toEqual([
      ['online', 2],
      ['tier', 2],
      ['region', 2],
      ['measured', 2],
      ['price', 2],
      ['cpus', 2],
      ['memory', 0],
    ]);
  });

  it('explains tiers, regions, prices and an empty network', () => {
    expect(diagnose([], req()).message).toBe('no miner is online (or every one is banned)');
    expect(diagnose([miner('a')], req({ tier: 'dedicated' })).message).toBe('no online miner in tier dedicated');
    expect(diagnose([miner('a', { region: 'us-east' })], req({ regions: ['eu'] })).message).toBe("no online miner in tier open in the account's regions (eu)");
    expect(diagnose([miner('a', { priceFloor: 30 })], req({ maxPrice: 10 })).message).toMatch(/accepts the DService's price of 10 per CPU-second \(the lowest floor is 30\)/);
  });

  it('says nothing is wrong when a miner qualifies', () => {
    const d = diagnose([miner('a')], req());
    expect(d).toMatchObject({ eligible: 1 });
    expect(d.message).toBeUndefined();
  });
});
