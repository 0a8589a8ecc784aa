/**
 * The capability probe's arithmetic, without I/O: what to ask a miner, whether its answer is
 * honest, and what the timings say. A miner's advertised CPUs and bandwidth are claims; the probe
 * turns them into measurements the scheduler believes instead (the smaller of the two wins).
 *
 *   rtt        a probe with no work and no payload, timed by the node
 *   bandwidth  a payload of P bytes echoed: 2 P bytes moved in (t - rtt)
 *   one core   1 chain of S steps: t1 = its time - rtt
 *   K cores    K chains of S steps at once (K = claimed CPUs, capped): tK likewise
 *   cpus       the parallel speed-up K t1 / tK, rounded, within 1..K
 *
 * The rtt, one-core and K-core phases run `rounds` times each and the fastest counts: a miner can
 * only slow an answer down, never speed it up, so the minimum is the closest to the machine (and
 * to the network) and the least disturbed by noise. A fresh seed per round leaves nothing to
 * precompute. A speed no honest miner reaches (more than `maxHashesPerSecPerCore` on a chain,
 * i.e. the work was done elsewhere, faster, or not as asked) makes the probe implausible, which
 * counts like a failed probe. No more CPUs are credited than chains ran (at most `maxChains`,
 * at most the claim), whatever the claim.
 *
 * Each chain answer is spot-checked on a few random segments (`every` hashes each for the node):
 * a miner that skips or fakes links fails with high probability. Memory, disk and GPUs cannot be
 * checked this way: they are taken from the miner's own answer and marked self-reported.
 */
import { randomBytes } from 'node:crypto';
import { PROBE_HASH_BYTES, probeAdvance, probeChainStart, type ProbeFrame, type ProbedFrame } from '@cgn/protocol';
import type { Resources } from '@cgn/scheduler';

export interface ProbeOptions {
  /** Steps of each hash chain (about 3 µs each on one core). Default 30,000. */
  steps: number;
  /** Checkpoints per chain (steps / every). Default 100. */
  checkpoints: number;
  /** Most chains run at once, whatever the miner claims. Default 8. */
  maxChains: number;
  /** Segments of each chain answer the node recomputes (the first, the last, then random ones). Default 4. */
  segments: number;
  /** Bytes echoed to time the bandwidth. Default 1 MiB. */
  payloadBytes: number;
  /** Time one phase's answer may take, ms. Default 20,000. */
  timeoutMs: number;
  /** Time a whole probe may take (all phases and rounds), ms. Default 30,000. */
  deadlineMs: number;
  /** Rounds of the rtt, one-core and K-core phases; the fastest of each counts. Default 3. */
  rounds: number;
  /**
   * The fastest a core plausibly hashes a chain, hashes/s. The miner's JavaScript does about
   * 0.3-1 million on today's machines; default 4 million.
   */
  maxHashesPerSecPerCore: number;
  /** Miners waiting for a probe; a miner beyond counts as failed (`queue full`) until there is room. Default 1024. */
  maxQueue: number;
}

export const PROBE_DEFAULTS: ProbeOptions = {
  steps: 30_000, checkpoints: 100, maxChains: 8, segments: 4, payloadBytes: 1024 * 1024, timeoutMs: 20_000,
  deadlineMs: 30_000, rounds: 3, maxHashesPerSecPerCore: 4_000_000, maxQueue: 1024,
};

export type ProbePhase = 'rtt' | 'bandwidth' | 'one' | 'parallel';

export type ProbeRequest = Omit<ProbeFrame, 't' | 'v'>;

/** The probe of one phase (a fresh seed and id each time). */
export function probeRequest(id: string, phase: ProbePhase, chains: number, o: ProbeOptions): ProbeRequest {
  const work = phase === 'one' || phase === 'parallel';
  const steps = work ? o.steps - (o.steps % o.checkpoints) : 0;
  return {
    id,
    seed: randomBytes(32),
    chains: work ? chains : 0,
    steps,
    every: work ? steps / o.checkpoints : 1,
    payload: phase === 'bandwidth' ? randomBytes(o.payloadBytes) : new Uint8Array(0),
  };
}

/**
 * Why an answer is not the honest one for `req` (null: it checks out): the echoed payload, the
 * number of checkpoints, and `segments` random segments of each chain recomputed.
 */
export function verifyProbed(req: ProbeRequest, ans: Omit<ProbedFrame, 't' | 'v'>, segments: number, random: () => number = Math.random): string | null {
  if (ans.id !== req.id) return `answer to probe ${ans.id}, not ${req.id}`;
  if (Buffer.compare(Buffer.from(ans.payload.buffer, ans.payload.byteOffset, ans.payload.byteLength), Buffer.from(req.payload.buffer, req.payload.byteOffset, req.payload.byteLength)) !== 0) {
    return `the echoed payload differs from the ${req.payload.length} bytes sent`;
  }
  const perChain = req.chains === 0 ? 0 : req.steps / req.every;
  const want = req.chains * perChain * PROBE_HASH_BYTES;
  if (ans.checkpoints.length !== want) return `${ans.checkpoints.length / PROBE_HASH_BYTES} checkpoints, expected ${req.chains} chains x ${perChain}`;
  const cp = (chain: number, k: number) => ans.checkpoints.subarray((chain * perChain + k) * PROBE_HASH_BYTES, (chain * perChain + k + 1) * PROBE_HASH_BYTES);
  for (let chain = 0; chain < req.chains; chain++) {
    // The first link (it ties the chain to the seed) and the last always, then random ones.
    const picks = new Set<number>([0, perChain - 1]);
    while (picks.size < Math.min(segments, perChain)) picks.add(Math.floor(random() * perChain));
    for (const k of picks) {
      const from = k === 0 ? probeChainStart(req.seed, chain) : cp(chain, k - 1);
      if (!probeAdvance(from, req.every, chain).equals(cp(chain, k))) return `chain ${chain} is wrong at step ${(k + 1) * req.every}`;
    }
  }
  return null;
}

export interface ProbeTimings {
  rttMs: number;
  /** Round trip of the bandwidth echo, ms. */
  bandwidthMs: number;
  payloadBytes: number;
  /** One chain of `steps`, ms (round trip). */
  oneMs: number;
  /** `chains` chains at once, ms (round trip); undefined when only one chain was asked. */
  parallelMs?: number;
  chains: number;
  steps: number;
}

export interface Measurement {
  /** Parallel speed-up of the hash chains: the CPUs the miner really has (capped by the probe). */
  cpus: number;
  /** Hashes per second on one core. */
  hashesPerSec: number;
  bandwidthMbps: number;
  rttMs: number;
}

/** What the timings of an honest (verified) probe say. */
export function measure(t: ProbeTimings): Measurement {
  // Below a millisecond of work the clock says nothing: count it as one.
  const net = (ms: number) => Math.max(1, ms - t.rttMs);
  const one = net(t.oneMs);
  const cpus = t.parallelMs === undefined || t.chains <= 1 ? 1 : Math.min(t.chains, Math.max(1, Math.round((t.chains * one) / net(t.parallelMs))));
  const bits = 2 * t.payloadBytes * 8;
  return {
    cpus,
    hashesPerSec: Math.round((t.steps * 1000) / one),
    bandwidthMbps: Math.max(1, Math.min(1_000_000, Math.round(bits / 1000 / net(t.bandwidthMs)))),
    rttMs: Math.round(t.rttMs * 1000) / 1000,
  };
}

/**
 * Why timings no honest miner produces are implausible (null: plausible): a chain hashed faster
 * than a core can, alone or with the others at once.
 */
export function implausible(t: ProbeTimings, maxHashesPerSecPerCore: number): string | null {
  const net = (ms: number) => Math.max(1, ms - t.rttMs);
  const one = (t.steps * 1000) / net(t.oneMs);
  if (one > maxHashesPerSecPerCore) return `one chain hashed at ${Math.round(one)}/s, more than a core plausibly does (${maxHashesPerSecPerCore}/s)`;
  if (t.parallelMs !== undefined) {
    const each = (t.steps * 1000) / net(t.parallelMs);
    if (each > maxHashesPerSecPerCore) return `${t.chains} chains hashed at ${Math.round(each)}/s each, more than a core plausibly does (${maxHashesPerSecPerCore}/s)`;
  }
  return null;
}

/** The resources the scheduler believes measured: CPUs and bandwidth by the node, the rest self-reported. */
export function measuredResources(m: Measurement, self: { memoryMb: number; diskMb: number; gpus: number }): Resources {
  return { cpus: m.cpus, memoryMb: self.memoryMb, diskMb: self.diskMb, gpus: self.gpus, bandwidthMbps: m.bandwidthMbps };
}
