/**
 * Gasless claims: after cycles are anchored, the settler submits the claims of beneficiaries whose
 * address cannot pay for a claim's gas (`Settlement.claimFor` / `claimManyFor`: the tokens go to
 * the beneficiary, less an optional relayer fee the contract caps at 1%). An address that can
 * pay is left to claim for itself.
 *
 * Idempotent: a leaf already claimed (by its owner, another relayer or an earlier pass) is
 * skipped, and a claim that lands meanwhile (the contract refuses it as `AlreadyClaimed`) is
 * re-read and the rest sent again. A cycle is looked at until every leaf of it is claimed or left
 * to an owner with gas; then it is not read again in this process.
 */
import { getAddress, type Address, type Hash, type Hex } from 'viem';
import type { BillingLedgerStore } from '@cgn/ledger';
import { revertReason, type CgnContracts, type ClaimInput } from '../contracts.js';

/** Gas of a one-cycle claimFor paying a new balance, rounded up (measured: ~120k; claimManyFor adds ~25k a cycle). */
export const CLAIM_GAS = 150_000n;

export interface RelayOptions {
  /** Basis points of each claim the relayer keeps (default 0; the contract refuses more than its cap). */
  feeBps?: number;
}

export interface Relayed {
  address: Address;
  cycles: number[];
  /** Base units claimed (the beneficiary got `amount - fee`). */
  amount: bigint;
  fee: bigint;
  tx: Hash;
  gasUsed: bigint;
}

interface Owed extends ClaimInput {
  cycleId: bigint;
  proof: Hex[];
}

export class ClaimRelay {
  /** Cycles whose every leaf is claimed or left to an owner that has gas. */
  private readonly settled = new Set<number>();

  constructor(
    private readonly store: BillingLedgerStore,
    private readonly contracts: CgnContracts,
    private readonly opts: RelayOptions = {},
  ) {}

  /**
   * Claims for every gasless beneficiary of the anchored cycles not yet settled: what was sent, and
   * the first failure (its cycles are looked at again next pass; the others are not held up).
   */
  async pass(): Promise<{ relayed: Relayed[]; error?: unknown }> {
    const cycles = (await this.store.anchors()).map((a) => a.cycle).filter((c) => !this.settled.has(c)).sort((a, b) => a - b);
    if (cycles.length === 0) return { relayed: [] };
    // "No gas" is less than one claim costs now, so dust does not count as gas.
    const floor = CLAIM_GAS * (await this.contracts.clients.public.getGasPrice());
    const hasGas = new Map<string, boolean>();
    const owed = new Map<Address, Owed[]>();
    const cyclesOf = new Map<Address, number[]>();
    for (const cycle of cycles) {
      for (const leaf of await this.store.payouts(cycle)) {
        const address = getAddress(leaf.address);
        if (leaf.amount === 0n || (await this.contracts.isClaimed(cycle, address))) continue;
        if (!hasGas.has(address)) hasGas.set(address, (await this.contracts.ethBalance(address)) >= floor);
        if (hasGas.get(address)) continue;
        owed.set(address, [...(owed.get(address) ?? []), { cycleId: BigInt(cycle), amount: leaf.amount, proof: leaf.proof as Hex[] }]);
        cyclesOf.set(address, [...(cyclesOf.get(address) ?? []), cycle]);
      }
    }
    const out: Relayed[] = [];
    const failed = new Set<number>();
    let firstError: unknown;
    for (const [address, claims] of owed) {
      try {
        const r = await this.send(address, claims);
        if (r !== null) out.push(r);
      } catch (err) {
        for (const c of cyclesOf.get(address) ?? []) failed.add(c);
        firstError ??= err;
      }
    }
    for (const c of cycles) if (!failed.has(c)) this.settled.add(c);
    return firstError === undefined ? { relayed: out } : { relayed: out, error: firstError };
  }

  /** One transaction for all of `address`'s unclaimed cycles; claims found made meanwhile are dropped. */
  private async send(address: Address, claims: Owed[]): Promise<Relayed | null> {
    const feeBps = this.opts.feeBps ?? 0;
    for (let attempt = 0; ; attempt++) {
      try {
        const tx = await this.contracts.claimFor(address, claims, feeBps);
        const amount = claims.reduce((a, c) => a + c.amount, 0n);
        return { address, cycles: claims.map((c) => Number(c.cycleId)), amount, fee: (amount * BigInt(feeBps)) / 10_000n, tx: tx.hash, gasUsed: tx.gasUsed };
      } catch (err) {
        if (revertReason(err) !== 'AlreadyClaimed' || attempt > 0) throw err;
        const open: Owed[] = [];
        for (const c of claims) if (!(await this.contracts.isClaimed(c.cycleId, address))) open.push(c);
        if (open.length === 0) return null;
        claims = open;
      }
    }
  }
}
