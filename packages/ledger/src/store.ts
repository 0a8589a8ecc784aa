/**
 * The contract every ledger store meets (SQLite and PostgreSQL). Methods may answer
 * synchronously (embedded stores) or with a promise (networked ones); callers `await` them.
 * One shared test suite (`test-fixtures/store-suite.ts`) runs against every adapter.
 *
 * * `LedgerStore`: the append path the `GroupCommitWriter` needs.
 * * `BillingLedgerStore`: everything else — cycles, proofs, balances, addresses, idempotency,
 *   reports — which both stores implement.
 */
import type { BatchInfo, Credit, CycleInfo, CycleSummary, Debit, HeldCredit, Payout, RecordProof } from './billing.js';
import type { ChainVerification, RowBilling } from './chain.js';
import type { AddressLink, AnchorMark, ChainDeposit, DepositOutcome, Withdrawal } from './escrow.js';
import type { IdempotencyBegin, IdempotencyBeginArgs, StoredResponse } from './idempotency.js';
import type { TokenRate } from './pricing/price.js';
import type { Beneficiary } from './pricing/split.js';
import type { CloserClaim, CycleCloser } from './cycle-closer.js';
import type { Microtransaction } from './record.js';
import type { ActivityFilter, ActivityLine, ActivitySubject } from './reputation.js';

export type MaybePromise<T> = T | Promise<T>;

/** What an append did. */
export interface AppendResult {
  /** Records written as new rows. */
  inserted: number;
  /**
   * Work ids of records that were already in the ledger (or earlier in the same batch) and were
   * ignored: the first record of a work id stands, nothing is billed twice.
   */
  duplicates: readonly string[];
  /**
   * Records refused because their charge would take the account's spending past its funds
   * (only with `refuseOverdraft`); nothing of them was written.
   */
  refused?: readonly OverdraftRefusal[];
}

/** A record the ledger would not write: its account could not pay for it. */
export interface OverdraftRefusal {
  workId: string;
  account: string;
  /** Tokens the record would have charged. */
  tokens: bigint;
  /** Tokens the account had left (deposited - spent, before this record). */
  available: bigint;
}

export interface AppendOptions {
  /**
   * Refuse (and list in `refused`) every priced record whose charge would take its account's
   * spending past what it deposited; the rest of the batch is written. Default false: every
   * record is written (an account's balance may go negative), for ledgers that do not hold funds.
   */
  refuseOverdraft?: boolean;
}

/**
 * How hard a commit tries to survive a crash.
 * * `normal`: survives the process being killed (SIGKILL, crash); an OS crash or power loss may
 *   lose the last few committed transactions (never corrupts the ledger).
 * * `full`: survives power loss too; every commit waits for the disk (fsync), so it is slower.
 */
export type Durability = 'normal' | 'full';

export interface LedgerStore {
  /**
   * Appends the records in one transaction, in order, extending each node's hash chain: either
   * all new records are committed or none (the call throws). Records whose work id is already
   * present are ignored and listed in the result; with `refuseOverdraft`, records an account
   * cannot pay for are refused and listed. Throws a `bad_request` CgnError, writing nothing,
   * when any record is malformed.
   */
  appendBatch(records: readonly Microtransaction[], options?: AppendOptions): MaybePromise<AppendResult>;
  /** Number of records (rows). */
  count(): MaybePromise<number>;
  /** The record of a work id, as first appended. */
  get(workId: string): MaybePromise<Microtransaction | undefined>;
  /**
   * Recomputes every node's chain from the stored rows: every row's hash covers its contents and
   * links to the node's previous row, and the stored heads are the last rows. Reports the first
   * row that does not.
   */
  verifyChain(): MaybePromise<ChainVerification>;
  /** Releases the store. Idempotent; other calls fail afterwards. */
  close(): MaybePromise<void>;
}

/** A stored row: the record plus what the store fixed when appending it. */
export interface LedgerRow {
  seq: number;
  format: number;
  prevHash: Buffer;
  hash: Buffer;
  record: Microtransaction;
  /** Cycle and charge; null for format-1 rows (written before pricing; they belong to cycle 1). */
  billing: RowBilling | null;
}

export interface CloseCycleOptions {
  /** Close time, epoch ms (default now). */
  at?: number;
  /** Rate of the cycle that opens (default: the closing cycle's rate). */
  nextRate?: TokenRate;
  /** Where `nextRate` came from and when it was read, recorded on the cycle that opens. */
  nextRateSource?: { source: string; fetchedAt: number };
  /** Records per sealed batch (default 4096). */
  batchSize?: number;
  /**
   * Called while the closing cycle's records are read (the long part of a close), with how many
   * of them were read so far and how many there are: for a progress bar.
   */
  onProgress?: (done: number, total: number) => void;
}

export type UsageGroup = 'dservice' | 'endUser' | 'day' | 'account' | 'tier';

export interface UsageFilter {
  account?: string;
  dservice?: string;
  /** Only records of this cycle. */
  cycle?: number;
  /**
   * Only records of this cycle and later, read from the cycle's first record on (a range of the
   * record order's key), so a report of the last few cycles costs their records, not the ledger's.
   */
  fromCycle?: number;
  /** receivedAt >= from (epoch ms) */
  from?: number;
  /** receivedAt < to (epoch ms) */
  to?: number;
}

export interface UsageLine {
  /** The group's value (a day is `YYYY-MM-DD`, UTC; a missing end user is `-`). */
  key: string;
  records: number;
  cpuUs: number;
  bytesIn: number;
  bytesOut: number;
  priceMicros: bigint;
  tokens: bigint;
}

export type UsageBucket = 'day' | 'cycle';

export interface UsageBucketLine extends UsageLine {
  /** `YYYY-MM-DD` (UTC) for days, the cycle id in decimal for cycles. */
  bucket: string;
}

export interface Balance {
  account: string;
  /** Tokens credited (deposits), net of withdrawals the account asked for. */
  deposited: bigint;
  /** Tokens charged by recorded work. */
  spent: bigint;
  /** deposited - spent; negative when work ran over (it is never refused after it ran). */
  available: bigint;
}

/** A credit to an account's balance: a chain deposit (`memo` "chain deposit <ref>") or a `credit`. */
export interface DepositEntry {
  amount: bigint;
  memo: string | null;
  /** When it was credited, epoch ms. */
  at: number;
}

/** `deposits(account, { limit })`'s bound. */
export function depositLimit(limit: number | undefined): number {
  return limit === undefined ? 50 : Math.max(1, Math.min(1000, Math.floor(limit)));
}

export interface BillingLedgerStore extends LedgerStore {
  /** The stored row of a work id, with its seq, format, hashes and charge. */
  getRow(workId: string): MaybePromise<LedgerRow | undefined>;

  /** The open cycle (new records join it). */
  currentCycle(): MaybePromise<CycleInfo>;
  /** Sets the open cycle's token rate; refused once it holds priced records. */
  setRate(rate: TokenRate, from?: { source: string; fetchedAt: number }): MaybePromise<CycleInfo>;
  /**
   * Closes the open cycle (steps in billing.ts) and returns its summary; first seals a cycle a
   * crash left closed but unsealed.
   */
  closeCycle(options?: CloseCycleOptions): MaybePromise<CycleSummary>;
  /**
   * Takes or renews the lease of the one schedule that closes cycles (cycle-closer.ts); when
   * another live holder has it, `held: false` and that holder.
   */
  holdCycleCloser(claim: CloserClaim, now?: number): MaybePromise<{ held: boolean; closer: CycleCloser }>;
  /** The lease as stored (live or lapsed), or null when no schedule ever held it. */
  cycleCloser(): MaybePromise<CycleCloser | null>;
  /** Gives the lease up (only the claimant's own). */
  releaseCycleCloser(claim: CloserClaim): MaybePromise<void>;
  /** Asks the live lease holder to close the open cycle at its next pass; null when none is live. */
  requestCycleClose(now?: number): MaybePromise<CycleCloser | null>;
  /** Seals cycles that are closed but not sealed (after a crash); returns their summaries. */
  sealPending(options?: { batchSize?: number }): MaybePromise<CycleSummary[]>;
  cycles(): MaybePromise<(CycleInfo | CycleSummary)[]>;
  cycleSummary(id: number): MaybePromise<CycleSummary | undefined>;
  debits(cycle: number): MaybePromise<Debit[]>;
  credits(cycle: number): MaybePromise<Credit[]>;
  payouts(cycle: number): MaybePromise<Payout[]>;
  /**
   * Credits held for beneficiaries that had no address when their cycle was sealed, oldest first;
   * `pending`: only those not paid yet (each is paid in the first cycle sealed after its
   * beneficiary registers an address).
   */
  heldCredits(filter?: { pending?: boolean; role?: Beneficiary; beneficiary?: string }): MaybePromise<HeldCredit[]>;
  sealedBatches(cycle: number): MaybePromise<BatchInfo[]>;
  /** Proof that a work id's record is in a sealed batch; undefined when unknown; throws `not_found`-ish CgnError while its cycle is not sealed. */
  recordProof(workId: string): MaybePromise<RecordProof | undefined>;

  /** Sets the EVM address credits of (role, id) are paid to, for cycles sealed from now on. */
  registerAddress(role: Beneficiary, id: string, address: string): MaybePromise<void>;
  /** Registered addresses, keyed `role\0id`. */
  addresses(): MaybePromise<Map<string, string>>;

  /** Adds prepaid tokens to an account (a deposit); returns the new balance. */
  credit(account: string, amount: bigint, memo?: string): MaybePromise<Balance>;
  balance(account: string): MaybePromise<Balance>;
  balances(): MaybePromise<Balance[]>;
  /** An account's credited deposits (chain deposits and `credit`s), newest first, at most `limit` (default 50, at most 1000). */
  deposits(account: string, options?: { limit?: number }): MaybePromise<DepositEntry[]>;

  usage(group: UsageGroup, filter?: UsageFilter): MaybePromise<UsageLine[]>;
  /**
   * Usage per time bucket (UTC day, or billing cycle) and group, in one pass: a line per (bucket,
   * key) that has records, ordered by bucket (days as text, cycles by number) then key. Each
   * bucket's lines are what `usage(group, ...)` gives for that day or cycle alone.
   */
  usageOverTime(bucket: UsageBucket, group: UsageGroup, filter?: UsageFilter): MaybePromise<UsageBucketLine[]>;
  /**
   * Records, 5xx failures and summed latency per (miner or node, DService) over a window, sorted
   * by subject then DService: the input of the service levels (reputation.ts). Latency is the
   * execution time for miners, the queue time for nodes.
   */
  activity(by: ActivitySubject, filter?: ActivityFilter): MaybePromise<ActivityLine[]>;

  // On-chain escrow (escrow.ts): links, deposits, withdrawals, anchors.
  /**
   * Links an EVM address to an account: deposits into escrow for it credit the account, and
   * deposits already recorded for it are credited now (`credited`). Linking the same pair again
   * does nothing; an address linked to another account is a `conflict`.
   */
  linkAddress(account: string, address: string): MaybePromise<{ link: AddressLink; credited: bigint }>;
  /**
   * Removes the link of `address` to `account` (`unlinkProblem` decides: refused with `conflict`
   * while deposits credited through it are not withdrawn, `not_found` when it is not linked to
   * the account). Later deposits from the address are held until it is linked again.
   */
  unlinkAddress(account: string, address: string): MaybePromise<AddressLink>;
  /** Links of one account, or all. */
  links(account?: string): MaybePromise<AddressLink[]>;
  /** Records a confirmed deposit and credits its account, once per `ref`, in one transaction. */
  recordChainDeposit(deposit: ChainDeposit): MaybePromise<DepositOutcome>;
  /**
   * Debits `amount` (or all that can be: 'all') of the account's available balance for a
   * withdrawal to `address` (a linked address with that much in escrow for the account).
   * `payment_required` when the balance does not cover it.
   */
  requestWithdrawal(account: string, address: string, amount: bigint | 'all'): MaybePromise<Withdrawal>;
  /** Withdrawals, oldest first; `pending`: only those not yet posted on chain. */
  withdrawals(filter?: { pending?: boolean; account?: string }): MaybePromise<Withdrawal[]>;
  /** The settler chose the anchored cycle these pending withdrawals are posted for. */
  assignWithdrawals(ids: readonly number[], cycle: number): MaybePromise<void>;
  /** Their grant is confirmed on chain. */
  markWithdrawalsPosted(ids: readonly number[], tx: string | null): MaybePromise<void>;
  /** Sealed cycle `cycle` is anchored on chain (idempotent: the first mark stands). */
  markAnchored(cycle: number, tx: string | null): MaybePromise<void>;
  anchors(): MaybePromise<AnchorMark[]>;

  idempotencyBegin(args: IdempotencyBeginArgs): MaybePromise<IdempotencyBegin>;
  /** Stores the response of a pending key (same work id); afterwards begin() replays it. */
  idempotencyComplete(account: string, key: string, workId: string, response: StoredResponse, now?: number): MaybePromise<void>;
  /** Forgets a pending key (the work failed before it was charged) so a retry runs. */
  idempotencyAbandon(account: string, key: string, workId: string): MaybePromise<void>;
  /** Deletes entries past their expiry; returns how many. */
  idempotencyPurge(now?: number): MaybePromise<number>;
}
