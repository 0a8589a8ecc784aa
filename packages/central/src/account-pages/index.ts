/** The account pages' API (central's web app, #/account/...): see pages.ts. */
import type { BillingLedgerStore } from '@cgn/ledger';
import { CentralError } from '../errors.js';
import { NO_LEDGER_MESSAGE, type LedgerSource } from '../billing.js';

export { AccountPages, type AccountPagesOptions } from './pages.js';
export { accountPageRoutes } from './routes.js';

/** The ledger getter the pages read with: a 503 saying why when central has none. */
export function ledgerOf(source: LedgerSource | null): () => Promise<BillingLedgerStore> {
  if (source === null) return () => Promise.reject(new CentralError('unavailable', NO_LEDGER_MESSAGE, { retryAfterS: 5 }));
  return () => source.get();
}
