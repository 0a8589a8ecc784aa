/**
 * The CPU ceiling, applied by lowering the slots the miner advertises: with C% of N CPUs the
 * miner takes at most as many units at once as fit in N×C/100 CPUs, given each DService's
 * declared CPUs per unit (each unit's own cgroup still holds it to that). At least one unit
 * always fits, so a ceiling slows the miner down but never takes it out of the pool.
 */

export interface SlotInput {
  /** The machine's CPUs. */
  cpus: number;
  /** The slots the miner was started with. */
  slots: number;
  /** Each DService's declared CPUs per unit and its own concurrency. */
  dservices: readonly { name: string; cpus: number; concurrency: number }[];
}

export interface SlotLimit {
  /** Slots to advertise in total. */
  total: number;
  /** Slots per DService. */
  perDService: Record<string, number>;
}

/** The slots to advertise under a ceiling of `ceilingPct` percent; null at 100% (no limit). */
export function slotsUnderCeiling(ceilingPct: number, input: SlotInput): SlotLimit | null {
  if (ceilingPct >= 100) return null;
  const allowed = (input.cpus * Math.max(1, ceilingPct)) / 100;
  const perDService: Record<string, number> = {};
  let widest = 0;
  for (const d of input.dservices) {
    const per = d.cpus > 0 ? d.cpus : 1;
    const n = Math.max(1, Math.min(d.concurrency, input.slots, Math.floor(allowed / per + 1e-9)));
    perDService[d.name] = n;
    widest = Math.max(widest, n);
  }
  const smallest = input.dservices.reduce((m, d) => Math.min(m, d.cpus > 0 ? d.cpus : 1), Infinity);
  const byCpu = Number.isFinite(smallest) ? Math.floor(allowed / smallest + 1e-9) : Math.floor(allowed);
  const total = Math.max(1, Math.min(input.slots, byCpu));
  return { total, perDService };
}
