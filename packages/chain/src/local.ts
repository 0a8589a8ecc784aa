/**
 * The local network's chain in one call: start anvil, deploy the contracts with anvil's first dev
 * key as operator, mint tokens to the given accounts, and return everything with a `stop()`.
 * With `rpcUrl` + `privateKey` it deploys to that endpoint instead (no anvil).
 */
import type { Address, Hex } from 'viem';
import { ANVIL_KEYS, startAnvil, type Anvil, type AnvilOptions } from './anvil.js';
import { connect, type ChainClients } from './clients.js';
import { CgnContracts } from './contracts.js';
import { deployContracts, type DeployOptions, type DeployResult } from './deploy.js';

export interface LocalChainOptions extends DeployOptions {
  /** Use this endpoint instead of starting anvil (then `privateKey` is required). */
  rpcUrl?: string;
  privateKey?: Hex;
  anvil?: AnvilOptions;
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
    anvil = await startAnvil(opts.anvil ?? {});
    rpcUrl = anvil.rpcUrl;
    key ??= ANVIL_KEYS[0];
  } else if (key === undefined) {
    throw new Error('a deployer private key is required with an external RPC endpoint');
  }
  try {
    const clients = await connect({ rpcUrl, privateKey: key, ...(anvil ? { chainId: anvil.chainId } : {}) });
    const addresses = await deployContracts(clients, opts);
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
