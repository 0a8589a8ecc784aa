/**
 * The miner's identity key on disk: an Ed25519 private key as PKCS#8 PEM, created on first use
 * with mode 0600 in a 0700 directory.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { exportMinerKey, generateMinerKey, importMinerKey, type MinerKeyPair } from '@cgn/protocol';
import { errorText, type Log } from './log.js';
import { MinerOptionError } from './options.js';

export interface LoadedKey {
  pair: MinerKeyPair;
  /** Whether the file was created just now. */
  created: boolean;
}

/** Reads the key in `file`, or creates one there if the file does not exist. */
export function loadOrCreateKey(file: string, log: Log): LoadedKey {
  let pem: string | null = null;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new MinerOptionError('keyFile', `cannot read ${file}: ${errorText(err)}`);
  }
  if (pem === null) {
    const pair = generateMinerKey();
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      writeFileSync(file, exportMinerKey(pair), { mode: 0o600, flag: 'wx' });
      log.info({ keyFile: file }, 'created a new miner key');
      return { pair, created: true };
    } catch (err) {
      // Another miner created it in the meantime: use that one.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new MinerOptionError('keyFile', `cannot create ${file}: ${errorText(err)}`);
      pem = readFileSync(file, 'utf8');
    }
  }
  let pair: MinerKeyPair;
  try {
    pair = importMinerKey(pem);
  } catch (err) {
    throw new MinerOptionError('keyFile', `${file} does not hold an Ed25519 private key in PEM: ${errorText(err)}`);
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) log.warn({ keyFile: file, mode: mode.toString(8) }, 'the miner key file is readable by other users; chmod 600 it');
  return { pair, created: false };
}
