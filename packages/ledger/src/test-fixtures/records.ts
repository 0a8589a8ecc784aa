/** Test records: a plain maker and a fast-check arbitrary. Shared by the ledger's test files. */
import fc from 'fast-check';
import type { Microtransaction, Pricing } from '../record.js';
import type { SplitBps } from '../pricing/split.js';

export function makeRecord(i: number, overrides: Partial<Microtransaction> = {}): Microtransaction {
  return {
    workId: `w_test_${i}`,
    account: `acct_${i % 7}`,
    endUser: i % 3 === 0 ? null : `user_${i % 11}`,
    dservice: 'echo',
    tier: 'open',
    miner: 'ab'.repeat(32),
    node: 'node-a',
    receivedAt: 1_790_000_000_000 + i,
    queueUs: i % 100,
    execUs: 1000 + i,
    cpuUs: 900 + i,
    bytesIn: 10 + i,
    bytesOut: 20 + i,
    status: 200,
    resultHash: i % 5 === 0 ? null : 'cd'.repeat(32),
    attempts: 1 + (i % 3),
    ...overrides,
  };
}

const noNul = (s: string): string => s.replaceAll('\u0000', '0');
const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }).map(noNul);
const count = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

/** Any valid record; `workIds` and `nodes` pools make duplicates and several chains likely. */
export function arbRecord(workIds: fc.Arbitrary<string>, nodes: fc.Arbitrary<string>): fc.Arbitrary<Microtransaction> {
  return fc.record({
    workId: workIds,
    account: text,
    endUser: fc.option(fc.string({ unit: 'binary', maxLength: 24 }).map(noNul), { nil: null }),
    dservice: text,
    tier: fc.constantFrom('open' as const, 'attested' as const, 'dedicated' as const),
    miner: fc.stringMatching(/^[0-9a-f]{1,64}$/),
    node: nodes,
    receivedAt: count,
    queueUs: count,
    execUs: count,
    cpuUs: count,
    bytesIn: count,
    bytesOut: count,
    status: fc.integer({ min: 100, max: 599 }),
    resultHash: fc.option(fc.stringMatching(/^[0-9a-f]{64}$/), { nil: null }),
    attempts: fc.integer({ min: 0, max: 1000 }),
    // Now and then a clipped report kept beside the billed CPU time (record format 3).
    over: fc.option(fc.integer({ min: 1, max: 1_000_000_000 }), { freq: 4, nil: undefined }),
  }).map(({ over, ...r }): Microtransaction => {
    if (over === undefined) return r;
    const cpuUs = Math.min(r.cpuUs, Number.MAX_SAFE_INTEGER - over);
    return { ...r, cpuUs, reportedCpuUs: cpuUs + over };
  });
}

/** Any agreement: four basis-point parts summing to 10,000. */
export const arbBps: fc.Arbitrary<SplitBps> = fc
  .tuple(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 10_000 }))
  .map(([a, b, c]) => {
    const [x, y, z] = [a, b, c].sort((p, q) => p - q) as [number, number, number];
    return { miner: x, developer: y - x, operator: z - y, charity: 10_000 - z };
  });

export function makePricing(i: number, overrides: Partial<Pricing> = {}): Pricing {
  return {
    priceMicros: BigInt(100 + ((i * 37) % 1000)),
    split: { miner: 7000, developer: 2000, operator: 900, charity: 100 },
    developer: `dev_${i % 2}`,
    operator: 'op_1',
    charity: 'charity_1',
    ...overrides,
  };
}

export function makePricedRecord(i: number, overrides: Partial<Microtransaction> = {}): Microtransaction {
  return makeRecord(i, { pricing: makePricing(i), ...overrides });
}

export const arbPricing: fc.Arbitrary<Pricing> = fc.record({
  priceMicros: fc.bigInt({ min: 0n, max: 10n ** 12n }),
  split: arbBps,
  developer: fc.constantFrom('dev_a', 'dev_b'),
  operator: fc.constantFrom('op_a', 'op_b'),
  charity: fc.constant('charity'),
});
