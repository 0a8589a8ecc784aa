/**
 * The wallet/history view of an address: what it holds and what happened to it, from chain state
 * and the contracts' events. `cgn wallet history` prints it and `cgn wallet serve` answers it at
 * `GET /v1/wallet/{address}`.
 *
 * * State is read at one block (`asOf`), and events are scanned from the contracts' deployment
 *   block up to that same block, so balances and history agree.
 * * Events are fetched in pages of `pageBlocks` blocks (default 10,000; many public endpoints
 *   refuse wider `eth_getLogs` ranges), each page with the address as an indexed topic filter.
 * * History kinds: deposit (into this address's escrow, by it or by someone else), deposit-for
 *   (this address paid into another's escrow), withdrawal, withdrawable (the operator posted an
 *   unused balance), claim (per cycle), stake, unbond-request, unbonded, slash, banned, unbanned,
 *   candidate-registered, candidate-left, service-level; plus the epochs it was elected in.
 */
import type { Address, Hash } from 'viem';
import type { CgnPublicClient } from './clients.js';
import type { ChainAddresses, HistoryEntry, WalletBalances } from './contracts.js';
import { cgnTokenAbi, settlementAbi, stakingAbi, validatorElectionAbi } from './generated/index.js';

export type WalletEventKind =
  | 'deposit'
  | 'deposit-for'
  | 'withdrawal'
  | 'withdrawable'
  | 'claim'
  | 'stake'
  | 'unbond-request'
  | 'unbonded'
  | 'slash'
  | 'banned'
  | 'unbanned'
  | 'candidate-registered'
  | 'candidate-left'
  | 'service-level';

/** A history entry (amount in base units; 0 for events without one), with the wider set of kinds. */
export interface WalletEvent extends Omit<HistoryEntry, 'kind'> {
  kind: WalletEventKind;
  /** deposit: who paid (when not the address itself); deposit-for: whose escrow. */
  counterparty?: Address;
  /** service-level: the new level in basis points. */
  bps?: number;
}

export interface WalletView {
  address: Address;
  chainId: number;
  /** The block state was read at and events were scanned up to. */
  asOf: bigint;
  fromBlock: bigint;
  /** Tokens, escrow, withdrawable, stake, unbonding and ban status at `asOf`. */
  balances: Omit<WalletBalances, 'address'>;
  validator: {
    candidate: boolean;
    /** Service level on chain, basis points. */
    serviceLevel: number;
    /** Election weight now: stake x service level (0 if not an eligible candidate). */
    weight: bigint;
    /** Epochs whose validator set holds the address. */
    electedEpochs: bigint[];
  };
  /** Sums over the history. */
  totals: { deposited: bigint; depositedForOthers: bigint; withdrawn: bigint; claimed: bigint; staked: bigint; unbonded: bigint; slashed: bigint };
  /** Claims, one per cycle, in cycle order. */
  claims: { cycleId: bigint; amount: bigint; blockNumber: bigint; txHash: Hash }[];
  /** Everything, oldest first. */
  history: WalletEvent[];
}

export interface WalletViewOptions {
  /** Scan from this block (default: the deployment block). */
  fromBlock?: bigint;
  /** Read state and scan up to this block (default: the newest). */
  toBlock?: bigint;
  /** Blocks per getLogs request (default 10,000). */
  pageBlocks?: bigint;
}

type Log = { blockNumber: bigint; transactionHash: Hash; logIndex: number };
const at = (l: Log) => ({ blockNumber: l.blockNumber, txHash: l.transactionHash, logIndex: l.logIndex });

export async function walletView(client: CgnPublicClient, addresses: ChainAddresses, address: Address, opts: WalletViewOptions = {}): Promise<WalletView> {
  const asOf = opts.toBlock ?? (await client.getBlockNumber({ cacheTime: 0 }));
  const fromBlock = opts.fromBlock ?? addresses.deployBlock;
  const page = opts.pageBlocks ?? 10_000n;
  if (page <= 0n) throw new RangeError('pageBlocks must be positive');
  const st = { address: addresses.settlement, abi: settlementAbi } as const;
  const sk = { address: addresses.staking, abi: stakingAbi } as const;
  const el = { address: addresses.election, abi: validatorElectionAbi } as const;
  const pin = { blockNumber: asOf } as const;

  const [tokens, escrow, withdrawable, stake, unbonding, releaseAt, banned, openTierEligible, candidate, serviceLevel, weight] = await Promise.all([
    client.readContract({ address: addresses.token, abi: cgnTokenAbi, functionName: 'balanceOf', args: [address], ...pin }),
    client.readContract({ ...st, functionName: 'escrowOf', args: [address], ...pin }),
    client.readContract({ ...st, functionName: 'withdrawableOf', args: [address], ...pin }),
    client.readContract({ ...sk, functionName: 'stakeOf', args: [address], ...pin }),
    client.readContract({ ...sk, functionName: 'unbondingOf', args: [address], ...pin }),
    client.readContract({ ...sk, functionName: 'unbondingReleaseAt', args: [address], ...pin }),
    client.readContract({ ...sk, functionName: 'bannedOf', args: [address], ...pin }),
    client.readContract({ ...sk, functionName: 'isOpenTierEligible', args: [address], ...pin }),
    client.readContract({ ...el, functionName: 'isCandidate', args: [address], ...pin }),
    client.readContract({ ...el, functionName: 'serviceLevelOf', args: [address], ...pin }),
    client.readContract({ ...el, functionName: 'weightOf', args: [address], ...pin }),
  ]);

  const history: WalletEvent[] = [];
  const electedEpochs: bigint[] = [];
  const me = address.toLowerCase();
  for (let from = fromBlock; from <= asOf; from += page) {
    const to = from + page - 1n < asOf ? from + page - 1n : asOf;
    const r = { fromBlock: from, toBlock: to } as const;
    const [dep, depFor, wd, wdable, cl, stk, ur, ub, sl, ban, unban, reg, left, lvl, elected] = await Promise.all([
      client.getContractEvents({ ...st, ...r, eventName: 'Deposited', args: { account: address } }),
      client.getContractEvents({ ...st, ...r, eventName: 'Deposited', args: { from: address } }),
      client.getContractEvents({ ...st, ...r, eventName: 'Withdrawn', args: { account: address } }),
      client.getContractEvents({ ...st, ...r, eventName: 'WithdrawableSet', args: { account: address } }),
      client.getContractEvents({ ...st, ...r, eventName: 'Claimed', args: { account: address } }),
      client.getContractEvents({ ...sk, ...r, eventName: 'Staked', args: { staker: address } }),
      client.getContractEvents({ ...sk, ...r, eventName: 'UnbondRequested', args: { staker: address } }),
      client.getContractEvents({ ...sk, ...r, eventName: 'Unbonded', args: { staker: address } }),
      client.getContractEvents({ ...sk, ...r, eventName: 'Slashed', args: { staker: address } }),
      client.getContractEvents({ ...sk, ...r, eventName: 'Banned', args: { staker: address } }),
      client.getContractEvents({ ...sk, ...r, eventName: 'Unbanned', args: { staker: address } }),
      client.getContractEvents({ ...el, ...r, eventName: 'CandidateRegistered', args: { candidate: address } }),
      client.getContractEvents({ ...el, ...r, eventName: 'CandidateLeft', args: { candidate: address } }),
      client.getContractEvents({ ...el, ...r, eventName: 'ServiceLevelSet', args: { candidate: address } }),
      // The set is not indexed: every election of the range, filtered here.
      client.getContractEvents({ ...el, ...r, eventName: 'EpochElected' }),
    ]);
    for (const l of dep) {
      const from_ = l.args.from;
      history.push({ kind: 'deposit', ...at(l), amount: l.args.amount ?? 0n, ...(from_ !== undefined && from_.toLowerCase() !== me ? { counterparty: from_ } : {}) });
    }
    for (const l of depFor) {
      if (l.args.account?.toLowerCase() === me) continue; // a deposit into its own escrow is listed above
      history.push({ kind: 'deposit-for', ...at(l), amount: l.args.amount ?? 0n, ...(l.args.account !== undefined ? { counterparty: l.args.account } : {}) });
    }
    for (const l of wd) history.push({ kind: 'withdrawal', ...at(l), amount: l.args.amount ?? 0n });
    for (const l of wdable) history.push({ kind: 'withdrawable', ...at(l), amount: l.args.amount ?? 0n, cycleId: l.args.cycleId ?? 0n });
    for (const l of cl) history.push({ kind: 'claim', ...at(l), amount: l.args.amount ?? 0n, cycleId: l.args.cycleId ?? 0n });
    for (const l of stk) history.push({ kind: 'stake', ...at(l), amount: l.args.amount ?? 0n });
    for (const l of ur) history.push({ kind: 'unbond-request', ...at(l), amount: l.args.amount ?? 0n });
    for (const l of ub) history.push({ kind: 'unbonded', ...at(l), amount: l.args.amount ?? 0n });
    for (const l of sl) history.push({ kind: 'slash', ...at(l), amount: l.args.amount ?? 0n, evidenceHash: l.args.evidenceHash ?? '0x' });
    for (const l of ban) history.push({ kind: 'banned', ...at(l), amount: 0n, evidenceHash: l.args.evidenceHash ?? '0x' });
    for (const l of unban) history.push({ kind: 'unbanned', ...at(l), amount: 0n });
    for (const l of reg) history.push({ kind: 'candidate-registered', ...at(l), amount: l.args.stake ?? 0n });
    for (const l of left) history.push({ kind: 'candidate-left', ...at(l), amount: 0n });
    for (const l of lvl) history.push({ kind: 'service-level', ...at(l), amount: 0n, bps: l.args.bps ?? 0 });
    for (const l of elected) if (l.args.validators?.some((v) => v.toLowerCase() === me) && l.args.epoch !== undefined) electedEpochs.push(l.args.epoch);
  }
  history.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
  electedEpochs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const sum = (k: WalletEventKind) => history.filter((e) => e.kind === k).reduce((s, e) => s + e.amount, 0n);
  const claims = history
    .filter((e) => e.kind === 'claim')
    .map((e) => ({ cycleId: e.cycleId!, amount: e.amount, blockNumber: e.blockNumber, txHash: e.txHash }))
    .sort((a, b) => (a.cycleId < b.cycleId ? -1 : a.cycleId > b.cycleId ? 1 : 0));
  return {
    address,
    chainId: addresses.chainId,
    asOf,
    fromBlock,
    balances: { tokens, escrow, withdrawable, stake, unbonding, unbondingReleaseAt: BigInt(releaseAt), banned, openTierEligible },
    validator: { candidate, serviceLevel, weight, electedEpochs },
    totals: {
      deposited: sum('deposit'),
      depositedForOthers: sum('deposit-for'),
      withdrawn: sum('withdrawal'),
      claimed: sum('claim'),
      staked: sum('stake'),
      unbonded: sum('unbonded'),
      slashed: sum('slash'),
    },
    claims,
    history,
  };
}

/** JSON form: bigints as decimal strings. */
export function walletViewJson(v: WalletView): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2);
}
