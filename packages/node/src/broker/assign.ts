/**
 * The broker's assignment rule: which free miner gets the next work unit.
 *
 * The free set of a (DService, tier) queue: miners that serve the DService in that tier, are active,
 * not draining, and have a free slot (overall and for that DService). The broker keeps it as an
 * index updated whenever a miner's slots change (`indexed-set.ts`), so a pick never walks the pool.
 *
 * A miner's score is its expected completion time for the unit: its recent latency (EWMA) scaled by
 * how full it would be with this unit, `latency * (inFlight + 1) / slots`. A miner with no latency
 * history is scored with the mean latency of the others, so it gets work without jumping the queue.
 *
 * - A free set of at most `EXACT_LIMIT` miners: the lowest score wins; ties go to the miner with
 *   fewer units in flight, then to the lower id (deterministic) — `pickMiner`.
 * - A larger free set: two distinct miners are drawn uniformly at random and the lower score wins;
 *   ties go to fewer in flight, then to the first drawn ("power of two choices") — `pickSampled`.
 *   O(1), nothing allocated per miner. Why not the best of all: latency EWMAs of equally good
 *   miners differ by noise, so best-of-all hands every unit to the same few lucky miners while
 *   thousands earn nothing. Best of two spreads work over the whole free set (a miner's share falls
 *   with its rank: the slowest in the set never wins a draw) and keeps loads within O(log log n) of
 *   each other.
 * - Miners that already failed this unit are used only when no other miner is free; miners a
 *   replica excludes, and miners outside its account's data regions, are never used (the broker
 *   draws a fenced unit's picks from the free miners of its regions only: `Pool.freeIn`). Draws skip both; when `SAMPLE_TRIES` draws do not find two
 *   admissible miners the exact rule runs over the free set (only a unit that failed over, or a
 *   replica, in a pool mostly made of the miners it avoids).
 */
export interface AssignCandidate {
  id: string;
  slots: number;
  inFlight: number;
  /** EWMA of recent execution latency in ms; null when unknown. */
  latencyMs: number | null;
  active: boolean;
}

/** Free sets up to this size are scanned (exact rule); larger ones are sampled. */
export const EXACT_LIMIT = 8;
/** Draws a sampled pick makes to find two admissible miners before it falls back to a scan. */
export const SAMPLE_TRIES = 8;

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

/** How a sampled pick sees the members of a free set (the broker keeps one and retargets it). */
export interface SampleView<M> {
  /** Neither excluded nor avoided for the unit being placed. */
  admissible(m: M): boolean;
  /** Expected completion time (see above). */
  score(m: M): number;
  inFlight(m: M): number;
}

/**
 * The better of two distinct admissible members of `free` drawn uniformly at random, or null when
 * `SAMPLE_TRIES` draws did not find two (the caller then applies the exact rule).
 */
export function pickSampled<M>(free: readonly M[], random: () => number, view: SampleView<M>): M | null {
  return pickSampledIn(free.length, (i) => free[i]!, random, view);
}

/** `pickSampled` over `n` members read by position (`at`), e.g. several free sets one after another. */
export function pickSampledIn<M>(n: number, at: (i: number) => M, random: () => number, view: SampleView<M>): M | null {
  if (n < 2) return null;
  let a: M | undefined;
  let b: M | undefined;
  for (let t = 0; t < SAMPLE_TRIES && b === undefined; t++) {
    const m = at(Math.floor(random() * n));
    if (m === a || !view.admissible(m)) continue;
    if (a === undefined) a = m;
    else b = m;
  }
  if (a === undefined || b === undefined) return null;
  const sa = view.score(a);
  const sb = view.score(b);
  if (sa !== sb) return sa < sb ? a : b;
  return view.inFlight(b) < view.inFlight(a) ? b : a;
}

/** A small fast deterministic generator in [0, 1) (xorshift32), so picks are reproducible in tests. */
export function xorshift(seed = 0x9e3779b9): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}
