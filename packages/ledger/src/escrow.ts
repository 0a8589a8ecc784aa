/**
 * The ledger's side of on-chain escrow, store-independent: the types both stores return and the
 * checks they share.
 *
 * * **Links**: an account pays from one or more EVM addresses. A deposit into the settlement
 *   contract for a linked address credits that account.
 * * **Chain deposits**: each confirmed `Deposited` event is recorded once under its reference
 *   (`txHash:logIndex`) in the same transaction as the credit, so a replayed event (watcher
 *   restart, reorg rewind, crash between credit and cursor) never credits twice. A deposit for an
 *   address nobody linked yet is kept and credited when the address is linked.
 * * **Withdrawals**: an account asks to take unused balance back to one of its addresses. The
 *   ledger debits it at once (it can no longer be spent), the settler posts it on chain for the
 *   next anchored cycle (`grantWithdrawable(address, cycle, amount)`, once per address and cycle)
 *   and the address withdraws it with `cgn wallet withdraw`.
 * * **Anchors**: which sealed cycles are anchored on chain, and by which transaction.
 */
import { CgnError } from '@cgn/protocol';
import { isAddress } from './billing.js';
import type { Balance } from './store.js';

export interface AddressLink {
  account: string;
  /** Lowercase 0x address. */
  address: string;
  linkedAt: number;
}

/** A confirmed `Deposited` event, as the deposit bridge hands it over. */
export interface ChainDeposit {
  /** `txHash:logIndex`: unique per event on the canonical chain. */
  ref: string;
  /** The escrow account credited on chain (the event's `account`). */
  address: string;
  amount: bigint;
  block: bigint;
}

export type DepositOutcome =
  /** Credited to the account that owns the address. */
  | { status: 'credited'; account: string; balance: Balance }
  /** Recorded; credited when someone links the address (`linkAddress`). */
  | { status: 'unlinked' }
  /** This reference was recorded before: nothing changed. */
  | { status: 'duplicate' };

export interface Withdrawal {
  id: number;
  account: string;
  address: string;
  amount: bigint;
  requestedAt: number;
  /** The anchored cycle it is (to be) posted for; null until the settler picks one. */
  cycle: number | null;
  /** When the grant transaction was confirmed, and its hash; null while pending. */
  postedAt: number | null;
  tx: string | null;
}

export interface AnchorMark {
  cycle: number;
  /** The anchoring transaction; null when the cycle was found already anchored on chain. */
  tx: string | null;
  anchoredAt: number;
}

export function checkAccount(account: unknown): asserts account is string {
  if (typeof account !== 'string' || account.length === 0 || account.length > 256) throw new CgnError('bad_request', 'account must be a non-empty string (at most 256 characters)');
}

/** The address, lowercased; a `bad_request` CgnError when it is not 0x + 40 hex digits. */
export function normAddress(address: unknown, what = 'address'): string {
  if (!isAddress(address)) throw new CgnError('bad_request', `${what} ${JSON.stringify(address)} is not an EVM address (0x + 40 hex digits)`);
  return address.toLowerCase();
}

export function checkChainDeposit(d: ChainDeposit): { ref: string; address: string } {
  if (typeof d.ref !== 'string' || !/^0x[0-9a-fA-F]{64}:\d+$/.test(d.ref)) throw new CgnError('bad_request', `deposit reference ${JSON.stringify(d.ref)} must be "txHash:logIndex"`);
  if (typeof d.amount !== 'bigint' || d.amount <= 0n) throw new CgnError('bad_request', 'a deposit must be a positive whole number of token base units');
  if (typeof d.block !== 'bigint' || d.block < 0n) throw new CgnError('bad_request', 'deposit block must be a non-negative bigint');
  return { ref: d.ref.toLowerCase(), address: normAddress(d.address, 'deposit address') };
}

/**
 * How much of a withdrawal request can be taken: `amount` (or everything with 'all') must be
 * covered both by the account's available balance and by what the address has in escrow (net of
 * earlier withdrawals), since the contract only lets an address withdraw its own escrow.
 */
export function withdrawalAmount(account: string, address: string, amount: bigint | 'all', available: bigint, addressNet: bigint): bigint {
  const cap = available < addressNet ? available : addressNet;
  const want = amount === 'all' ? cap : amount;
  if (amount !== 'all' && (typeof amount !== 'bigint' || amount <= 0n)) throw new CgnError('bad_request', 'a withdrawal must be a positive whole number of token base units');
  if (want <= 0n) throw new CgnError('payment_required', `account ${account} has nothing to withdraw to ${address} (available ${available}, escrow of the address ${addressNet})`);
  if (want > available) throw new CgnError('payment_required', `account ${account} has ${available} tokens available, cannot withdraw ${want}`);
  if (want > addressNet) throw new CgnError('conflict', `${address} has ${addressNet} tokens in escrow for account ${account}; cannot withdraw ${want} to it`);
  return want;
}

/**
 * Whether an address may be unlinked from an account (null) or why not. An address whose escrow
 * deposits were credited to the account and not withdrawn backs that credit: the settler takes
 * the account's debits out of its linked addresses' escrow, so unlinking it would leave spent or
 * spendable balance with no payer on chain. Withdraw what is left first; an address whose deposits
 * paid for work stays the account's payer of record.
 */
export function unlinkProblem(account: string, address: string, linkedTo: string | null, deposited: bigint, withdrawn: bigint, links: readonly string[]): string | null {
  if (linkedTo === null) return `${address} is not linked to any account${links.length > 0 ? `; ${account} has ${links.join(', ')}` : ''}`;
  if (linkedTo !== account) return `${address} is linked to account ${linkedTo}, not ${account}`;
  const net = deposited - withdrawn;
  if (net > 0n) {
    return `${address} deposited ${net} base units into escrow that were credited to ${account} and not withdrawn; they back its balance (and the work it paid for), so the link stays. ` +
      `Withdraw what is left first (cgn ledger withdraw --account ${account} --address ${address} --amount all, then cgn wallet withdraw); an address whose deposits paid for work stays linked`;
  }
  return null;
}

