/**
 * A map that keeps at most `max` entries, forgetting the least recently touched first: per-miner
 * tallies whose keys a stranger chooses (fresh miner keys cost nothing) stay bounded in memory.
 */
export class RecentMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly max: number) {}

  /** The entry for `key` (made by `make` when absent), now the most recent one. */
  touch(key: K, make: () => V): V {
    let v = this.map.get(key);
    if (v === undefined) {
      if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as K);
      v = make();
    } else {
      this.map.delete(key);
    }
    this.map.set(key, v);
    return v;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  entries(): IterableIterator<[K, V]> {
    return this.map.entries();
  }
}
