/**
 * The deposit bridge: confirmed `Deposited` events of the settlement contract become ledger
 * credits. The watcher delivers an event only once it is `confirmations` blocks deep and rewinds
 * after a reorg; the ledger records each event under its `txHash:logIndex` in the same
 * transaction as the credit, so a replay (restart from an old cursor, a lost cursor file, a
 * rewind, a crash between the credit and the cursor) never credits twice.
 */
import type { Address } from 'viem';
import type { BillingLedgerStore, DepositOutcome } from '@cgn/ledger';
import type { CgnContracts } from '../contracts.js';
import { ChainWatcher, type ChainEvent, type WatcherStore } from '../watcher.js';

export interface DepositBridgeOptions {
  store: BillingLedgerStore;
  /** Where the watcher keeps its cursor (a replay is harmless, this only saves re-reading). */
  watcherStore: WatcherStore;
  /** Blocks on top of a deposit before it is credited (default 2). */
  confirmations?: number;
  onDeposit?: (event: ChainEvent, outcome: DepositOutcome) => void;
}

/** The ledger deposit of a `Deposited` event. */
export function depositOf(event: ChainEvent): { ref: string; address: Address; amount: bigint; block: bigint } {
  if (event.name !== 'Deposited') throw new TypeError(`not a Deposited event: ${event.name}`);
  const { account, amount } = event.args as { account: Address; amount: bigint };
  return { ref: event.id, address: account, amount, block: event.blockNumber };
}

export class DepositBridge {
  readonly watcher: ChainWatcher;

  constructor(contracts: CgnContracts, readonly opts: DepositBridgeOptions) {
    this.watcher = new ChainWatcher(contracts, {
      store: opts.watcherStore,
      events: ['Deposited'],
      confirmations: opts.confirmations ?? 2,
      onEvent: async (e) => {
        const outcome = await opts.store.recordChainDeposit(depositOf(e));
        opts.onDeposit?.(e, outcome);
      },
    });
  }

  /** Credits every deposit confirmed since the last call; resolves to the number of events read. */
  poll(): Promise<number> {
    return this.watcher.poll();
  }
}
