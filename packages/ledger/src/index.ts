/**
 * @cgn/ledger — the metering ledger: one microtransaction per completed work unit, committed
 * before the response leaves the node, append-only and hash-chained per node.
 *
 * * `LedgerStore` / `BillingLedgerStore` are the storage contract; `SqliteLedgerStore` the
 *   embedded adapter (WAL, one transaction per batch), `PostgresLedgerStore` the shared one.
 * * Pricing (`priceOf`, `splitAmount`, `toTokens`), billing cycles (`closeCycle`, record and
 *   payout proofs), balances (`BalanceGuard`), idempotency (`IdempotencyGate`), the CLI
 *   (`runLedgerFromArgs`). See packages/ledger/README.md for how the node wires them.
 * * `GroupCommitWriter` turns concurrent `record()` calls into shared transactions.
 * * `openLedger` wires the two together.
 *
 * ```ts
 * import { openLedger } from '@cgn/ledger';
 *
 * const { store, writer } = openLedger({ path: 'ledger.sqlite', durability: 'normal' });
 * writer.start();
 * await writer.record({
 *   workId: 'w_1', account: 'acme', endUser: null, dservice: 'echo', tier: 'open', miner: 'ab12cd',
 *   node: 'eu-1', receivedAt: Date.now(), queueUs: 120, execUs: 950, cpuUs: 800,
 *   bytesIn: 12, bytesOut: 12, status: 200, resultHash: null, attempts: 1,
 * });
 * console.log(store.count(), store.verifyChain()); // 1 { ok: true, rows: 1 }
 * await writer.stop(); // commits what is pending, closes the store
 * ```
 */
export type { Charge, Microtransaction, Pricing } from './record.js';
export { assertMicrotransaction, copyMicrotransaction, microtransactionProblem, pricingProblem } from './record.js';
export type {
  AppendResult, Balance, BillingLedgerStore, DepositEntry, UsageBucket, UsageBucketLine, CloseCycleOptions, Durability, LedgerRow, LedgerStore, MaybePromise, UsageFilter, UsageGroup, UsageLine,
} from './store.js';
export type { ChainFault, ChainFaultReason, ChainHead, ChainRow, ChainVerification, RowBilling } from './chain.js';
export { ChainVerifier, RECORD_FORMAT, RECORD_FORMATS, canonicalEncoding, chainHash } from './chain.js';
export { SQLITE_TUNING, SqliteLedgerStore, type SqliteLedgerStoreOptions } from './sqlite-store.js';
export { PostgresLedgerStore, type PostgresLedgerStoreOptions } from './pg-store.js';
export { GroupCommitWriter, type GroupCommitCounters, type GroupCommitWriterOptions } from './group-commit.js';
export { openLedger, openPostgresLedger, type Ledger, type OpenLedgerOptions, type OpenPostgresLedgerOptions, type PostgresLedger } from './open.js';
// Pricing and splits
export {
  MAX_PRICE_MICROS, PriceBook, ceilDiv, maxPriceOf, priceOf, priceScheduleProblem, toTokens, toTokensCeil, tokenRateProblem,
  type PriceSchedule, type PriceUsage, type TokenRate,
} from './pricing/price.js';
export { RateSourceError, parseRateDocument, parseRateText, readRateSource, type RateSourceErrorCode, type RateSourceSpec, type ReadRateOptions, type SourcedRate } from './pricing/rate-source.js';
export { BENEFICIARIES, DEFAULT_SPLIT, TOTAL_BPS, splitAmount, splitProblem, type Beneficiary, type SplitBps, type SplitParts } from './pricing/split.js';
// Billing cycles, batches, proofs
export {
  CycleAccumulator, DEFAULT_BATCH_SIZE, addressBook, creditPaid, cycleIsEmpty, derivedAddress, escrowDebit, isAddress, payableTokens, recordFromJson, recordToJson, verifyPayoutProof, verifyRecordProof,
  type AddressBook, type BatchInfo, type Credit, type CycleInfo, type CycleSummary, type Debit, type HeldCredit, type Payout, type PayoutBook, type ProofVerification, type RecordJson, type RecordProof,
} from './billing.js';
export { closeRequested, closerGone, closerLive, describeCloser, mayHold, processAlive, type CloserClaim, type CycleCloser } from './cycle-closer.js';
export { merkleParent, merkleProof, merkleRoot, merkleRootFromProof } from './merkle.js';
// Idempotency and balances
export {
  IDEMPOTENCY_STALE_MS, IDEMPOTENCY_TTL_MS, IdempotencyGate, idempotencyKeyProblem, requestFingerprint,
  type IdempotencyBegin, type IdempotencyBeginArgs, type IdempotencyDecision, type IdempotencyGateOptions, type IdempotencyTicket, type StoredResponse,
} from './idempotency.js';
export {
  checkChainDeposit, normAddress, withdrawalAmount, type AddressLink, type AnchorMark, type ChainDeposit, type DepositOutcome, type Withdrawal,
} from './escrow.js';
export { BalanceGuard, type BalanceGuardOptions, type Reservation, type ReserveResult } from './balance-guard.js';
// Reports (what `cgn ledger usage|invoice|earnings` and central's HTTP API show)
export {
  USAGE_GROUPS, releasableTokens, beneficiaryEarnings, earningsReport, invoiceList, invoiceReport, parseDay, reportJson, sealedCycle, sealedCycles, usageReport, usageTotal,
  type BeneficiaryCycleEarnings, type EarningsReport, type Invoice, type InvoiceSummary, type UsageReport, type UsageTotal,
} from './reports.js';
// CLI and test/bench helpers
export { DEFAULT_LEDGER_PATH, formatMicros, runLedgerFromArgs, type LedgerCliDeps, type LedgerCliIo } from './cli.js';
export { CENTRAL_ACCOUNT_ID, resolveAccount, resolveBeneficiary, resolveMiner, type AccountRef } from './resolve.js';
export { findPostgresBin, startPostgresCluster, type PostgresCluster } from './pg-cluster.js';
// Reputation -> service level (the validator election's input)
export {
  MAX_SERVICE_LEVEL, ledgerAddressLookup, ledgerServiceLevels, levelsByAddress, serviceLevels, smoothServiceLevels,
  type ActivityFilter, type ActivityLine, type ActivitySubject, type AddressLevels, type AddressLookup, type LedgerServiceLevelOptions, type LedgerServiceLevels,
  type ServiceLevel, type ServiceLevelOptions, type SmoothedLevel,
} from './reputation.js';
