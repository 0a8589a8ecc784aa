/**
 * The local network's chain in one call: start anvil, deploy the contracts with anvil's first dev
 * key as operator, mint tokens to the given accounts, and return everything with a `stop()`.
 * With `rpcUrl` + `privateKey` it deploys to that endpoint instead (no anvil). With `stateDir`, the
 * embedded chain survives restarts: anvil loads and dumps its state there, and the contracts
 * deployed the first time are used again (funded accounts are topped up, not minted again).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Address, Hex } from 'viem';
import { ANVIL_KEYS, startAnvil, type Anvil, type AnvilOptions } from './anvil.js';
import { connect, type ChainClients } from './clients.js';
import { CgnContracts } from './contracts.js';
import { addressesFromJson, addressesToJson, deployContracts, type DeployOptions, type DeployResult } from './deploy.js';

export interface LocalChainOptions extends DeployOptions {
  /** Use this endpoint instead of starting anvil (then `privateKey` is required). */
  rpcUrl?: string;
  privateKey?: Hex;
  anvil?: AnvilOptions;
  /** Keep anvil's state and the contract addresses in this directory across restarts (embedded chain only). */
  stateDir?: string;
  /** Called when the chain answers, before the contracts are deployed (for progress reports). */
  onChainUp?: (rpcUrl: string) => void;
}

export interface LocalChain {
  rpcUrl: string;
  anvil: Anvil | null;
  clients: ChainClients;
  /** Bound to the operator (deployer) key. */
  contracts: CgnContracts;
  addresses: DeployResult;
  operator: Address;
  /** Stops anvil if this call started it. */
  stop(): Promise<void>;
}

export async function startLocalChain(opts: LocalChainOptions = {}): Promise<LocalChain> {
  let anvil: Anvil | null = null;
  let rpcUrl = opts.rpcUrl;
  let key = opts.privateKey;
  if (rpcUrl === undefined) {
    const state = opts.stateDir === undefined ? [] : persistentState(opts.stateDir);
    anvil = await startAnvil({ ...opts.anvil, args: [...(opts.anvil?.args ?? []), ...state] });
    rpcUrl = anvil.rpcUrl;
    key ??= ANVIL_KEYS[0];
  } else if (key === undefined) {
    throw new Error('a deployer private key is required with an external RPC endpoint');
  }
  try {
    const clients = await connect({ rpcUrl, privateKey: key, ...(anvil ? { chainId: anvil.chainId } : {}) });
    opts.onChainUp?.(rpcUrl);
    const addresses = (anvil && opts.stateDir !== undefined && (await deployedBefore(clients, opts))) || (await deployContracts(clients, opts));
    if (anvil && opts.stateDir !== undefined) fs.writeFileSync(path.join(opts.stateDir, 'contracts.json'), `${addressesToJson(addresses)}\n`);
    const contracts = new CgnContracts(clients, addresses);
    const a = anvil;
    return { rpcUrl, anvil, clients, contracts, addresses, operator: addresses.deployer, stop: async () => void (await a?.stop()) };
  } catch (err) {
    await anvil?.stop();
    throw err;
  }
}

/** Contracts bound to another key on the same chain (e.g. a miner's or an account's). */
export async function asAccount(chain: { rpcUrl: string; contracts: CgnContracts }, privateKey: Hex): Promise<CgnContracts> {
  const clients = await connect({ rpcUrl: chain.rpcUrl, privateKey, chainId: chain.contracts.addresses.chainId });
  return new CgnContracts(clients, chain.contracts.addresses);
}

/** anvil arguments that load the state saved in `dir` (if any) and save it there on exit. */
function persistentState(dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'anvil-state.json');
  return [...(fs.existsSync(file) ? ['--load-state', file] : []), '--dump-state', file];
}

/** The contracts deployed by an earlier run, if the loaded state still has them; funded accounts topped up. */
async function deployedBefore(clients: ChainClients, opts: LocalChainOptions): Promise<DeployResult | null> {
  const file = path.join(opts.stateDir!, 'contracts.json');
  if (!fs.existsSync(file)) return null;
  const a = addressesFromJson(fs.readFileSync(file, 'utf8'));
  if (a.chainId !== clients.chain.id) return null;
  const code = await clients.public.getCode({ address: a.settlement });
  if (code === undefined || code === '0x') return null;
  const contracts = new CgnContracts(clients, a);
  for (const f of opts.fund ?? []) {
    const has = await contracts.tokenBalance(f.address);
    if (has < f.amount) await contracts.mint(f.address, f.amount - has);
  }
  return { ...a, deployer: contracts.me, gas: { token: 0n, settlement: 0n, staking: 0n, election: 0n } };
}
