/**
 * Usage from a cycle on (`fromCycle`): the same lines as the whole ledger's usage kept to that
 * cycle and later, for random records spread over random cycles, on SQLite and PostgreSQL. (It is
 * read as a range of the record order, `seq > the cycle's after_seq`; bench/developer-page.mjs
 * times it.)
 */
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, openPostgresLedger } from './index.js';
import { findPostgresBin, startPostgresCluster, type PostgresCluster } from './pg-cluster.js';
import type { BillingLedgerStore } from './store.js';

const SPLIT = { miner: 7000, developer: 2000, operator: 900, charity: 100 };

interface Opened {
  store: BillingLedgerStore;
  writer: { start(): void; stop(): Promise<void>; record(r: Parameters<ReturnType<typeof openLedger>['writer']['record']>[0]): Promise<unknown> };
  close(): Promise<void>;
}

const arbCycles = fc.array(fc.array(fc.constantFrom('a', 'b', 'c'), { maxLength: 12 }), { minLength: 1, maxLength: 5 });

async function property(open: () => Promise<Opened>, numRuns: number): Promise<void> {
  await fc.assert(
    fc.asyncProperty(arbCycles, fc.integer({ min: 1, max: 6 }), async (cycles, fromCycle) => {
      const l = await open();
      try {
        await l.store.setRate({ num: 1n, den: 1n });
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
          await l.store.closeCycle({ at: at++ });
        }
        for (const dservice of ['a', 'b', undefined]) {
          const all = await l.store.usageOverTime('cycle', 'dservice', dservice === undefined ? {} : { dservice });
          const from = await l.store.usageOverTime('cycle', 'dservice', dservice === undefined ? { fromCycle } : { dservice, fromCycle });
          expect(from).toEqual(all.filter((x) => Number(x.bucket) >= fromCycle));
        }
      } finally {
        await l.close();
      }
    }),
    { numRuns },
  );
}

describe('usage from a cycle on', () => {
  it('equals the whole ledger\'s usage kept to that cycle and later (SQLite)', async () => {
    await property(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cgn-from-cycle-'));
      const l = openLedger({ path: join(dir, 'l.sqlite') });
      l.writer.start();
      return {
        store: l.store, writer: l.writer,
        close: async () => {
          await l.writer.stop();
          l.store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }, 25);
  });
});

const bin = findPostgresBin();
describe.skipIf(bin === null)('usage from a cycle on (PostgreSQL)', () => {
  let cluster: PostgresCluster | undefined;
  let n = 0;
  beforeAll(async () => {
    cluster = await startPostgresCluster({ fsync: false });
  });
  afterAll(() => cluster?.stop());

  it('equals the whole ledger\'s usage kept to that cycle and later (PostgreSQL)', async () => {
    await property(async () => {
      const schema = `from_cycle_${process.pid}_${n++}`;
      const l = await openPostgresLedger({ url: cluster!.url, schema, max: 2 });
      l.writer.start();
      return {
        store: l.store, writer: l.writer,
        close: async () => {
          const sql = l.store.raw;
          await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
          await l.writer.stop();
        },
      };
    }, 8);
  }, 120_000);
});
