/**
 * The miner's side of the node's capability probe (protocol `probe` / `probed`): the hash chains
 * computed one per worker thread, so K chains take as long as one only on K free cores; the
 * payload echoed; memory, disk and GPUs reported as this machine sees them (the node marks those
 * self-reported). An honest miner has nothing to configure: the answer is whatever the machine does.
 */
import { existsSync, readdirSync, statfsSync } from 'node:fs';
import { freemem } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PROBE_HASH_BYTES, probeChain, type ProbeFrame, type ProbedFrame } from '@cgn/protocol';

// The same rule as protocol's probeChain, as a worker script (a worker cannot load this package's
// TypeScript under the test runner); the probe test checks the two agree.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { hash } = require('node:crypto');
const { seed, chain, steps, every } = workerData;
const input = Buffer.alloc(seed.length + 4);
input.set(seed, 0);
input.writeUInt32BE(chain >>> 0, seed.length);
let h = hash('sha256', input, 'buffer');
const buf = Buffer.alloc(36);
h.copy(buf, 0);
buf.writeUInt32BE(chain >>> 0, 32);
const n = Math.floor(steps / every);
const out = Buffer.alloc(n * 32);
for (let k = 0; k < n; k++) {
  for (let i = 0; i < every; i++) {
    h = hash('sha256', buf, 'buffer');
    h.copy(buf, 0);
  }
  h.copy(out, k * 32);
}
parentPort.postMessage(out);
`;

function chainInWorker(seed: Uint8Array, chain: number, steps: number, every: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { seed, chain, steps, every } });
    w.once('message', (out: Uint8Array) => {
      resolve(out);
      void w.terminate();
    });
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`probe worker exited with code ${code}`));
    });
  });
}

/** What this machine says of itself: memory free now, disk free where the miner runs, GPUs seen. */
export function selfReport(dir = process.cwd()): { memoryMb: number; diskMb: number; gpus: number } {
  let diskMb = 0;
  try {
    const s = statfsSync(dir);
    diskMb = Math.floor((s.bavail * s.bsize) / (1024 * 1024));
  } catch {
    // unknown: 0, the cautious answer
  }
  let gpus = 0;
  try {
    if (existsSync('/dev')) gpus = readdirSync('/dev').filter((n) => /^nvidia\d+$/.test(n) || /^renderD\d+$/.test(n)).length;
  } catch {
    // none seen
  }
  return { memoryMb: Math.floor(freemem() / (1024 * 1024)), diskMb, gpus };
}

/** The answer to a probe: every chain in its own thread, at once. */
export async function answerProbe(f: Omit<ProbeFrame, 't' | 'v'>, opts: { inThread?: boolean; dir?: string } = {}): Promise<Omit<ProbedFrame, 't' | 'v'>> {
  const chains = await Promise.all(
    Array.from({ length: f.chains }, (_, c) => (opts.inThread === true ? Promise.resolve(probeChain(f.seed, c, f.steps, f.every)) : chainInWorker(f.seed, c, f.steps, f.every))),
  );
  const checkpoints = new Uint8Array(chains.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chains) {
    checkpoints.set(c, at);
    at += c.length;
  }
  if (at % PROBE_HASH_BYTES !== 0) throw new Error('probe chains of a partial hash');
  return { id: f.id, checkpoints, payload: f.payload, ...selfReport(opts.dir) };
}
