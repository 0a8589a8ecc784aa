/**
 * Admission to the `open` tier: a miner that advertises `open` joins the pool only if
 *
 * 1. it was never proven to cheat at this node (by miner key or staking address; `EvidenceStore`);
 * 2. with stake checks on (a chain is configured): it advertises a `payoutAddress` with a
 *    `stakeProof` — that address's EIP-191 signature over `stakeBindingMessage(minerId)` — so it
 *    cannot borrow someone else's stake, and `Staking.isOpenTierEligible(address)` holds (enough
 *    active stake, not banned).
 *
 * A yes is cached for `cacheMs` (a no is asked again at the next connection); `refresh()` re-reads every admitted miner (the node runs it
 * every `refreshMs`) and returns those no longer eligible (unbonded, slashed elsewhere, banned),
 * which the node then drops. Miners advertising `attested` or `dedicated` are not checked here:
 * those tiers have their own admission (attestation, contracts), so stake checks add nothing to
 * their connection or request path.
 */
import { bytesToHex, formatUnits, getAddress, recoverMessageAddress, type Address } from 'viem';
import { stakeBindingMessage, type AdvertiseFrame } from '@cgn/protocol';
import { stakingAbi, type CgnContracts } from '@cgn/chain';
import type { EvidenceStore } from './evidence.js';

export type Admission = { ok: true; address: Address | null } | { ok: false; reason: string };

/** The on-chain questions the gate asks; `CgnContracts` answers them. */
export interface StakeReader {
  isOpenTierEligible(address: Address): Promise<boolean>;
  /** Why an address is not eligible, in words (stake, minimum, ban). */
  whyNot(address: Address): Promise<string>;
}

export function stakeReader(contracts: CgnContracts): StakeReader {
  return {
    isOpenTierEligible: (a) => contracts.isOpenTierEligible(a),
    whyNot: async (a) => {
      const b = await contracts.balances(a);
      if (b.banned) return `its stake address ${a} is banned from the open tier (slashed for wrong work)`;
      const min = await contracts.clients.public.readContract({ address: contracts.addresses.staking, abi: stakingAbi, functionName: 'minOpenTierStake' });
      return `its stake address ${a} has ${formatUnits(b.stake, 18)} tokens staked; the open tier needs at least ${formatUnits(min > 0n ? min : 1n, 18)} (stake with: cgn wallet stake --amount N)`;
    },
  };
}

export class OpenTierGate {
  /** Admitted open-tier miners and their staking addresses. */
  private readonly admitted = new Map<string, Address | null>();
  private readonly cache = new Map<string, { ok: boolean; at: number }>();
  readonly counters = { admitted: 0, refused: 0, dropped: 0 };

  constructor(
    private readonly store: EvidenceStore,
    /** Null: no chain; open-tier miners need no stake (only the local ban list applies). */
    private readonly stakes: StakeReader | null,
    private readonly options: { cacheMs: number; now?: () => number } = { cacheMs: 10_000 },
  ) {}

  get checksStake(): boolean {
    return this.stakes !== null;
  }

  /** The staking address a miner proved at admission (null if none or not admitted). */
  addressOf(minerId: string): Address | null {
    return this.admitted.get(minerId) ?? null;
  }

  /** Decides whether an authenticated miner may serve the `open` tier with this advertisement. */
  async admit(minerId: string, ad: AdvertiseFrame): Promise<Admission> {
    const refuse = (reason: string): Admission => {
      this.counters.refused++;
      this.admitted.delete(minerId);
      return { ok: false, reason: `open tier refused: ${reason}` };
    };
    let address: Address | null = null;
    if (ad.payoutAddress !== undefined && ad.stakeProof !== undefined) {
      let signer: Address;
      try {
        signer = await recoverMessageAddress({ message: stakeBindingMessage(minerId), signature: bytesToHex(ad.stakeProof) });
      } catch {
        return refuse('the stake proof is not a valid signature');
      }
      if (signer.toLowerCase() !== ad.payoutAddress.toLowerCase()) return refuse(`the stake proof was signed by ${signer}, not by ${ad.payoutAddress}`);
      address = getAddress(ad.payoutAddress);
    }
    if (this.store.isBanned(minerId, address)) return refuse('this miner was proven to return wrong results and is banned from the open tier');
    if (this.stakes !== null) {
      if (address === null) {
        return refuse(
          ad.payoutAddress === undefined
            ? `this node requires a staked address: sign one with cgn wallet stake-proof --key KEY --miner-id ${minerId} and start the miner with --payout-address ADDRESS --stake-proof SIG`
            : `the payout address comes without a stake proof (--stake-proof; cgn wallet stake-proof --key KEY --miner-id ${minerId})`,
        );
      }
      if (!(await this.eligible(address, false))) return refuse(await this.stakes.whyNot(address));
    }
    this.admitted.set(minerId, address);
    this.counters.admitted++;
    return { ok: true, address };
  }

  /** The miner left (its tunnel closed). */
  forget(minerId: string): void {
    this.admitted.delete(minerId);
  }

  /** Re-checks every admitted miner; returns those to drop, with the reason. */
  async refresh(): Promise<{ minerId: string; reason: string }[]> {
    const out: { minerId: string; reason: string }[] = [];
    for (const [minerId, address] of [...this.admitted]) {
      let reason: string | null = null;
      if (this.store.isBanned(minerId, address)) reason = 'this miner was proven to return wrong results and is banned from the open tier';
      else if (this.stakes !== null && address !== null && !(await this.eligible(address, true))) reason = await this.stakes.whyNot(address);
      if (reason !== null && this.admitted.get(minerId) === address) {
        this.admitted.delete(minerId);
        this.counters.dropped++;
        out.push({ minerId, reason: `open tier refused: ${reason}` });
      }
    }
    return out;
  }

  private async eligible(address: Address, fresh: boolean): Promise<boolean> {
    const now = (this.options.now ?? Date.now)();
    const key = address.toLowerCase();
    const hit = this.cache.get(key);
    if (!fresh && hit !== undefined && now - hit.at < this.options.cacheMs) return hit.ok;
    const ok = await this.stakes!.isOpenTierEligible(address);
    if (ok) this.cache.set(key, { ok, at: now });
    else this.cache.delete(key);
    return ok;
  }
}
