/**
 * The miner runtime's measurement: what runs the miner, as one digest. It covers the Node binary
 * (its bytes and version) and the code of the miner and the protocol package it loads (their
 * built `dist` trees, digested like DService packages). The same function run on a known-good
 * install gives the value an administrator puts on central's allow-list (`cgn miner --measure`).
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { digestPackage } from '../digest.js';

/**
 * Read through one buffer: a stream's fresh 64 KiB chunk per read (1,500 of them for the node
 * binary) came from the C heap, and the freed chunks left 15-20 MB there that the process kept.
 */
async function fileDigest(path: string): Promise<string> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafeSlow(1024 * 1024);
  const fh = await open(path, 'r');
  try {
    for (let n; (n = (await fh.read(buf, 0, buf.length, null)).bytesRead) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    await fh.close();
  }
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
