/**
 * The capability probe's work: sha256 hash chains. Chain `c` starts at
 * `h0 = sha256(seed || u32be(c))` and each link is `sha256(previous || u32be(c))`: the chain's
 * index in every step, so links of one chain spliced into another never check out. A miner returns the
 * links `every`, `2 every`, ..., `steps` of each chain (`ProbedFrame.checkpoints`). Computing them
 * takes `chains x steps` hashes, inherently sequential within a chain, so only parallel cores make
 * K chains as fast as one; checking one segment takes the node `every` hashes.
 */
import { hash } from 'node:crypto';

export const PROBE_HASH_BYTES = 32;

/** The first link of chain `chain` (before any step). */
export function probeChainStart(seed: Uint8Array, chain: number): Buffer {
  const input = Buffer.alloc(seed.length + 4);
  input.set(seed, 0);
  input.writeUInt32BE(chain >>> 0, seed.length);
  return hash('sha256', input, 'buffer');
}

/** `n` steps of chain `chain` from the link `from`. */
export function probeAdvance(from: Uint8Array, n: number, chain: number): Buffer {
  const buf = Buffer.alloc(PROBE_HASH_BYTES + 4);
  buf.set(from.subarray(0, PROBE_HASH_BYTES), 0);
  buf.writeUInt32BE(chain >>> 0, PROBE_HASH_BYTES);
  let h: Buffer = Buffer.from(from);
  for (let i = 0; i < n; i++) {
    h = hash('sha256', buf, 'buffer');
    h.copy(buf, 0);
  }
  return h;
}

/** Every `every`-th link of one chain, concatenated (what an honest miner returns for it). */
export function probeChain(seed: Uint8Array, chain: number, steps: number, every: number): Buffer {
  const n = Math.floor(steps / every);
  const out = Buffer.alloc(n * PROBE_HASH_BYTES);
  let h = probeChainStart(seed, chain);
  for (let k = 0; k < n; k++) {
    h = probeAdvance(h, every, chain);
    h.copy(out, k * PROBE_HASH_BYTES);
  }
  return out;
}
