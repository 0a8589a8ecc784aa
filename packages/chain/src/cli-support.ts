/** Pieces the chain's command lines share (`cgn wallet`, `cgn epoch`). */
import * as fs from 'node:fs';
import type { Hex } from 'viem';
import { connect } from './clients.js';
import { CgnContracts } from './contracts.js';
import { addressesFromJson } from './deploy.js';

/** The --contracts file is missing or malformed (a usage problem: exit 2). */
export class ContractsFileError extends Error {
  constructor(file: string, cause: unknown) {
    super(`cannot use --contracts ${file}: ${(cause as Error).message}`, { cause });
    this.name = 'ContractsFileError';
  }
}

/**
 * Contracts from a --contracts file on the chain at `rpcUrl`, signing with `privateKey` if given.
 * Fails when the endpoint is another chain than the file's.
 */
export async function openContracts(opts: { rpcUrl: string; contractsFile: string; privateKey?: Hex }): Promise<CgnContracts> {
  let addresses;
  try {
    addresses = addressesFromJson(fs.readFileSync(opts.contractsFile, 'utf8'));
  } catch (err) {
    throw new ContractsFileError(opts.contractsFile, err);
  }
  const clients = await connect({ rpcUrl: opts.rpcUrl, ...(opts.privateKey !== undefined ? { privateKey: opts.privateKey } : {}) });
  if (clients.chain.id !== addresses.chainId) {
    throw new Error(`the endpoint ${opts.rpcUrl} is chain ${clients.chain.id}, but the contracts file ${opts.contractsFile} is for chain ${addresses.chainId}: give the --contracts file that chain's deployment wrote, or the --rpc of chain ${addresses.chainId}`);
  }
  return new CgnContracts(clients, addresses);
}

/** Resolves when `signal` aborts, or (without one) on SIGINT or SIGTERM. */
export function untilStopped(signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal === undefined) {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    } else if (signal.aborted) {
      resolve();
    } else {
      signal.addEventListener('abort', () => resolve(), { once: true });
    }
  });
}
