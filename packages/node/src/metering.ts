/**
 * The node's seam to the ledger: every completed work unit becomes a microtransaction, and the
 * response waits until it is committed.
 */
import type { Microtransaction } from '@cgn/ledger';

export interface MeteringSink {
  record(tx: Microtransaction): Promise<void>;
}
