/**
 * Deploys the CGN contract set (token, settlement, staking, validator election), grants roles and
 * optionally mints tokens to accounts. Works against anvil or any EVM JSON-RPC endpoint.
 */
import { keccak256, toBytes, type Abi, type Address, type Hash, type Hex } from 'viem';
import { requireWallet, type ChainClients } from './clients.js';
import type { ChainAddresses } from './contracts.js';
import {
  cgnTokenAbi,
  cgnTokenBytecode,
  settlementAbi,
  settlementBytecode,
  stakingAbi,
  stakingBytecode,
  validatorElectionAbi,
  validatorElectionBytecode,
} from './generated/index.js';

export const ROLES = {
  admin: '0x0000000000000000000000000000000000000000000000000000000000000000',
  minter: keccak256(toBytes('MINTER_ROLE')),
  anchor: keccak256(toBytes('ANCHOR_ROLE')),
  slasher: keccak256(toBytes('SLASHER_ROLE')),
  oracle: keccak256(toBytes('ORACLE_ROLE')),
  elector: keccak256(toBytes('ELECTOR_ROLE')),
} as const satisfies Record<string, Hex>;

export interface DeployOptions {
  tokenName?: string;
  tokenSymbol?: string;
  /** Seconds before requested unbonding stake can be withdrawn (default 7 days). */
  unbondingDelaySeconds?: bigint | number;
  /** Minimum active stake for the open tier (default 1 token). */
  minOpenTierStake?: bigint;
  /** Minimum stake of a validator candidate (default 1 token). */
  minCandidateStake?: bigint;
  /** Validators drawn per epoch (default 4). */
  validatorCount?: number;
  /** Receives slashed stake (default: the deployer). */
  treasury?: Address;
  /** Extra holders of each role (the deployer holds admin and every operational role). */
  anchorers?: readonly Address[];
  slashers?: readonly Address[];
  oracles?: readonly Address[];
  electors?: readonly Address[];
  minters?: readonly Address[];
  /** Tokens minted after deployment (e.g. the demo account and the miners). */
  fund?: readonly { address: Address; amount: bigint }[];
}

const TOKEN = 10n ** 18n;

export interface DeployResult extends ChainAddresses {
  deployer: Address;
  gas: Record<'token' | 'settlement' | 'staking' | 'election', bigint>;
}

async function deploy(clients: ChainClients, abi: Abi, bytecode: Hex, args: readonly unknown[]): Promise<{ address: Address; block: bigint; gas: bigint }> {
  const w = requireWallet(clients);
  const hash: Hash = await w.deployContract({ abi, bytecode, args });
  const r = await clients.public.waitForTransactionReceipt({ hash });
  if (r.status !== 'success' || !r.contractAddress) throw new Error(`deployment ${hash} failed`);
  return { address: r.contractAddress, block: r.blockNumber, gas: r.gasUsed };
}

export async function deployContracts(clients: ChainClients, opts: DeployOptions = {}): Promise<DeployResult> {
  const w = requireWallet(clients);
  const deployer = w.account.address;
  const token = await deploy(clients, cgnTokenAbi, cgnTokenBytecode, [opts.tokenName ?? 'CGN Token', opts.tokenSymbol ?? 'CGN', deployer]);
  const settlement = await deploy(clients, settlementAbi, settlementBytecode, [token.address, deployer]);
  const staking = await deploy(clients, stakingAbi, stakingBytecode, [
    token.address,
    deployer,
    opts.treasury ?? deployer,
    BigInt(opts.unbondingDelaySeconds ?? 7 * 24 * 3600),
    opts.minOpenTierStake ?? TOKEN,
  ]);
  const election = await deploy(clients, validatorElectionAbi, validatorElectionBytecode, [
    staking.address,
    deployer,
    opts.validatorCount ?? 4,
    opts.minCandidateStake ?? TOKEN,
  ]);

  const grants: { address: Address; abi: Abi; role: Hex; to: Address }[] = [];
  for (const to of opts.minters ?? []) grants.push({ address: token.address, abi: cgnTokenAbi, role: ROLES.minter, to });
  for (const to of opts.anchorers ?? []) grants.push({ address: settlement.address, abi: settlementAbi, role: ROLES.anchor, to });
  grants.push({ address: staking.address, abi: stakingAbi, role: ROLES.slasher, to: deployer });
  for (const to of opts.slashers ?? []) grants.push({ address: staking.address, abi: stakingAbi, role: ROLES.slasher, to });
  for (const to of opts.oracles ?? []) grants.push({ address: election.address, abi: validatorElectionAbi, role: ROLES.oracle, to });
  for (const to of opts.electors ?? []) grants.push({ address: election.address, abi: validatorElectionAbi, role: ROLES.elector, to });
  for (const g of grants) {
    const hash = await w.writeContract({ address: g.address, abi: g.abi, functionName: 'grantRole', args: [g.role, g.to] });
    const r = await clients.public.waitForTransactionReceipt({ hash });
    if (r.status !== 'success') throw new Error(`grantRole ${g.role} to ${g.to} failed`);
  }
  for (const f of opts.fund ?? []) {
    const hash = await w.writeContract({ address: token.address, abi: cgnTokenAbi, functionName: 'mint', args: [f.address, f.amount] });
    const r = await clients.public.waitForTransactionReceipt({ hash });
    if (r.status !== 'success') throw new Error(`mint to ${f.address} failed`);
  }
  return {
    chainId: clients.chain.id,
    token: token.address,
    settlement: settlement.address,
    staking: staking.address,
    election: election.address,
    deployBlock: token.block,
    deployer,
    gas: { token: token.gas, settlement: settlement.gas, staking: staking.gas, election: election.gas },
  };
}

/** JSON form of the addresses (bigints as decimal strings), for `--contracts FILE`. */
export function addressesToJson(a: ChainAddresses): string {
  return JSON.stringify(
    { chainId: a.chainId, token: a.token, settlement: a.settlement, staking: a.staking, election: a.election, deployBlock: a.deployBlock.toString() },
    null,
    2,
  );
}

export function addressesFromJson(text: string): ChainAddresses {
  const o = JSON.parse(text) as Record<string, unknown>;
  const addr = (k: string): Address => {
    const v = o[k];
    if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(v)) throw new Error(`contracts file: "${k}" must be an address`);
    return v as Address;
  };
  const chainId = Number(o.chainId);
  if (!Number.isSafeInteger(chainId) || chainId <= 0) throw new Error('contracts file: "chainId" must be a positive integer');
  const db = o.deployBlock;
  return {
    chainId,
    token: addr('token'),
    settlement: addr('settlement'),
    staking: addr('staking'),
    election: addr('election'),
    deployBlock: typeof db === 'string' || typeof db === 'number' ? BigInt(db) : 0n,
  };
}
