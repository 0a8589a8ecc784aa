/** Opening the ledger the settlement commands work on: a SQLite file or a PostgreSQL URL. */
import * as fs from 'node:fs';
import { PostgresLedgerStore, SqliteLedgerStore, type BillingLedgerStore } from '@cgn/ledger';

export class SettleUsageError extends Error {}

export async function openLedgerStore(opts: { ledger?: string | undefined; postgres?: string | undefined; schema?: string | undefined; readonly?: boolean }): Promise<BillingLedgerStore> {
  if (opts.postgres !== undefined) {
    if (opts.ledger !== undefined) throw new SettleUsageError('use either --ledger or --postgres, not both');
    return PostgresLedgerStore.open({ url: opts.postgres, ...(opts.schema !== undefined ? { schema: opts.schema } : {}), max: 2 });
  }
  if (opts.schema !== undefined) throw new SettleUsageError('--schema goes with --postgres');
  const path = opts.ledger ?? '.cgn/node/ledger.sqlite';
  if (!fs.existsSync(path)) throw new SettleUsageError(`no ledger at ${path} (pass --ledger PATH or --postgres URL)`);
  return new SqliteLedgerStore({ path, ...(opts.readonly ? { readonly: true } : {}) });
}
