/**
 * Usage from a cycle on (`fromCycle`): the same lines as the whole ledger's usage kept to that
 * cycle and later, for random records spread over random cycles. (It is read as a range of the
 * record order, `seq > the cycle's after_seq`; bench/developer-page.mjs times it.)
 */
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLedger } from './index.js';

const SPLIT = { miner: 7000, developer: 2000, operator: 900, charity: 100 };

describe('usage from a cycle on', () => {
  it('equals the whole ledger\'s usage kept to that cycle and later (SQLite), by a range of the record order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 12 }), { minLength: 1, maxLength: 5 }), fc.integer({ min: 1, max: 6 }), async (cycles, fromCycle) => {
        const dir = mkdtempSync(join(tmpdir(), 'cgn-from-cycle-'));
        const l = openLedger({ path: join(dir, 'l.sqlite') });
        l.writer.start();
        try {
          l.store.setRate({ num: 1n, den: 1n });
          let n = 0;
          let at = 1_000_000;
          for (const names of cycles) {
            for (const dservice of names) {
              n++;
              await l.writer.record({
                workId: `w${n}`, account: 'acc', endUser: null, dservice, tier: 'open', miner: 'ab'.repeat(32), node: 'n', receivedAt: at++,
                queueUs: 1, execUs: 10, cpuUs: 5, bytesIn: 1, bytesOut: 1, status: 200, resultHash: null, attempts: 1,
                pricing: { priceMicros: BigInt(n), split: SPLIT, developer: 'dev', operator: 'op', charity: 'ch' },
              });
            }
            l.store.closeCycle({ at: at++ });
          }
          for (const dservice of ['a', 'b', undefined]) {
            const all = l.store.usageOverTime('cycle', 'dservice', dservice === undefined ? {} : { dservice });
            const from = l.store.usageOverTime('cycle', 'dservice', dservice === undefined ? { fromCycle } : { dservice, fromCycle });
            expect(from).toEqual(all.filter((x) => Number(x.bucket) >= fromCycle));
          }
        } finally {
          await l.writer.stop();
          l.store.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 25 },
    );
  });
});
