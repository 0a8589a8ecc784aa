/**
 * `cgn miner --payout-address new`: makes the miner a wallet on the spot, or reuses the one made
 * before, so a first-time miner is paid from its first cycle. The key sits next to the miner key
 * (`<miner key without .pem>.payout.key`, mode 0600, written by `createWalletFile`); the address
 * replaces "new" in the arguments the miner gets.
 */
import { existsSync } from 'node:fs';
import { privateKeyToAccount } from 'viem/accounts';
import { createWalletFile, readWalletFile } from '@cgn/chain';

export interface PayoutWallet {
  address: string;
  file: string;
  created: boolean;
}

/** The payout key file that belongs to a miner key file. */
export function payoutKeyFileFor(minerKeyFile: string): string {
  return `${minerKeyFile.replace(/\.pem$/i, '')}.payout.key`;
}

/** The wallet in `file`, made now if there is none. */
export function ensurePayoutWallet(file: string): PayoutWallet {
  if (existsSync(file)) return { address: privateKeyToAccount(readWalletFile(file)).address, file, created: false };
  const w = createWalletFile(file);
  return { address: w.address, file: w.file, created: true };
}

/** The value given to a flag in `argv` (`--flag V` or `--flag=V`), and where. */
function flagValue(argv: readonly string[], flag: string): { index: number; value: string; joined: boolean } | null {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag && i + 1 < argv.length) return { index: i, value: argv[i + 1]!, joined: false };
    if (argv[i]!.startsWith(`${flag}=`)) return { index: i, value: argv[i]!.slice(flag.length + 1), joined: true };
  }
  return null;
}

/**
 * Replaces `--payout-address new` with a wallet's address (made or reused) and says which on
 * `say`. Other arguments are returned unchanged.
 */
export function resolvePayoutNew(argv: readonly string[], defaultKeyFile: string, say: (line: string) => void): string[] {
  const p = flagValue(argv, '--payout-address');
  if (p === null || p.value !== 'new') return [...argv];
  const keyFile = flagValue(argv, '--key')?.value ?? defaultKeyFile;
  const w = ensurePayoutWallet(payoutKeyFileFor(keyFile));
  say(
    w.created
      ? `cgn miner: made a payout wallet ${w.address}; its key is in ${w.file} (mode 0600): keep it, it claims this miner's earnings (cgn wallet claim --key-file ${w.file} ...)`
      : `cgn miner: paying to the wallet made before, ${w.address} (key in ${w.file})`,
  );
  const out = [...argv];
  if (p.joined) out[p.index] = `--payout-address=${w.address}`;
  else out[p.index + 1] = w.address;
  return out;
}
