/**
 * Typed access to a deployed CGN contract set: reads, transactions (each waits for its receipt and
 * returns hash, block and gas), balances and the history of an address. Reverts surface as viem
 * errors carrying the contract's custom error; `revertReason(err)` extracts its name.
 */
import { type Address, type Hash, type Hex, type TransactionReceipt } from 'viem';
import { decodeRevert } from './chain-errors.js';
import { requireWallet, type ChainClients } from './clients.js';
import { cgnTokenAbi, settlementAbi, stakingAbi, validatorElectionAbi } from './generated/index.js';

/** Where a contract set lives. Written by `deployContracts`, read by the CLI (`--contracts FILE`). */
export interface ChainAddresses {
  chainId: number;
  token: Address;
  settlement: Address;
  staking: Address;
  election: Address;
  /** Block the contracts were deployed in: where watchers and history scans start. */
  deployBlock: bigint;
}

export interface TxResult {
  hash: Hash;
  blockNumber: bigint;
  gasUsed: bigint;
}

export interface AnchoredCycle {
  cycleId: bigint;
  payoutRoot: Hex;
  batchRootsHash: Hex;
  total: bigint;
  claimed: bigint;
  anchoredAt: bigint;
  batchCount: number;
}

export interface ClaimInput {
  cycleId: bigint | number;
  amount: bigint;
  proof: readonly Hex[];
}

export interface WalletBalances {
  address: Address;
  /** Tokens held by the address. */
  tokens: bigint;
  /** Net escrow deposits (deposits minus withdrawals). */
  escrow: bigint;
  /** What the address may withdraw from escrow now. */
  withdrawable: bigint;
  stake: bigint;
  unbonding: bigint;
  /** Unix seconds when unbonding stake can be withdrawn (0 if none). */
  unbondingReleaseAt: bigint;
  banned: boolean;
  openTierEligible: boolean;
}

export type HistoryKind = 'deposit' | 'withdrawal' | 'claim' | 'stake' | 'unbond-request' | 'unbonded' | 'slash';

export interface HistoryEntry {
  kind: HistoryKind;
  blockNumber: bigint;
  txHash: Hash;
  logIndex: number;
  amount: bigint;
  cycleId?: bigint;
  evidenceHash?: Hex;
}

/**
 * The name of the custom error (or the revert string) behind a failed call, if any; decoded against
 * every CGN contract's errors, so a token error raised inside a deposit is named too.
 */
export function revertReason(err: unknown): string | undefined {
  return decodeRevert(err)?.name;
}

function toTx(r: TransactionReceipt): TxResult {
  if (r.status !== 'success') throw new Error(`transaction ${r.transactionHash} reverted`);
  return { hash: r.transactionHash, blockNumber: r.blockNumber, gasUsed: r.gasUsed };
}

export class CgnContracts {
  constructor(
    readonly clients: ChainClients,
    readonly addresses: ChainAddresses,
  ) {}

  private get pub() {
    return this.clients.public;
  }

  private async wait(hash: Hash): Promise<TxResult> {
    return toTx(await this.pub.waitForTransactionReceipt({ hash }));
  }

  /** The signing address. */
  get me(): Address {
    return requireWallet(this.clients).account.address;
  }

  // ------------------------------------------------------------------ token

  tokenBalance(address: Address): Promise<bigint> {
    return this.pub.readContract({ address: this.addresses.token, abi: cgnTokenAbi, functionName: 'balanceOf', args: [address] });
  }

  async mint(to: Address, amount: bigint): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(await w.writeContract({ address: this.addresses.token, abi: cgnTokenAbi, functionName: 'mint', args: [to, amount] }));
  }

  async transfer(to: Address, amount: bigint): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(await w.writeContract({ address: this.addresses.token, abi: cgnTokenAbi, functionName: 'transfer', args: [to, amount] }));
  }

  /** Approves `spender` for at least `amount` (no transaction when the allowance suffices). */
  async ensureAllowance(spender: Address, amount: bigint): Promise<TxResult | null> {
    const w = requireWallet(this.clients);
    const current = await this.pub.readContract({ address: this.addresses.token, abi: cgnTokenAbi, functionName: 'allowance', args: [w.account.address, spender] });
    if (current >= amount) return null;
    return this.wait(await w.writeContract({ address: this.addresses.token, abi: cgnTokenAbi, functionName: 'approve', args: [spender, amount] }));
  }

  // ------------------------------------------------------------------ settlement: escrow

  /** Deposits `amount` into escrow for `account` (default: the signer), approving first if needed. */
  async deposit(amount: bigint, account?: Address): Promise<TxResult & { approve: TxResult | null }> {
    const w = requireWallet(this.clients);
    const approve = await this.ensureAllowance(this.addresses.settlement, amount);
    const hash =
      account === undefined || account.toLowerCase() === w.account.address.toLowerCase()
        ? await w.writeContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'deposit', args: [amount] })
        : await w.writeContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'depositFor', args: [account, amount] });
    return { ...(await this.wait(hash)), approve };
  }

  escrowOf(account: Address): Promise<bigint> {
    return this.pub.readContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'escrowOf', args: [account] });
  }

  withdrawableOf(account: Address): Promise<bigint> {
    return this.pub.readContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'withdrawableOf', args: [account] });
  }

  /** Operator (ANCHOR_ROLE): posts an account's unused balance after cycle `cycleId` closed. */
  async setWithdrawable(account: Address, cycleId: bigint | number, amount: bigint): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(
      await w.writeContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'setWithdrawable', args: [account, BigInt(cycleId), amount] }),
    );
  }

  /** The last cycle an allowance was posted for (0: never). */
  withdrawableCycleOf(account: Address): Promise<bigint> {
    return this.pub.readContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'withdrawableCycleOf', args: [account] });
  }

  /** Operator (ANCHOR_ROLE): adds `amount` to the account's allowance, once per (account, anchored cycle). */
  async grantWithdrawable(account: Address, cycleId: bigint | number, amount: bigint): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(
      await w.writeContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'grantWithdrawable', args: [account, BigInt(cycleId), amount] }),
    );
  }

  async withdraw(amount: bigint): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(await w.writeContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'withdraw', args: [amount] }));
  }

  // ------------------------------------------------------------------ settlement: cycles and claims

  /** Raw anchoring transaction (ANCHOR_ROLE). Prefer `anchorClosedCycle`, which is idempotent. */
  async anchorCycle(
    cycleId: bigint | number,
    payoutRoot: Hex,
    batchRoots: readonly Hex[],
    total: bigint,
    payers: readonly Address[] = [],
    debits: readonly bigint[] = [],
  ): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(
      await w.writeContract({
        address: this.addresses.settlement,
        abi: settlementAbi,
        functionName: 'anchorCycle',
        args: [BigInt(cycleId), payoutRoot, batchRoots, total, payers, debits],
      }),
    );
  }

  /** The anchored cycle, or null if `cycleId` is not anchored. */
  async cycleOf(cycleId: bigint | number): Promise<AnchoredCycle | null> {
    const c = await this.pub.readContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'cycleOf', args: [BigInt(cycleId)] });
    if (c.anchoredAt === 0n) return null;
    return {
      cycleId: BigInt(cycleId),
      payoutRoot: c.payoutRoot,
      batchRootsHash: c.batchRootsHash,
      total: c.total,
      claimed: c.claimed,
      anchoredAt: c.anchoredAt,
      batchCount: c.batchCount,
    };
  }

  isClaimed(cycleId: bigint | number, account: Address): Promise<boolean> {
    return this.pub.readContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'isClaimed', args: [BigInt(cycleId), account] });
  }

  async claim(c: ClaimInput): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(
      await w.writeContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'claim', args: [BigInt(c.cycleId), c.amount, c.proof] }),
    );
  }

  /** Claims several cycles in one transaction. */
  async claimMany(claims: readonly ClaimInput[]): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(
      await w.writeContract({
        address: this.addresses.settlement,
        abi: settlementAbi,
        functionName: 'claimMany',
        args: [claims.map((c) => BigInt(c.cycleId)), claims.map((c) => c.amount), claims.map((c) => c.proof)],
      }),
    );
  }

  /**
   * Submits `beneficiary`'s claim(s) on its behalf (one cycle: `claimFor`, several: `claimManyFor`):
   * the signer pays the gas and takes `feeBps` basis points of the amount (at most the contract's
   * MAX_RELAYER_FEE_BPS); the rest goes to the beneficiary.
   */
  async claimFor(beneficiary: Address, claims: readonly ClaimInput[], feeBps = 0): Promise<TxResult> {
    const w = requireWallet(this.clients);
    const [one] = claims;
    const hash =
      claims.length === 1 && one !== undefined
        ? await w.writeContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'claimFor', args: [beneficiary, BigInt(one.cycleId), one.amount, one.proof, feeBps] })
        : await w.writeContract({
            address: this.addresses.settlement,
            abi: settlementAbi,
            functionName: 'claimManyFor',
            args: [beneficiary, claims.map((c) => BigInt(c.cycleId)), claims.map((c) => c.amount), claims.map((c) => c.proof), feeBps],
          });
    return this.wait(hash);
  }

  /** The most a relayer may take from a claim, in basis points. */
  maxRelayerFeeBps(): Promise<number> {
    return this.pub.readContract({ address: this.addresses.settlement, abi: settlementAbi, functionName: 'MAX_RELAYER_FEE_BPS' });
  }

  // ------------------------------------------------------------------ gas (the chain's native coin)

  ethBalance(address: Address): Promise<bigint> {
    return this.pub.getBalance({ address });
  }

  /** Sends `wei` of the native coin to `to`. */
  async sendEth(to: Address, wei: bigint): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(await w.sendTransaction({ to, value: wei }));
  }

  // ------------------------------------------------------------------ staking

  async stake(amount: bigint): Promise<TxResult & { approve: TxResult | null }> {
    const w = requireWallet(this.clients);
    const approve = await this.ensureAllowance(this.addresses.staking, amount);
    return { ...(await this.wait(await w.writeContract({ address: this.addresses.staking, abi: stakingAbi, functionName: 'stake', args: [amount] }))), approve };
  }

  async requestUnbond(amount: bigint): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(await w.writeContract({ address: this.addresses.staking, abi: stakingAbi, functionName: 'requestUnbond', args: [amount] }));
  }

  async withdrawUnbonded(): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(await w.writeContract({ address: this.addresses.staking, abi: stakingAbi, functionName: 'withdrawUnbonded', args: [] }));
  }

  /** SLASHER_ROLE: seizes the staker's whole stake and bans it from the open tier. */
  async slash(staker: Address, evidenceHash: Hex): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(await w.writeContract({ address: this.addresses.staking, abi: stakingAbi, functionName: 'slash', args: [staker, evidenceHash] }));
  }

  isOpenTierEligible(staker: Address): Promise<boolean> {
    return this.pub.readContract({ address: this.addresses.staking, abi: stakingAbi, functionName: 'isOpenTierEligible', args: [staker] });
  }

  // ------------------------------------------------------------------ validator election

  async registerCandidate(): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(await w.writeContract({ address: this.addresses.election, abi: validatorElectionAbi, functionName: 'register', args: [] }));
  }

  /** ORACLE_ROLE: service level in basis points (0..10000). */
  async setServiceLevel(candidate: Address, bps: number): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(
      await w.writeContract({ address: this.addresses.election, abi: validatorElectionAbi, functionName: 'setServiceLevel', args: [candidate, bps] }),
    );
  }

  /** ELECTOR_ROLE: draws the validator set of `epoch` from `seed` (once per epoch). */
  async electEpoch(epoch: bigint | number, seed: Hex): Promise<TxResult> {
    const w = requireWallet(this.clients);
    return this.wait(
      await w.writeContract({ address: this.addresses.election, abi: validatorElectionAbi, functionName: 'electEpoch', args: [BigInt(epoch), seed] }),
    );
  }

  validatorsOf(epoch: bigint | number): Promise<readonly Address[]> {
    return this.pub.readContract({ address: this.addresses.election, abi: validatorElectionAbi, functionName: 'validatorsOf', args: [BigInt(epoch)] });
  }

  // ------------------------------------------------------------------ wallet views

  async balances(address: Address): Promise<WalletBalances> {
    const s = { address: this.addresses.staking, abi: stakingAbi } as const;
    const [tokens, escrow, withdrawable, stake, unbonding, unbondingReleaseAt, banned, openTierEligible] = await Promise.all([
      this.tokenBalance(address),
      this.escrowOf(address),
      this.withdrawableOf(address),
      this.pub.readContract({ ...s, functionName: 'stakeOf', args: [address] }),
      this.pub.readContract({ ...s, functionName: 'unbondingOf', args: [address] }),
      this.pub.readContract({ ...s, functionName: 'unbondingReleaseAt', args: [address] }),
      this.pub.readContract({ ...s, functionName: 'bannedOf', args: [address] }),
      this.pub.readContract({ ...s, functionName: 'isOpenTierEligible', args: [address] }),
    ]);
    return { address, tokens, escrow, withdrawable, stake, unbonding, unbondingReleaseAt: BigInt(unbondingReleaseAt), banned, openTierEligible };
  }

  /** Deposits, withdrawals, claims, stakes, unbonds and slashes of `address`, oldest first. */
  async history(address: Address, opts: { fromBlock?: bigint; toBlock?: bigint } = {}): Promise<HistoryEntry[]> {
    const fromBlock = opts.fromBlock ?? this.addresses.deployBlock;
    const toBlock = opts.toBlock ?? (await this.pub.getBlockNumber({ cacheTime: 0 }));
    const range = { fromBlock, toBlock } as const;
    const st = { address: this.addresses.settlement, abi: settlementAbi, ...range } as const;
    const sk = { address: this.addresses.staking, abi: stakingAbi, ...range } as const;
    const [dep, wd, cl, stk, ur, ub, sl] = await Promise.all([
      this.pub.getContractEvents({ ...st, eventName: 'Deposited', args: { account: address } }),
      this.pub.getContractEvents({ ...st, eventName: 'Withdrawn', args: { account: address } }),
      this.pub.getContractEvents({ ...st, eventName: 'Claimed', args: { account: address } }),
      this.pub.getContractEvents({ ...sk, eventName: 'Staked', args: { staker: address } }),
      this.pub.getContractEvents({ ...sk, eventName: 'UnbondRequested', args: { staker: address } }),
      this.pub.getContractEvents({ ...sk, eventName: 'Unbonded', args: { staker: address } }),
      this.pub.getContractEvents({ ...sk, eventName: 'Slashed', args: { staker: address } }),
    ]);
    const out: HistoryEntry[] = [];
    const base = (l: { blockNumber: bigint; transactionHash: Hash; logIndex: number }) => ({ blockNumber: l.blockNumber, txHash: l.transactionHash, logIndex: l.logIndex });
    for (const l of dep) out.push({ kind: 'deposit', ...base(l), amount: l.args.amount ?? 0n });
    for (const l of wd) out.push({ kind: 'withdrawal', ...base(l), amount: l.args.amount ?? 0n });
    for (const l of cl) out.push({ kind: 'claim', ...base(l), amount: l.args.amount ?? 0n, cycleId: l.args.cycleId ?? 0n });
    for (const l of stk) out.push({ kind: 'stake', ...base(l), amount: l.args.amount ?? 0n });
    for (const l of ur) out.push({ kind: 'unbond-request', ...base(l), amount: l.args.amount ?? 0n });
    for (const l of ub) out.push({ kind: 'unbonded', ...base(l), amount: l.args.amount ?? 0n });
    for (const l of sl) out.push({ kind: 'slash', ...base(l), amount: l.args.amount ?? 0n, evidenceHash: l.args.evidenceHash ?? '0x' });
    out.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
    return out;
  }
}
