/**
 * CPU time per request inside one DService process, when requests overlap.
 *
 * The process's CPU counter (`process.cpuUsage()`) is all a DService can read; measured around
 * one request it also counts every other request that ran meanwhile, so with four requests in
 * flight each would report the whole process's time and the sum would be four times what was
 * used. The method here: the counter is read whenever a request starts or ends; the CPU time
 * used between two readings is shared equally among the requests in flight during that interval.
 * A request's CPU time is the sum of its shares. The shares of all requests add up to the CPU
 * time the process used while any request was in flight (nothing is counted twice), and a request
 * running alone gets exactly the process's time.
 *
 * Equal shares are exact for requests that keep the CPU equally busy and an approximation
 * otherwise (a request that waits on I/O gets part of a busy neighbour's time); per-request
 * counters do not exist in one process, and the bound that matters for billing is the sum.
 */

/** Reads the process's CPU time so far, µs (user + system). */
export type CpuClock = () => number;

export const processCpuClock: CpuClock = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

export class CpuAttribution {
  /** CPU µs attributed so far to each request in flight. */
  private readonly shares = new Map<number, number>();
  private last: number;
  private nextId = 0;

  constructor(private readonly clock: CpuClock = processCpuClock) {
    this.last = clock();
  }

  /** Shares the CPU used since the last reading among the requests in flight. */
  private settle(): void {
    const now = this.clock();
    const used = Math.max(0, now - this.last);
    this.last = now;
    const n = this.shares.size;
    if (n === 0 || used === 0) return;
    const each = used / n;
    for (const [id, s] of this.shares) this.shares.set(id, s + each);
  }

  /** A request starts: returns its handle. */
  start(): number {
    this.settle();
    const id = this.nextId++;
    this.shares.set(id, 0);
    return id;
  }

  /** A request ends: its CPU time, whole µs. */
  end(id: number): number {
    this.settle();
    const s = this.shares.get(id) ?? 0;
    this.shares.delete(id);
    return Math.round(s);
  }

  get inFlight(): number {
    return this.shares.size;
  }
}
