/**
 * Wallet key files: `createWalletFile` makes a private key and writes it (0x + 64 hex digits and a
 * newline) to a file only its owner can read (0600, in a directory made 0700), never over an
 * existing file; `readWalletFile` reads one back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Address, Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { isPrivateKey } from './clients.js';

/** Where `cgn wallet new` puts a key unless told (relative to the working directory). */
export const DEFAULT_WALLET_DIR = path.join('.cgn', 'wallets');

export class WalletFileError extends Error {
  constructor(
    readonly code: 'exists' | 'unreadable' | 'malformed',
    message: string,
  ) {
    super(message);
    this.name = 'WalletFileError';
  }
}

export interface NewWallet {
  address: Address;
  file: string;
}

/** A new key in `file` (default `.cgn/wallets/<address>.key`); refuses to overwrite. */
export function createWalletFile(file?: string): NewWallet {
  const key = generatePrivateKey();
  const address = privateKeyToAccount(key).address;
  const target = path.resolve(file ?? path.join(DEFAULT_WALLET_DIR, `${address}.key`));
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
  try {
    // 'wx': fails if the file exists, so an existing key is never replaced
    fs.writeFileSync(target, `${key}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new WalletFileError('exists', `${target} exists: a wallet file is never overwritten (its key could hold funds); give another --out`);
    throw err;
  }
  fs.chmodSync(target, 0o600); // the umask may have narrowed, never widened, but be explicit
  return { address, file: target };
}

export function readWalletFile(file: string): Hex {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new WalletFileError('unreadable', `cannot read the key file ${file}: ${(err as Error).message}`);
  }
  if (!isPrivateKey(text)) throw new WalletFileError('malformed', `${file} does not hold a private key (0x and 64 hex digits)`);
  return text;
}
