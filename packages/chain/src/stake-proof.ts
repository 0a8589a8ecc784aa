/**
 * The stake proof: a staking address vouches for a miner key by signing
 * `stakeBindingMessage(minerId)` (EIP-191 personal_sign). The miner advertises the address and the
 * signature; a node that checks stakes admits it to the open tier only if the signature recovers
 * to that address, so no miner can borrow (and get slashed) another's stake.
 *
 * `cgn wallet stake-proof --key HEX --miner-key FILE` (or `--miner-id HEX`) prints it; no network.
 */
import { readFileSync } from 'node:fs';
import type { Address, Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { importMinerKey, minerIdOf, stakeBindingMessage } from '@cgn/protocol';

export async function signStakeBinding(privateKey: Hex, minerId: string): Promise<{ address: Address; minerId: string; proof: Hex }> {
  const account = privateKeyToAccount(privateKey);
  const proof = await account.signMessage({ message: stakeBindingMessage(minerId) });
  return { address: account.address, minerId: minerId.toLowerCase(), proof };
}

/** The miner id (hex public key) of a miner key file, or the id given; throws with a usable message. */
export function minerIdFrom(opts: { minerKeyFile?: string | undefined; minerId?: string | undefined }): string {
  if ((opts.minerKeyFile === undefined) === (opts.minerId === undefined)) throw new Error('stake-proof needs --miner-key FILE or --miner-id HEX (one of them)');
  if (opts.minerId !== undefined) {
    if (!/^[0-9a-fA-F]{64}$/.test(opts.minerId)) throw new Error('--miner-id must be the miner public key: 64 hex digits');
    return opts.minerId.toLowerCase();
  }
  return minerIdOf(importMinerKey(readFileSync(opts.minerKeyFile!, 'utf8')).publicKey);
}
