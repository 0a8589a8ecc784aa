/**
 * viem clients for one JSON-RPC endpoint: a public client for reads and, given a private key, a
 * wallet client that signs locally. The same code serves the embedded anvil and any EVM endpoint.
 */
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type Account,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

export type CgnPublicClient = PublicClient<Transport, Chain>;
export type CgnWalletClient = WalletClient<Transport, Chain, Account>;

export interface ClientOptions {
  rpcUrl: string;
  /** 0x-prefixed 32-byte hex; omit for a read-only connection. */
  privateKey?: Hex;
  /** Skips the `eth_chainId` round trip when known. */
  chainId?: number;
  /** Receipt/poll interval; default 4 s for remote endpoints, 50 ms on loopback. */
  pollingIntervalMs?: number;
}

export interface ChainClients {
  rpcUrl: string;
  chain: Chain;
  public: CgnPublicClient;
  /** Present when a private key was given. */
  wallet?: CgnWalletClient;
  account?: Account;
}

const HEX_KEY = /^0x[0-9a-fA-F]{64}$/;

export function isPrivateKey(s: unknown): s is Hex {
  return typeof s === 'string' && HEX_KEY.test(s);
}

export function chainFor(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: chainId === 31337 ? 'anvil' : `chain-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

function isLoopback(rpcUrl: string): boolean {
  try {
    const h = new URL(rpcUrl).hostname;
    return h === '127.0.0.1' || h === 'localhost' || h === '[::1]' || h === '::1';
  } catch {
    return false;
  }
}

export async function connect(opts: ClientOptions): Promise<ChainClients> {
  const transport = http(opts.rpcUrl, { retryCount: 2, timeout: 20_000 });
  const pollingInterval = opts.pollingIntervalMs ?? (isLoopback(opts.rpcUrl) ? 50 : 4000);
  let chainId = opts.chainId;
  if (chainId === undefined) {
    const probe = createPublicClient({ transport });
    chainId = await probe.getChainId();
  }
  const chain = chainFor(chainId, opts.rpcUrl);
  const pub = createPublicClient({ chain, transport, pollingInterval }) as CgnPublicClient;
  const out: ChainClients = { rpcUrl: opts.rpcUrl, chain, public: pub };
  if (opts.privateKey !== undefined) {
    if (!isPrivateKey(opts.privateKey)) throw new Error('private key must be 0x followed by 64 hex digits');
    const account = privateKeyToAccount(opts.privateKey);
    out.account = account;
    out.wallet = createWalletClient({ account, chain, transport, pollingInterval });
  }
  return out;
}

/** The wallet of `clients`, or an error naming what is missing. */
export function requireWallet(clients: ChainClients): CgnWalletClient {
  if (!clients.wallet) throw new Error('this operation signs a transaction: give a private key');
  return clients.wallet;
}

export function addressOf(clients: ChainClients): Address {
  if (!clients.account) throw new Error('no account: give a private key');
  return clients.account.address;
}
