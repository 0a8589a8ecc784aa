/**
 * The broker's assignment rule: which free miner gets the next work unit.
 *
 * Among miners that serve the DService in the unit's tier, are active and have a free slot, pick
 * the one with the lowest expected completion time: its recent latency (EWMA) scaled by how
 * full it would be with this unit, `latency * (inFlight + 1) / slots`. Ties go to the miner with
 * fewer units in flight, then to the lower id (deterministic). A miner with no latency history
 * is scored with the mean latency of the others, so it gets work without jumping the queue.
 * Miners that already failed this unit are used only when no other miner is free.
 */
export interface AssignCandidate {
  id: string;
  slots: number;
  inFlight: number;
  /** EWMA of recent execution latency in ms; null when unknown. */
  latencyMs: number | null;
  active: boolean;
}

export function expectedCompletion(c: AssignCandidate, fallbackLatencyMs: number): number {
  const latency = c.latencyMs ?? fallbackLatencyMs;
  return (Math.max(latency, 0.001) * (c.inFlight + 1)) / c.slots;
}

export function pickMiner<C extends AssignCandidate>(candidates: Iterable<C>, avoid: readonly string[] | null = null): C | null {
  let known = 0;
  let sum = 0;
  const free: C[] = [];
  for (const c of candidates) {
    if (!c.active || c.inFlight >= c.slots) continue;
    free.push(c);
    if (c.latencyMs !== null) {
      known++;
      sum += c.latencyMs;
    }
  }
  if (free.length === 0) return null;
  const fallback = known > 0 ? sum / known : 1;
  let best: C | null = null;
  let bestScore = Infinity;
  let bestAvoided = true;
  for (const c of free) {
    const avoided = avoid !== null && avoid.includes(c.id);
    const score = expectedCompletion(c, fallback);
    const better =
      best === null ||
      (bestAvoided && !avoided) ||
      (bestAvoided === avoided &&
        (score < bestScore || (score === bestScore && (c.inFlight < best.inFlight || (c.inFlight === best.inFlight && c.id < best.id)))));
    if (better) {
      best = c;
      bestScore = score;
      bestAvoided = avoided;
    }
  }
  return best;
}
