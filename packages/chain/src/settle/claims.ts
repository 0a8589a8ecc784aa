/**
 * What an address can claim: its payout leaves (amount and proof) in the ledger's sealed cycles
 * that are anchored on chain and not yet claimed by it.
 */
import type { Address, Hex } from 'viem';
import type { BillingLedgerStore } from '@cgn/ledger';
import type { ClaimInput, CgnContracts } from '../contracts.js';

export interface Claimable extends ClaimInput {
  cycleId: bigint;
  proof: Hex[];
}

export async function claimableFromLedger(store: BillingLedgerStore, contracts: CgnContracts, address: Address): Promise<Claimable[]> {
  const me = address.toLowerCase();
  const out: Claimable[] = [];
  for (const c of await store.cycles()) {
    if (c.sealedAt === null || !('payoutRoot' in c) || c.payoutRoot === null) continue;
    const leaf = (await store.payouts(c.id)).find((p) => p.address.toLowerCase() === me);
    if (leaf === undefined) continue;
    const onChain = await contracts.cycleOf(c.id);
    if (onChain === null || onChain.payoutRoot.toLowerCase() !== c.payoutRoot.toLowerCase()) continue; // not anchored (yet), or another ledger's cycle
    if (await contracts.isClaimed(c.id, address)) continue;
    out.push({ cycleId: BigInt(c.id), amount: leaf.amount, proof: leaf.proof as Hex[] });
  }
  return out;
}
