import { afterEach, describe, expect, it } from 'vitest';
import { CgnError } from '@cgn/protocol';
import { GroupCommitWriter, type GroupCommitWriterOptions } from './group-commit.js';
import { SqliteLedgerStore } from './sqlite-store.js';
import type { AppendOptions, AppendResult, LedgerStore } from './store.js';
import type { Microtransaction } from './record.js';
import { makePricedRecord, makeRecord } from './test-fixtures/records.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A real SQLite store (in memory) that also counts the transactions it was asked for. */
class CountingStore extends SqliteLedgerStore {
  readonly batches: number[] = [];
  constructor() {
    super({ path: ':memory:' });
  }
  override appendBatch(records: readonly Microtransaction[], options?: AppendOptions): AppendResult {
    this.batches.push(records.length);
    return super.appendBatch(records, options);
  }
}

/** A store whose commits are asynchronous and controlled by the test. */
class AsyncStore implements LedgerStore {
  readonly inner = new SqliteLedgerStore({ path: ':memory:' });
  readonly batches: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext: Error | null = null;
  async appendBatch(records: readonly Microtransaction[]): Promise<AppendResult> {
    this.batches.push(records.length);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await turn();
    await turn();
    this.inFlight--;
    const err = this.failNext;
    this.failNext = null;
    if (err !== null) throw err;
    return this.inner.appendBatch(records);
  }
  count = () => this.inner.count();
  get = (id: string) => this.inner.get(id);
  verifyChain = () => this.inner.verifyChain();
  close = () => this.inner.close();
}

const writers: GroupCommitWriter[] = [];
function started(store: LedgerStore, options: GroupCommitWriterOptions = {}): GroupCommitWriter {
  const w = new GroupCommitWriter(store, { closeStoreOnStop: true, ...options });
  w.start();
  writers.push(w);
  return w;
}
afterEach(async () => {
  for (const w of writers.splice(0)) await w.stop();
});

describe('GroupCommitWriter', () => {
  it('1000 concurrent record() calls share one transaction and all resolve after commit', async () => {
    const store = new CountingStore();
    const w = started(store);
    const done = Array.from({ length: 1000 }, (_, i) => w.record(makeRecord(i)));
    expect(store.count()).toBe(0); // nothing committed before the next turn
    await Promise.all(done);
    expect(store.count()).toBe(1000);
    expect(store.batches).toEqual([1000]);
    expect(store.verifyChain()).toEqual({ ok: true, rows: 1000 });
    expect(w.counters).toMatchObject({ records: 1000, inserted: 1000, batches: 1, lastBatchSize: 1000, maxBatchSize: 1000, pending: 0, failedBatches: 0 });
  });

  it('many producers awaiting each record share far fewer transactions than records', async () => {
    const store = new CountingStore();
    const w = started(store);
    let n = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        for (let i = 0; i < 20; i++) await w.record(makeRecord(n++));
      }),
    );
    expect(store.count()).toBe(1000);
    // Each turn commits what every producer sent in it: about one batch per round of producers.
    expect(store.batches.length).toBeLessThan(50);
    expect(store.batches.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(w.counters.batches).toBe(store.batches.length);
  });

  it('at light load (no commit for commitAtOnceWhenQuietMs) commits a lone record at once; a burst still batches', async () => {
    const store = new CountingStore();
    let clock = 1000;
    const w = started(store, { commitAtOnceWhenQuietMs: 1, now: () => clock });
    const first = w.record(makeRecord(0));
    expect(store.count()).toBe(1); // committed inside record()
    await first;
    // A burst right after: the first commit was just now, so they wait for the turn together.
    const burst = Array.from({ length: 20 }, (_, i) => w.record(makeRecord(1 + i)));
    expect(store.count()).toBe(1);
    await Promise.all(burst);
    expect(store.batches).toEqual([1, 20]);
    clock += 0.5; // not quiet yet
    const soon = w.record(makeRecord(21));
    expect(store.count()).toBe(21);
    await soon;
    clock += 5; // quiet again
    const later = w.record(makeRecord(22));
    expect(store.count()).toBe(23);
    await later;
    expect(store.batches).toEqual([1, 20, 1, 1]);
    expect(store.verifyChain()).toEqual({ ok: true, rows: 23 });
  });

  it('refuses a commitAtOnceWhenQuietMs that is not a number of ms', () => {
    expect(() => new GroupCommitWriter(new CountingStore(), { commitAtOnceWhenQuietMs: -1 })).toThrow(/commitAtOnceWhenQuietMs/);
  });

  it('commits at once, without waiting for the turn, when the buffer reaches maxBatchSize', async () => {
    const store = new CountingStore();
    const w = started(store, { maxBatchSize: 100 });
    const done: Promise<void>[] = [];
    for (let i = 0; i < 99; i++) done.push(w.record(makeRecord(i)));
    expect(store.count()).toBe(0);
    done.push(w.record(makeRecord(99)));
    expect(store.count()).toBe(100); // committed synchronously inside the 100th call
    for (let i = 100; i < 1000; i++) done.push(w.record(makeRecord(i)));
    await Promise.all(done);
    expect(store.batches).toEqual(Array(10).fill(100));
  });

  it('with windowMs, records from several turns inside the window share a transaction', async () => {
    const store = new CountingStore();
    const w = started(store, { windowMs: 200 });
    const done: Promise<void>[] = [];
    for (let t = 0; t < 5; t++) {
      for (let i = 0; i < 10; i++) done.push(w.record(makeRecord(t * 10 + i)));
      await turn();
    }
    await Promise.all(done);
    expect(store.batches).toEqual([50]);
  });

  it('a failed commit rejects every record of the batch, and the next batch still commits', async () => {
    const store = new CountingStore();
    const w = started(store);
    const boom = new Error('SQLITE_FULL: database or disk is full');
    const original = store.appendBatch.bind(store);
    store.appendBatch = () => {
      throw boom;
    };
    const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => w.record(makeRecord(i))));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    const reason = (results[0] as PromiseRejectedResult).reason as CgnError;
    expect(reason).toBeInstanceOf(CgnError);
    expect(reason).toMatchObject({ code: 'internal', retryable: true, cause: boom });
    expect(reason.message).toMatch(/300 records .*disk is full/);
    expect(w.counters).toMatchObject({ failedBatches: 1, failedRecords: 300, records: 0, pending: 0 });

    store.appendBatch = original;
    await Promise.all(Array.from({ length: 10 }, (_, i) => w.record(makeRecord(i))));
    expect(store.count()).toBe(10);
    expect(store.verifyChain()).toEqual({ ok: true, rows: 10 });
  });

  it('with an asynchronous store: commits never overlap, a failure rejects exactly its batch', async () => {
    const store = new AsyncStore();
    const w = started(store, { maxBatchSize: 64 });
    const first = Array.from({ length: 100 }, (_, i) => w.record(makeRecord(i)));
    store.failNext = new Error('connection reset');
    await turn();
    const second = Array.from({ length: 100 }, (_, i) => w.record(makeRecord(100 + i)));
    const results = await Promise.allSettled([...first, ...second]);
    const rejected = results.filter((r) => r.status === 'rejected').length;
    expect(rejected).toBe(store.batches[0]); // the first commit failed, whole
    expect(store.maxInFlight).toBe(1);
    expect(store.count()).toBe(200 - rejected);
    expect(store.verifyChain()).toEqual({ ok: true, rows: 200 - rejected });
    expect(w.counters).toMatchObject({ failedBatches: 1, failedRecords: rejected, records: 200 - rejected, pending: 0 });
  });

  it('resolves a repeated work id without a second row, and reports it', async () => {
    const store = new CountingStore();
    const reported: string[] = [];
    const w = started(store, { onDuplicate: (ids) => reported.push(...ids) });
    await Promise.all([w.record(makeRecord(1)), w.record(makeRecord(2)), w.record(makeRecord(1, { status: 502 }))]);
    await w.record(makeRecord(2));
    expect(store.count()).toBe(2);
    expect(store.get(makeRecord(1).workId)?.status).toBe(200);
    expect(reported).toEqual([makeRecord(1).workId, makeRecord(2).workId]);
    expect(w.counters).toMatchObject({ records: 4, inserted: 2, duplicates: 2 });
  });

  it('refuses a malformed record on its own; the others in the turn commit', async () => {
    const store = new CountingStore();
    const w = started(store);
    const good = w.record(makeRecord(1));
    const bad = w.record(makeRecord(2, { cpuUs: -1 }));
    await expect(bad).rejects.toMatchObject({ code: 'bad_request', message: expect.stringMatching(/w_test_2.*cpuUs/) });
    await good;
    expect(store.count()).toBe(1);
    expect(w.counters.refused).toBe(1);
  });

  it('commits the record as it was passed, even if the caller changes the object afterwards', async () => {
    const store = new CountingStore();
    const w = started(store);
    const tx = makeRecord(1);
    const done = w.record(tx);
    tx.execUs = -5;
    tx.account = 'mallory';
    await done;
    expect(store.get(tx.workId)).toEqual(makeRecord(1));
  });

  it('stop() commits everything pending, closes the store, and refuses later records', async () => {
    const store = new CountingStore();
    const w = new GroupCommitWriter(store, { closeStoreOnStop: true });
    await expect(w.record(makeRecord(0))).rejects.toMatchObject({ code: 'draining' }); // not started
    w.start();
    const pending = Array.from({ length: 500 }, (_, i) => w.record(makeRecord(i)));
    const stopped = w.stop();
    await expect(w.record(makeRecord(999))).rejects.toMatchObject({ code: 'draining', retryable: true });
    await stopped;
    await Promise.all(pending);
    expect(store.batches).toEqual([500]);
    expect(() => store.count()).toThrow(/closed/);
    expect(w.stop()).toBe(stopped);
    expect(() => w.start()).toThrow(/cannot be started again/);
  });

  it('stop() waits for a commit in flight and drains what queued behind it', async () => {
    const store = new AsyncStore();
    const w = new GroupCommitWriter(store, { maxBatchSize: 10 });
    w.start();
    const pending = Array.from({ length: 35 }, (_, i) => w.record(makeRecord(i)));
    await w.stop();
    await Promise.all(pending);
    expect(store.batches).toEqual([10, 10, 10, 5]);
    expect(store.count()).toBe(35); // closeStoreOnStop defaults to false
    expect(w.counters.pending).toBe(0);
    store.close();
  });

  it('checks its options', () => {
    const store = new CountingStore();
    expect(() => new GroupCommitWriter(store, { maxBatchSize: 0 })).toThrow(/maxBatchSize/);
    expect(() => new GroupCommitWriter(store, { windowMs: -1 })).toThrow(/windowMs/);
    store.close();
  });
});

describe('GroupCommitWriter with refuseOverdraft', () => {
  it('rejects the records an account cannot pay for with payment_required, and commits the rest of the batch', async () => {
    const store = new SqliteLedgerStore({ path: ':memory:' });
    const writer = new GroupCommitWriter(store, { refuseOverdraft: true, closeStoreOnStop: true });
    writer.start();
    store.credit('acct_1', 100n, 'deposit');
    const price = (n: bigint) => ({ ...makePricedRecord(0).pricing!, priceMicros: n });
    const results = await Promise.allSettled([
      writer.record(makePricedRecord(1, { account: 'acct_1', pricing: price(70n) })),
      writer.record(makePricedRecord(2, { account: 'acct_1', pricing: price(70n) })),
      writer.record(makePricedRecord(3, { account: 'acct_1', pricing: price(30n) })),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const err = (results[1] as PromiseRejectedResult).reason as CgnError;
    expect(err).toBeInstanceOf(CgnError);
    expect(err.code).toBe('payment_required');
    expect(err.message).toMatch(/70 tokens would take account acct_1 past its funds \(30 left\)/);
    expect(writer.counters).toMatchObject({ inserted: 2, overdraftRefused: 1, records: 2 });
    expect(store.balance('acct_1').available).toBe(0n);
    await writer.stop();
  });
});
