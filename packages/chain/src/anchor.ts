/**
 * The bridge from a closed ledger cycle to its anchoring transaction.
 *
 * Idempotent and crash-safe without local state: the chain is the record. Before every attempt the
 * settlement contract is read; a cycle already anchored with the same data is success, with other
 * data an `AnchorConflictError` (never a second anchor: the contract refuses it anyway). Transient
 * failures (RPC down, timeouts, nonce races) are retried with exponential backoff; a sent transaction
 * that is slow to mine is waited for, not re-sent. Contract refusals other than "already anchored"
 * (missing role, a payer's escrow short of its debit, bad root) are permanent and thrown as `AnchorRefusedError`: the
 * cycle stays pending in the ledger and a later `anchorPending` run picks it up again.
 */
import { concat, getAddress, isAddress, keccak256, type Address, type Hash, type Hex } from 'viem';
import { requireWallet } from './clients.js';
import { revertReason, type AnchoredCycle, type CgnContracts, type TxResult } from './contracts.js';
import { settlementAbi } from './generated/index.js';

/**
 * A closed, sealed billing cycle as the ledger hands it over. From `@cgn/ledger`'s
 * `CycleSummary` + `BatchInfo[]`: `{ cycleId: s.id, payoutRoot: s.payoutRoot, batchRoots:
 * batches.map(b => b.root), total: s.tokens }`.
 */
export interface ClosedCycle {
  cycleId: number | bigint;
  /** StandardMerkleTree root (0x + 64 hex) of the (address, uint256) payout leaves; null when nothing is owed. */
  payoutRoot: string | null;
  /** The cycle's batch roots in batch order, 32 bytes each, hex with or without 0x. May be empty. */
  batchRoots: readonly string[];
  /** Sum of the payout amounts (the ledger's cycle `tokens`), in token base units. */
  total: bigint;
  /**
   * Who pays the cycle: escrow addresses and the tokens taken from each (in any order, each
   * address once). They add up to `total`; the contract refuses a debit above what an address
   * holds (`Overdrawn`), so no cycle is paid out of another account's escrow.
   */
  debits: readonly EscrowDebit[];
}

export interface EscrowDebit {
  address: string;
  amount: bigint;
}

export type AnchorOutcome =
  | { status: 'anchored'; cycleId: bigint; tx: TxResult; attempts: number }
  | { status: 'already-anchored'; cycleId: bigint; cycle: AnchoredCycle; attempts: number };

export class AnchorConflictError extends Error {
  constructor(
    readonly cycleId: bigint,
    readonly onChain: AnchoredCycle,
  ) {
    super(`cycle ${cycleId} is already anchored with different data (root ${onChain.payoutRoot}, total ${onChain.total})`);
    this.name = 'AnchorConflictError';
  }
}

export class AnchorRefusedError extends Error {
  constructor(
    readonly cycleId: bigint,
    readonly reason: string,
    options?: { cause?: unknown; detail?: string },
  ) {
    super(`anchoring cycle ${cycleId} refused by the contract: ${reason}${options?.detail ? ` (${options.detail})` : ''}`, options);
    this.name = 'AnchorRefusedError';
  }
}

export interface AnchorOptions {
  /** Attempts before giving up (default 6). */
  attempts?: number;
  /** First backoff (default 500 ms), doubled per attempt up to `maxBackoffMs` (default 15 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How long to wait for a sent transaction before re-checking the chain (default 60 s). */
  receiptTimeoutMs?: number;
  onRetry?: (err: unknown, attempt: number) => void;
  signal?: AbortSignal;
}

const BYTES32 = /^(0x)?[0-9a-fA-F]{64}$/;
const ZERO32: Hex = `0x${'0'.repeat(64)}`;

function bytes32(s: string, what: string): Hex {
  if (!BYTES32.test(s)) throw new TypeError(`${what} must be 32 bytes of hex, got ${JSON.stringify(s)}`);
  return (s.startsWith('0x') ? s.toLowerCase() : `0x${s.toLowerCase()}`) as Hex;
}

export interface AnchorArgs {
  cycleId: bigint;
  payoutRoot: Hex;
  batchRoots: Hex[];
  batchRootsHash: Hex;
  total: bigint;
  /** Strictly ascending, as the contract wants them. */
  payers: Address[];
  debits: bigint[];
}

/** Validates and normalises a closed cycle into the contract's arguments. */
export function anchorArgs(c: ClosedCycle): AnchorArgs {
  const cycleId = BigInt(c.cycleId);
  if (cycleId < 0n || cycleId >= 1n << 64n) throw new RangeError(`cycle id ${cycleId} does not fit uint64`);
  if (c.total < 0n) throw new RangeError('total must not be negative');
  const payoutRoot = c.payoutRoot === null ? ZERO32 : bytes32(c.payoutRoot, 'payoutRoot');
  if ((payoutRoot === ZERO32) !== (c.total === 0n)) throw new TypeError('payoutRoot must be null exactly when total is 0');
  const batchRoots = c.batchRoots.map((r, i) => bytes32(r, `batchRoots[${i}]`));
  const batchRootsHash = keccak256(batchRoots.length === 0 ? '0x' : concat(batchRoots));
  const debits = c.debits
    .map((d) => {
      if (!isAddress(d.address)) throw new TypeError(`debit address ${JSON.stringify(d.address)} is not an EVM address`);
      if (d.amount <= 0n) throw new RangeError(`the debit of ${d.address} must be positive`);
      return { address: getAddress(d.address), key: BigInt(d.address), amount: d.amount };
    })
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (let i = 1; i < debits.length; i++) if (debits[i]!.key === debits[i - 1]!.key) throw new TypeError(`${debits[i]!.address} is debited twice`);
  const debited = debits.reduce((a, d) => a + d.amount, 0n);
  if (debited !== c.total) throw new RangeError(`the debits (${debited}) must add up to the cycle total (${c.total})`);
  return { cycleId, payoutRoot, batchRoots, batchRootsHash, total: c.total, payers: debits.map((d) => d.address), debits: debits.map((d) => d.amount) };
}

function sameCycle(a: AnchorArgs, c: AnchoredCycle): boolean {
  return c.payoutRoot.toLowerCase() === a.payoutRoot && c.batchRootsHash.toLowerCase() === a.batchRootsHash && c.total === a.total && c.batchCount === a.batchRoots.length;
}

const TRANSIENT_REVERTS = new Set(['AlreadyAnchored']);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
}

/** Anchors one closed cycle, exactly once, retrying transient failures. */
export async function anchorClosedCycle(contracts: CgnContracts, cycle: ClosedCycle, opts: AnchorOptions = {}): Promise<AnchorOutcome> {
  const args = anchorArgs(cycle);
  const w = requireWallet(contracts.clients);
  const pub = contracts.clients.public;
  const maxAttempts = opts.attempts ?? 6;
  let backoff = opts.backoffMs ?? 500;
  let pending: Hash | null = null;
  let lastErr: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      if (pending) {
        // A transaction is out: wait for it rather than sending a second one.
        const r = await pub.waitForTransactionReceipt({ hash: pending, timeout: opts.receiptTimeoutMs ?? 60_000 });
        if (r.status === 'success') return { status: 'anchored', cycleId: args.cycleId, tx: { hash: r.transactionHash, blockNumber: r.blockNumber, gasUsed: r.gasUsed }, attempts: attempt };
        pending = null; // reverted (e.g. a concurrent anchor won): re-check below
      }
      const onChain = await contracts.cycleOf(args.cycleId);
      if (onChain) {
        if (!sameCycle(args, onChain)) throw new AnchorConflictError(args.cycleId, onChain);
        return { status: 'already-anchored', cycleId: args.cycleId, cycle: onChain, attempts: attempt };
      }
      try {
        pending = await w.writeContract({
          address: contracts.addresses.settlement,
          abi: settlementAbi,
          functionName: 'anchorCycle',
          args: [args.cycleId, args.payoutRoot, args.batchRoots, args.total, args.payers, args.debits],
        });
      } catch (err) {
        const reason = revertReason(err);
        if (reason !== undefined && !TRANSIENT_REVERTS.has(reason)) throw new AnchorRefusedError(args.cycleId, reason, { cause: err });
        throw err;
      }
      const r = await pub.waitForTransactionReceipt({ hash: pending, timeout: opts.receiptTimeoutMs ?? 60_000 });
      if (r.status === 'success') return { status: 'anchored', cycleId: args.cycleId, tx: { hash: r.transactionHash, blockNumber: r.blockNumber, gasUsed: r.gasUsed }, attempts: attempt };
      pending = null;
      throw new Error(`anchoring transaction ${r.transactionHash} reverted`);
    } catch (err) {
      if (err instanceof AnchorConflictError || err instanceof AnchorRefusedError) throw err;
      if (opts.signal?.aborted) throw err;
      lastErr = err;
      if (attempt === maxAttempts) break;
      opts.onRetry?.(err, attempt);
      await sleep(backoff, opts.signal);
      backoff = Math.min(backoff * 2, opts.maxBackoffMs ?? 15_000);
    }
  }
  throw new Error(`anchoring cycle ${args.cycleId} failed after ${maxAttempts} attempts: ${(lastErr as Error)?.message ?? String(lastErr)}`, { cause: lastErr });
}

export interface PendingResult {
  done: AnchorOutcome[];
  /** The first cycle that could not be anchored (later ones were not tried, to keep order). */
  failed?: { cycleId: bigint; error: unknown };
}

/**
 * Anchors closed cycles in id order, stopping at the first failure so that cycles are anchored in
 * order. Feed it every closed-but-unanchored cycle from the ledger on each tick (and at start-up):
 * cycles already on chain come back as `already-anchored`, so the ledger may mark them done.
 */
export async function anchorPending(contracts: CgnContracts, cycles: readonly ClosedCycle[], opts: AnchorOptions = {}): Promise<PendingResult> {
  const sorted = [...cycles].sort((a, b) => (BigInt(a.cycleId) < BigInt(b.cycleId) ? -1 : BigInt(a.cycleId) > BigInt(b.cycleId) ? 1 : 0));
  const done: AnchorOutcome[] = [];
  for (const c of sorted) {
    try {
      done.push(await anchorClosedCycle(contracts, c, opts));
    } catch (error) {
      return { done, failed: { cycleId: BigInt(c.cycleId), error } };
    }
  }
  return { done };
}
