/**
 * The ids `cgn ledger` commands accept, gathered where they are known: the ledger itself (accounts
 * with records, balances or linked addresses; miners with records, addresses or credits) and,
 * when a central is configured, central's accounts (by id and name). The rules are in resolve.ts.
 */
import type { Beneficiary } from './pricing/split.js';
import { CENTRAL_ACCOUNT_ID, resolveAccount, resolveBeneficiary, resolveMiner, type AccountRef } from './resolve.js';
import type { BillingLedgerStore } from './store.js';
import { sealedCycles } from './reports.js';
import { CgnError } from '@cgn/protocol';

/** Central's accounts as the signed-in user may see them, or null when no central is configured. */
export type CentralAccounts = () => Promise<AccountRef[] | null>;

/** Accounts this ledger has seen: records, balances (deposits, credits), linked addresses. */
export async function ledgerAccounts(store: BillingLedgerStore): Promise<string[]> {
  const ids = new Set<string>();
  for (const l of await store.usage('account')) ids.add(l.key);
  for (const b of await store.balances()) ids.add(b.account);
  for (const l of await store.links()) ids.add(l.account);
  return [...ids].sort();
}

/** Beneficiaries this ledger has seen, per role: records (miners), registered addresses, credits. */
export async function ledgerBeneficiaries(store: BillingLedgerStore): Promise<Map<Beneficiary, Set<string>>> {
  const out = new Map<Beneficiary, Set<string>>([['miner', new Set()], ['developer', new Set()], ['operator', new Set()], ['charity', new Set()]]);
  for (const a of await store.activity('miner')) out.get('miner')!.add(a.subject);
  for (const k of (await store.addresses()).keys()) {
    const [role, id] = k.split('\u0000') as [Beneficiary, string];
    out.get(role)?.add(id);
  }
  for (const c of await sealedCycles(store)) for (const x of await store.credits(c.id)) out.get(x.role)?.add(x.beneficiary);
  return out;
}

/**
 * An account the command is about, which must exist: among central's accounts (id or name) when
 * central is configured, and the ledger's.
 */
export async function existingAccount(store: BillingLedgerStore, given: string, central: CentralAccounts | undefined): Promise<string> {
  const fromCentral = (await central?.()) ?? null;
  const ledger = (await ledgerAccounts(store)).map((id): AccountRef => ({ id }));
  const known = fromCentral === null ? ledger : [...fromCentral, ...ledger.filter((l) => !fromCentral.some((c) => c.id === l.id))];
  return resolveAccount(given, known, fromCentral === null ? 'in this ledger' : 'at central or in this ledger');
}

/**
 * An account that may be new to this ledger (link-address, credit): with a central, it must be
 * one of central's accounts (id or name); without, one this ledger has seen, or an id shaped like
 * central's (`acc_…`), or anything with `allowNew` (the operator vouches for it).
 */
export async function payingAccount(store: BillingLedgerStore, given: string, central: CentralAccounts | undefined, allowNew: boolean): Promise<string> {
  const fromCentral = (await central?.()) ?? null;
  if (fromCentral !== null) return resolveAccount(given, fromCentral, 'at central');
  const ledger = await ledgerAccounts(store);
  try {
    return resolveAccount(given, ledger.map((id) => ({ id })), 'in this ledger');
  } catch (err) {
    if ((err as CgnError).code !== 'not_found') throw err;
    if (allowNew || CENTRAL_ACCOUNT_ID.test(given)) return given;
    throw new CgnError('not_found', `${(err as Error).message}. "${given}" does not look like an account id (central's are acc_ and 16 characters: cgn account whoami shows yours); log in to central (cgn account login) so names can be looked up, or pass --new-account if this really is a new account's id`);
  }
}

/** A beneficiary id (a miner by any unambiguous prefix of its id). */
export async function beneficiaryId(store: BillingLedgerStore, given: string, role: Beneficiary | undefined, options: { allowUnknownMiner?: boolean } = {}): Promise<string> {
  const known = await ledgerBeneficiaries(store);
  if (role === 'miner' || (role === undefined && /^(0x)?[0-9a-fA-F]+$/.test(given) && !(['developer', 'operator', 'charity'] as const).some((r) => known.get(r)!.has(given)))) {
    return resolveMiner(given, [...known.get('miner')!], 'in this ledger', { allowUnknown: options.allowUnknownMiner === true });
  }
  const ids = role === undefined ? [...known.values()].flatMap((s) => [...s]) : [...known.get(role)!];
  return resolveBeneficiary(given, ids, role ?? 'beneficiary', 'in this ledger');
}
