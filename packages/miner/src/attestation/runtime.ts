/**
 * The miner runtime's measurement: what runs the miner, as one digest. It covers the Node binary
 * (its bytes and version) and the code of the miner and the protocol package it loads (their
 * built `dist` trees, digested like DService packages). The same function run on a known-good
 * install gives the value an administrator puts on central's allow-list (`cgn miner --measure`).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { digestPackage } from '../digest.js';

async function fileDigest(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export interface RuntimeMeasurement {
  digest: string;
  parts: { node: string; nodeBinary: string; miner: string; protocol: string };
}

export async function measureRuntime(): Promise<RuntimeMeasurement> {
  const minerDist = dirname(dirname(fileURLToPath(import.meta.url)));
  const protocolDist = dirname(createRequire(import.meta.url).resolve('@cgn/protocol'));
  const parts = {
    node: process.version,
    nodeBinary: await fileDigest(process.execPath),
    miner: await digestPackage(minerDist),
    protocol: await digestPackage(protocolDist),
  };
  const digest = createHash('sha256').update(`cgn-runtime-v1\n${JSON.stringify(parts)}`).digest('hex');
  return { digest, parts };
}
