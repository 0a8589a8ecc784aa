/**
 * Reading the validator set of an epoch from the `ValidatorElection` contract: what a chain that
 * takes its validator set from a contract (a CometBFT/Tendermint app's EndBlock, a PoA engine's
 * header validation, a bridge's light client) does at each epoch boundary.
 *
 * It needs only a read-only JSON-RPC connection and the contract address:
 *
 * ```ts
 * const set = await validatorSetOf(publicClient, electionAddress, 42n);
 * set.validators;      // the addresses drawn for epoch 42, in draw order
 * set.proposer(7n);    // the proposer of round 7, computed locally, as proposerOf(42, 7) on chain
 * ```
 *
 * The proposer rule is the contract's: validators[keccak256(abi.encode(seed, epoch, round,
 * "proposer")) mod n], so every node derives the same proposer without a call per round.
 */
import { encodeAbiParameters, keccak256, type Address, type Hex } from 'viem';
import type { CgnPublicClient } from './clients.js';
import { validatorElectionAbi } from './generated/index.js';

export interface ValidatorSet {
  epoch: bigint;
  /** False when the epoch was not (yet) elected: then `validators` is empty. */
  elected: boolean;
  /** The seed the set was drawn from (zero when not elected). */
  seed: Hex;
  validators: readonly Address[];
  /** The proposer of `round` (throws when the epoch has no set). */
  proposer(round: bigint | number): Address;
}

/** The contract's proposer rule, computed locally. */
export function proposerFor(validators: readonly Address[], epoch: bigint, seed: Hex, round: bigint | number): Address {
  if (validators.length === 0) throw new Error(`epoch ${epoch} has no validator set`);
  const h = keccak256(
    encodeAbiParameters([{ type: 'bytes32' }, { type: 'uint64' }, { type: 'uint256' }, { type: 'string' }], [seed, epoch, BigInt(round), 'proposer']),
  );
  return validators[Number(BigInt(h) % BigInt(validators.length))]!;
}

/**
 * The validator set of `epoch` (default: the latest elected epoch, `lastEpoch()`), read from the
 * election contract at `election`. `blockNumber` pins the read to a block (for reproducibility).
 */
export async function validatorSetOf(client: CgnPublicClient, election: Address, epoch?: bigint | number, opts: { blockNumber?: bigint } = {}): Promise<ValidatorSet> {
  const c = { address: election, abi: validatorElectionAbi, ...(opts.blockNumber !== undefined ? { blockNumber: opts.blockNumber } : {}) } as const;
  const e = epoch === undefined ? await client.readContract({ ...c, functionName: 'lastEpoch' }) : BigInt(epoch);
  const [elected, seed, validators] = await Promise.all([
    client.readContract({ ...c, functionName: 'elected', args: [e] }),
    client.readContract({ ...c, functionName: 'seedOf', args: [e] }),
    client.readContract({ ...c, functionName: 'validatorsOf', args: [e] }),
  ]);
  return { epoch: e, elected, seed, validators, proposer: (round) => proposerFor(validators, e, seed, round) };
}
