/**
 * `microtransactionProblem` has a fast path for good records (every field read once by name)
 * and the field-by-field checks that name the problem. Both must agree: every valid record
 * passes, and a record with any one field made bad is refused with that field named.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { microtransactionProblem, type Microtransaction } from './record.js';
import { splitProblem } from './pricing/split.js';
import { arbPricing, arbRecord } from './test-fixtures/records.js';

const valid = fc.tuple(arbRecord(fc.string({ minLength: 1, maxLength: 20 }).map((s) => `w_${s.replaceAll('\u0000', '0')}`), fc.constantFrom('node-a', 'node-b')), fc.option(arbPricing, { nil: undefined }))
  .map(([r, p]): Microtransaction => (p === undefined ? r : { ...r, pricing: p }));

/** One field made bad, and the word the problem must name. */
const breakages: [string, (r: Microtransaction) => Microtransaction][] = [
  ['workId', (r) => ({ ...r, workId: '' })],
  ['account', (r) => ({ ...r, account: 'x'.repeat(257) })],
  ['dservice', (r) => ({ ...r, dservice: 'a\u0000b' })],
  ['miner', (r) => ({ ...r, miner: '\ud800' })],
  ['node', (r) => ({ ...r, node: 5 as unknown as string })],
  ['receivedAt', (r) => ({ ...r, receivedAt: -1 })],
  ['queueUs', (r) => ({ ...r, queueUs: 1.5 })],
  ['execUs', (r) => ({ ...r, execUs: Number.MAX_SAFE_INTEGER + 1 })],
  ['cpuUs', (r) => ({ ...r, cpuUs: NaN })],
  ['bytesIn', (r) => ({ ...r, bytesIn: '1' as unknown as number })],
  ['bytesOut', (r) => ({ ...r, bytesOut: -5 })],
  ['attempts', (r) => ({ ...r, attempts: Infinity })],
  ['status', (r) => ({ ...r, status: 99 })],
  ['tier', (r) => ({ ...r, tier: 'gold' as Microtransaction['tier'] })],
  ['endUser', (r) => ({ ...r, endUser: 'u\u0000' })],
  ['resultHash', (r) => ({ ...r, resultHash: 'xyz' })],
  ['reportedCpuUs', (r) => ({ ...r, reportedCpuUs: r.cpuUs })],
  ['priceMicros', (r) => ({ ...r, pricing: { ...(r.pricing ?? { split: { miner: 10_000, developer: 0, operator: 0, charity: 0 }, developer: 'd', operator: 'o', charity: 'c' }), priceMicros: -1n } })],
  ['split', (r) => ({ ...r, pricing: { priceMicros: 1n, developer: 'd', operator: 'o', charity: 'c', split: { miner: 5000, developer: 0, operator: 0, charity: 0 } } })],
  ['pricing.developer', (r) => ({ ...r, pricing: { priceMicros: 1n, developer: '', operator: 'o', charity: 'c', split: { miner: 10_000, developer: 0, operator: 0, charity: 0 } } })],
];

describe('microtransactionProblem', () => {
  it('property: every valid record passes; one bad field is refused and named', () => {
    fc.assert(
      fc.property(valid, fc.integer({ min: 0, max: breakages.length - 1 }), (r, k) => {
        expect(microtransactionProblem(r)).toBeNull();
        const [field, breakIt] = breakages[k]!;
        const problem = microtransactionProblem(breakIt(r));
        expect(problem).not.toBeNull();
        expect(problem).toContain(field === 'priceMicros' || field === 'split' || field === 'pricing.developer' ? 'pricing' : field);
      }),
      { numRuns: 300 },
    );
  });

  it('checks a frozen split once and keeps trusting it; an unfrozen one every time', () => {
    const frozen = Object.freeze({ miner: 7000, developer: 2000, operator: 900, charity: 100 });
    expect(splitProblem(frozen)).toBeNull();
    expect(splitProblem(frozen)).toBeNull();
    const loose = { miner: 7000, developer: 2000, operator: 900, charity: 100 };
    expect(splitProblem(loose)).toBeNull();
    loose.charity = 200;
    expect(splitProblem(loose)).toMatch(/sum to 10000/);
    expect(splitProblem(Object.freeze({ miner: 1, developer: 0, operator: 0, charity: 0 }))).toMatch(/sum to 10000/);
  });
});
