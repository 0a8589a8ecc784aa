/**
 * @cgn/ledger — the metering ledger: one microtransaction per completed work unit, committed
 * before the response leaves the node, append-only and hash-chained per node.
 *
 * * `LedgerStore` is the storage contract; `SqliteLedgerStore` the embedded adapter (WAL,
 *   one transaction per batch). PostgreSQL comes later behind the same interface.
 * * `GroupCommitWriter` turns concurrent `record()` calls into shared transactions.
 * * `openLedger` wires the two together.
 *
 * ```ts
 * import { openLedger } from '@cgn/ledger';
 *
 * const { store, writer } = openLedger({ path: 'ledger.sqlite', durability: 'normal' });
 * writer.start();
 * await writer.record({
 *   workId: 'w_1', account: 'acme', endUser: null, dservice: 'echo', tier: 'open', miner: 'ab12cd',
 *   node: 'eu-1', receivedAt: Date.now(), queueUs: 120, execUs: 950, cpuUs: 800,
 *   bytesIn: 12, bytesOut: 12, status: 200, resultHash: null, attempts: 1,
 * });
 * console.log(store.count(), store.verifyChain()); // 1 { ok: true, rows: 1 }
 * await writer.stop(); // commits what is pending, closes the store
 * ```
 */
export type { Microtransaction } from './record.js';
export { assertMicrotransaction, microtransactionProblem } from './record.js';
export type { AppendResult, Durability, LedgerStore, MaybePromise } from './store.js';
export type { ChainFault, ChainFaultReason, ChainHead, ChainRow, ChainVerification } from './chain.js';
export { ChainVerifier, RECORD_FORMAT, canonicalEncoding, chainHash } from './chain.js';
export { SqliteLedgerStore, type SqliteLedgerStoreOptions } from './sqlite-store.js';
export { GroupCommitWriter, type GroupCommitCounters, type GroupCommitWriterOptions } from './group-commit.js';
export { openLedger, type Ledger, type OpenLedgerOptions } from './open.js';
