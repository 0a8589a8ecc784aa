/**
 * `openLedger`: the embedded ledger in one call, as the node (or a script) uses it.
 */
import { GroupCommitWriter, type GroupCommitWriterOptions } from './group-commit.js';
import { PostgresLedgerStore, type PostgresLedgerStoreOptions } from './pg-store.js';
import { SqliteLedgerStore } from './sqlite-store.js';
import type { Durability } from './store.js';

export interface OpenLedgerOptions {
  /** SQLite file (created with its directory if missing), or `:memory:`. */
  path: string;
  /** `normal` (default) survives a killed process; `full` survives power loss, at a cost per commit. */
  durability?: Durability;
  /** Group-commit tuning; see `GroupCommitWriterOptions`. */
  writer?: Omit<GroupCommitWriterOptions, 'closeStoreOnStop'>;
}

export interface Ledger {
  store: SqliteLedgerStore;
  /** Not started yet: call `writer.start()`. `writer.stop()` commits what is pending and closes the store. */
  writer: GroupCommitWriter;
}

/**
 * Opens (creating or migrating) the SQLite ledger at `path` and a group-commit writer over it.
 *
 * ```ts
 * const { store, writer } = openLedger({ path: '.cgn/node/ledger.sqlite', durability: 'normal' });
 * writer.start();
 * await writer.record(tx);           // committed when this resolves
 * await writer.stop();               // flushes, then closes the store
 * ```
 */
export function openLedger(options: OpenLedgerOptions): Ledger {
  const store = new SqliteLedgerStore(options.durability === undefined ? { path: options.path } : { path: options.path, durability: options.durability });
  const writer = new GroupCommitWriter(store, { ...options.writer, closeStoreOnStop: true });
  return { store, writer };
}

export interface OpenPostgresLedgerOptions extends PostgresLedgerStoreOptions {
  /** Group-commit tuning; see `GroupCommitWriterOptions`. */
  writer?: Omit<GroupCommitWriterOptions, 'closeStoreOnStop'>;
}

export interface PostgresLedger {
  store: PostgresLedgerStore;
  writer: GroupCommitWriter;
}

/**
 * Connects (creating or migrating the schema) to a PostgreSQL ledger and makes a group-commit
 * writer over it: commits are asynchronous, so while one batch commits the next collects.
 */
export async function openPostgresLedger(options: OpenPostgresLedgerOptions): Promise<PostgresLedger> {
  const { writer: w, ...storeOptions } = options;
  const store = await PostgresLedgerStore.open(storeOptions);
  const writer = new GroupCommitWriter(store, { ...w, closeStoreOnStop: true });
  return { store, writer };
}
