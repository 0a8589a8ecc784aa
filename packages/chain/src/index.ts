/**
 * @cgn/chain: CGN's on-chain side. Solidity contracts (in `contracts/`, on OpenZeppelin 5):
 * `CgnToken` (ERC-20), `Settlement` (escrow deposits, one anchor per billing cycle, Merkle payout
 * claims), `Staking` (stake, unbonding delay, slashing on evidence, open-tier ban) and
 * `ValidatorElection` (per-epoch validator set weighted by stake x service level); typed ABIs for
 * viem (`src/generated/`, built by `build.ts` with solc-js); an embedded anvil; deployment; an
 * event watcher with confirmations and replay safety; the ledger-to-chain anchoring bridge; the
 * epoch scheduler (`EpochScheduler`: service levels on chain, one election per epoch) and
 * `validatorSetOf`; the wallet/history view (`walletView`, HTTP `startWalletServer`); and the
 * `cgn wallet` command.
 *
 * @example
 * ```ts
 * import { startLocalChain, asAccount, anchorClosedCycle, ANVIL_KEYS } from '@cgn/chain';
 *
 * const chain = await startLocalChain({ fund: [{ address: demo, amount: 10n ** 21n }] });
 * // a closed ledger cycle -> one anchoring transaction (idempotent, retried)
 * await anchorClosedCycle(chain.contracts, {
 *   cycleId: summary.id, payoutRoot: summary.payoutRoot, batchRoots: batches.map((b) => b.root), total: summary.tokens,
 *   debits: [{ address: payer, amount: summary.tokens }], // who pays: their escrow, never another's
 * });
 * // a beneficiary claims with its proof
 * const miner = await asAccount(chain, ANVIL_KEYS[2]);
 * await miner.claim({ cycleId: summary.id, amount: payout.amount, proof: payout.proof });
 * await chain.stop();
 * ```
 */
export { ANVIL_CHAIN_ID, ANVIL_KEYS, anvilBinary, freePort, rpcCall, startAnvil, type Anvil, type AnvilOptions } from './anvil.js';
export { addressOf, chainFor, connect, isPrivateKey, requireWallet, type CgnPublicClient, type CgnWalletClient, type ChainClients, type ClientOptions } from './clients.js';
export {
  CgnContracts,
  revertReason,
  type AnchoredCycle,
  type ChainAddresses,
  type ClaimInput,
  type HistoryEntry,
  type HistoryKind,
  type TxResult,
  type WalletBalances,
} from './contracts.js';
export { addressesFromJson, addressesToJson, deployContracts, ROLES, type DeployOptions, type DeployResult } from './deploy.js';
export { asAccount, startLocalChain, type LocalChain, type LocalChainOptions } from './local.js';
export {
  anchorArgs,
  anchorClosedCycle,
  AnchorConflictError,
  anchorPending,
  AnchorRefusedError,
  type AnchorArgs,
  type AnchorOptions,
  type AnchorOutcome,
  type ClosedCycle,
  type EscrowDebit,
  type PendingResult,
} from './anchor.js';
export {
  ChainWatcher,
  JsonFileWatcherStore,
  MemoryWatcherStore,
  SETTLEMENT_EVENTS,
  STAKING_EVENTS,
  type ChainEvent,
  type WatchedEventName,
  type WatcherCursor,
  type WatcherOptions,
  type WatcherStore,
} from './watcher.js';
export { runWalletFromArgs, WALLET_USAGE, type WalletIo } from './cli.js';
export { ChainActionError, decodeRevert, explainChainError, type ChainErrorCode, type ChainErrorContext, type DecodedRevert } from './chain-errors.js';
export { createWalletFile, DEFAULT_WALLET_DIR, readWalletFile, WalletFileError, type NewWallet } from './wallet-file.js';
export { faucet, FaucetRefusedError, isLocalChain, type FaucetResult } from './faucet.js';
export { DEFAULT_DEV_JSON, readDevChain, type DevChain } from './dev-defaults.js';
export { ContractsFileError, openContracts, untilStopped } from './cli-support.js';
export {
  EpochRefusedError, EpochScheduler, epochSeed, MissingRoleError,
  type EpochClock, type EpochOutcome, type EpochSchedulerOptions, type LevelChange, type ServiceLevelSource,
} from './epochs.js';
export { proposerFor, validatorSetOf, type ValidatorSet } from './validator-set.js';
export { walletView, walletViewJson, type WalletEvent, type WalletEventKind, type WalletView, type WalletViewOptions } from './wallet-view.js';
export { handleWalletRequest, parseAddressParam, startWalletServer, type HttpAnswer, type WalletApiContext, type WalletServer } from './wallet-http.js';
export { formatValidatorSet, formatWalletView } from './wallet-format.js';
export { DepositBridge, depositOf, type DepositBridgeOptions } from './settle/deposits.js';
export { Settler, type Grant, type SettleLog, type SettlerOptions, type TickReport } from './settle/settler.js';
export { claimableFromLedger, type Claimable } from './settle/claims.js';
export { runSettleFromArgs, SETTLE_USAGE } from './settle/cli.js';
export * from './generated/index.js';
export { minerIdFrom, signStakeBinding } from './stake-proof.js';
