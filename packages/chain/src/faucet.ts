/**
 * The local chain's faucet: CGN (minted when the signer may mint, else transferred from it) and
 * gas ETH for an address. Only on the local development chain (anvil's chain id): tokens and ETH
 * there are play money; anywhere else they are not the operator's to hand out.
 */
import type { Address } from 'viem';
import { ANVIL_CHAIN_ID } from './anvil.js';
import type { CgnContracts, TxResult } from './contracts.js';
import { cgnTokenAbi } from './generated/index.js';

export class FaucetRefusedError extends Error {
  constructor(readonly chainId: number) {
    super(`the faucet works only on the local development chain (chain id ${ANVIL_CHAIN_ID}, as npm start runs it); this endpoint is chain ${chainId}. There, CGN come from a holder (cgn wallet transfer) and ETH from an exchange or that chain's own faucet`);
    this.name = 'FaucetRefusedError';
  }
}

export function isLocalChain(chainId: number): boolean {
  return chainId === ANVIL_CHAIN_ID;
}

export interface FaucetResult {
  to: Address;
  tokens: bigint;
  wei: bigint;
  /** How the CGN came: minted, or transferred from the signer's own. */
  via: 'mint' | 'transfer' | null;
  tokenTx: TxResult | null;
  ethTx: TxResult | null;
}

/** Sends `tokens` CGN (base units) and `wei` ETH to `to`, signed by the dev deployer (`c`). */
export async function faucet(c: CgnContracts, to: Address, tokens: bigint, wei: bigint): Promise<FaucetResult> {
  if (!isLocalChain(c.addresses.chainId)) throw new FaucetRefusedError(c.addresses.chainId);
  let via: FaucetResult['via'] = null;
  let tokenTx: TxResult | null = null;
  if (tokens > 0n) {
    const minter = await c.clients.public.readContract({ address: c.addresses.token, abi: cgnTokenAbi, functionName: 'MINTER_ROLE' });
    const mayMint = await c.clients.public.readContract({ address: c.addresses.token, abi: cgnTokenAbi, functionName: 'hasRole', args: [minter, c.me] });
    via = mayMint ? 'mint' : 'transfer';
    tokenTx = mayMint ? await c.mint(to, tokens) : await c.transfer(to, tokens);
  }
  const ethTx = wei > 0n ? await c.sendEth(to, wei) : null;
  return { to, tokens, wei, via, tokenTx, ethTx };
}
