/**
 * Which cached packages go when the cache is over its budget: those not in use, least recently
 * used first, until the rest fits. Packages in use are never removed (the cache may then stay
 * over budget until they are unplaced).
 */
export interface CachedPackage {
  digest: string;
  bytes: number;
  /** When it was last placed or unplaced (any monotonic clock). */
  lastUsed: number;
  /** Instances running from it. */
  inUse: number;
}

/** The digests to remove, in order. */
export function evictions(entries: readonly CachedPackage[], budgetBytes: number): string[] {
  let total = entries.reduce((s, e) => s + e.bytes, 0);
  const out: string[] = [];
  const idle = entries.filter((e) => e.inUse === 0).sort((a, b) => a.lastUsed - b.lastUsed || (a.digest < b.digest ? -1 : 1));
  for (const e of idle) {
    if (total <= budgetBytes) break;
    out.push(e.digest);
    total -= e.bytes;
  }
  return out;
}
