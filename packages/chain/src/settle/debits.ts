/**
 * Who pays a cycle on chain. The ledger knows what each account spent in a cycle; the settlement
 * contract holds escrow per address. A cycle's anchor debits each spending account's own linked
 * addresses, never anyone else's, so one account's debt cannot be paid out of another's escrow.
 *
 * Rule: an account's debit is taken from its linked addresses, most free escrow first (ties by
 * address), where an address's free escrow is what the contract holds for it, minus what is
 * promised back (its withdrawal allowance), minus withdrawals the ledger has debited but not yet
 * posted, minus what earlier cycles of the same pass already took. Pure: the settler reads the chain
 * and the ledger, this decides.
 */
import type { EscrowDebit } from '../anchor.js';

export interface AccountDebit {
  account: string;
  tokens: bigint;
}

/** An account whose linked addresses hold less than its debit (or that has none). */
export interface Shortfall {
  account: string;
  needed: bigint;
  /** Free escrow of its linked addresses. */
  available: bigint;
  addresses: readonly string[];
}

export type Allocation = { ok: true; debits: EscrowDebit[] } | { ok: false; short: Shortfall[] };

/**
 * Splits the cycle's account debits over the accounts' addresses. `free` (lowercase address →
 * free escrow) is updated in place on success, so consecutive cycles of one pass see what earlier
 * ones took.
 */
export function allocateDebits(accountDebits: readonly AccountDebit[], linksOf: (account: string) => readonly string[], free: Map<string, bigint>): Allocation {
  const taken = new Map<string, bigint>();
  const short: Shortfall[] = [];
  for (const d of accountDebits) {
    if (d.tokens <= 0n) continue;
    const addresses = linksOf(d.account).map((a) => a.toLowerCase());
    const order = addresses
      .map((address) => ({ address, left: (free.get(address) ?? 0n) - (taken.get(address) ?? 0n) }))
      .filter((a) => a.left > 0n)
      .sort((a, b) => (a.left > b.left ? -1 : a.left < b.left ? 1 : a.address < b.address ? -1 : 1));
    const available = order.reduce((s, a) => s + a.left, 0n);
    if (available < d.tokens) {
      short.push({ account: d.account, needed: d.tokens, available, addresses });
      continue;
    }
    let rest = d.tokens;
    for (const a of order) {
      if (rest === 0n) break;
      const part = a.left < rest ? a.left : rest;
      taken.set(a.address, (taken.get(a.address) ?? 0n) + part);
      rest -= part;
    }
  }
  if (short.length > 0) return { ok: false, short };
  for (const [address, amount] of taken) free.set(address, (free.get(address) ?? 0n) - amount);
  return { ok: true, debits: [...taken].map(([address, amount]) => ({ address, amount })) };
}

export function describeShortfall(short: readonly Shortfall[]): string {
  return short
    .map((s) => `${s.account} owes ${s.needed} but ${s.addresses.length === 0 ? 'has no linked address (cgn ledger link-address)' : `its addresses hold ${s.available} free in escrow (${s.addresses.join(', ')})`}`)
    .join('; ');
}
