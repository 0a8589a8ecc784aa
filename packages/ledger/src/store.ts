/**
 * The contract every ledger store meets (SQLite today, PostgreSQL later). Methods may answer
 * synchronously (embedded stores) or with a promise (networked ones); callers `await` them.
 * One shared test suite (`test-fixtures/store-suite.ts`) runs against every adapter.
 */
import type { ChainVerification } from './chain.js';
import type { Microtransaction } from './record.js';

export type MaybePromise<T> = T | Promise<T>;

/** What an append did. */
export interface AppendResult {
  /** Records written as new rows. */
  inserted: number;
  /**
   * Work ids of records that were already in the ledger (or earlier in the same batch) and were
   * ignored: the first record of a work id stands, nothing is billed twice.
   */
  duplicates: readonly string[];
}

/**
 * How hard a commit tries to survive a crash.
 * * `normal`: survives the process being killed (SIGKILL, crash); an OS crash or power loss may
 *   lose the last few committed transactions (never corrupts the ledger).
 * * `full`: survives power loss too; every commit waits for the disk (fsync), so it is slower.
 */
export type Durability = 'normal' | 'full';

export interface LedgerStore {
  /**
   * Appends the records in one transaction, in order, extending each node's hash chain: either
   * all new records are committed or none (the call throws). Records whose work id is already
   * present are ignored and listed in the result. Throws a `bad_request` CgnError, writing
   * nothing, when any record is malformed.
   */
  appendBatch(records: readonly Microtransaction[]): MaybePromise<AppendResult>;
  /** Number of records (rows). */
  count(): MaybePromise<number>;
  /** The record of a work id, as first appended. */
  get(workId: string): MaybePromise<Microtransaction | undefined>;
  /**
   * Recomputes every node's chain from the stored rows: every row's hash covers its contents and
   * links to the node's previous row, and the stored heads are the last rows. Reports the first
   * row that does not.
   */
  verifyChain(): MaybePromise<ChainVerification>;
  /** Releases the store. Idempotent; other calls fail afterwards. */
  close(): MaybePromise<void>;
}
