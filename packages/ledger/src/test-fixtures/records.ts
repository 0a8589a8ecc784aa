/** Test records: a plain maker and a fast-check arbitrary. Shared by the ledger's test files. */
import fc from 'fast-check';
import type { Microtransaction } from '../record.js';

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

const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 24 });
const count = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

/** Any valid record; `workIds` and `nodes` pools make duplicates and several chains likely. */
export function arbRecord(workIds: fc.Arbitrary<string>, nodes: fc.Arbitrary<string>): fc.Arbitrary<Microtransaction> {
  return fc.record({
    workId: workIds,
    account: text,
    endUser: fc.option(fc.string({ unit: 'binary', maxLength: 24 }), { nil: null }),
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
  });
}
