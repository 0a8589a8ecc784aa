/**
 * The bound on a charge: what the node bills for a work unit is what it can vouch for itself,
 * never the miner's word alone.
 *
 * - **CPU time** billed is at most the execution time the node measured (work frame sent to
 *   result received) times the DService's declared `resources.cpus`. A miner reporting more is
 *   clipped to that; the record keeps both figures (`cpuUs` billed, `reportedCpuUs` reported)
 *   and the clip is counted against the miner (`/v1/status` → `meteringClips`).
 * - **Execution time** recorded is the node's measurement.
 * - **Bytes** in and out are what the node read from the DApp and wrote back.
 * - **Price** is at most the reservation made before the work ran (`NodeBilling.maxPrice`: the
 *   body, the DService's largest answer and its whole deadline of CPU), so a charge never exceeds
 *   what admission checked the account could pay.
 */
import { RecentMap } from './recent-map.js';

export interface MeteringReport {
  /** CPU time the miner reported, µs. */
  reportedCpuUs: number;
  /** Execution time the node measured, µs. */
  nodeExecUs: number;
  /** The DService's declared CPUs (`resources.cpus`). */
  cpus: number;
}

export interface BoundMetering {
  /** CPU time billed, µs: min(reported, node-measured execution x cpus). */
  cpuUs: number;
  /** Execution time recorded, µs (the node's measurement). */
  execUs: number;
  /** True when the report was above the bound and was clipped. */
  clipped: boolean;
}

export function boundMetering(m: MeteringReport): BoundMetering {
  const ceiling = Math.floor(Math.max(0, m.nodeExecUs) * Math.max(0, m.cpus));
  const reported = Math.max(0, Math.floor(m.reportedCpuUs));
  return { cpuUs: Math.min(reported, ceiling), execUs: Math.max(0, Math.round(m.nodeExecUs)), clipped: reported > ceiling };
}

/**
 * Whether a clipped report is a lie rather than measurement noise: more than twice the bound and
 * 10 ms of CPU above it. Such a report counts as a fault against the miner (three within ten
 * minutes quarantine it, see the node's `miner-faults.ts`); a small excess is only clipped.
 */
export function isGrossOverReport(reportedCpuUs: number, billedCpuUs: number): boolean {
  return reportedCpuUs > 2 * billedCpuUs && reportedCpuUs - billedCpuUs > 10_000;
}

/** The price charged: at most the reservation's ceiling. */
export function boundPrice(priceMicros: bigint, maxPriceMicros: bigint): bigint {
  return priceMicros < maxPriceMicros ? priceMicros : maxPriceMicros;
}

/** Per-miner tally of clipped reports, bounded in memory (most recent miners kept). */
export class MeteringClips {
  private readonly byMiner: RecentMap<string, { clips: number; reportedUs: number; billedUs: number }>;
  total = 0;

  constructor(maxEntries = 10_000) {
    this.byMiner = new RecentMap(maxEntries);
  }

  record(minerId: string, reportedUs: number, billedUs: number): void {
    this.total++;
    const e = this.byMiner.touch(minerId, () => ({ clips: 0, reportedUs: 0, billedUs: 0 }));
    e.clips++;
    e.reportedUs += reportedUs;
    e.billedUs += billedUs;
  }

  top(limit = 20): { miner: string; clips: number; reportedCpuUs: number; billedCpuUs: number }[] {
    return [...this.byMiner.entries()]
      .sort((a, b) => b[1].clips - a[1].clips)
      .slice(0, limit)
      .map(([miner, e]) => ({ miner: miner.slice(0, 16), clips: e.clips, reportedCpuUs: e.reportedUs, billedCpuUs: e.billedUs }));
  }
}
