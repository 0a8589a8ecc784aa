/**
 * The local network's chain facts from the `dev.json` that `npm start` (`cgn dev`) writes, so that
 * `cgn wallet ...` run next to it needs no --rpc, --contracts or faucet key.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Hex } from 'viem';
import { isPrivateKey } from './clients.js';

export const DEFAULT_DEV_JSON = path.join('.cgn', 'dev.json');

export interface DevChain {
  file: string;
  rpcUrl?: string;
  contractsFile?: string;
  /** The deployer's key (it mints CGN and holds the dev ETH). */
  deployerKey?: Hex;
}

/** The chain section of a dev.json, or null when there is no such file (or it has no chain). */
export function readDevChain(file: string): DevChain | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  const chain = (parsed as { chain?: unknown })?.chain as Record<string, unknown> | null | undefined;
  if (chain === null || typeof chain !== 'object') return null;
  const operatorKey = ((chain.payees as { operator?: { privateKey?: unknown } } | undefined)?.operator?.privateKey) as unknown;
  return {
    file,
    ...(typeof chain.rpcUrl === 'string' ? { rpcUrl: chain.rpcUrl } : {}),
    ...(typeof chain.contractsFile === 'string' ? { contractsFile: chain.contractsFile } : {}),
    ...(isPrivateKey(operatorKey) ? { deployerKey: operatorKey } : {}),
  };
}
