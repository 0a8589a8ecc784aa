/**
 * A binary min-heap of items ordered by a number (a time): `push` and `popUntil` are O(log n), so a
 * sweep visits only what is due instead of every entry.
 */
export class DeadlineHeap<T> {
  private readonly keys: number[] = [];
  private readonly items: T[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(key: number, item: T): void {
    const keys = this.keys;
    const items = this.items;
    let i = keys.length;
    keys.push(key);
    items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (keys[p]! <= key) break;
      keys[i] = keys[p]!;
      items[i] = items[p]!;
      i = p;
    }
    keys[i] = key;
    items[i] = item;
  }

  /** The smallest key, or Infinity when empty. */
  peekKey(): number {
    return this.keys.length === 0 ? Infinity : this.keys[0]!;
  }

  /** Removes and returns the item with the smallest key (undefined when empty). */
  pop(): T | undefined {
    const keys = this.keys;
    const items = this.items;
    const n = keys.length;
    if (n === 0) return undefined;
    const top = items[0]!;
    const lastKey = keys.pop()!;
    const lastItem = items.pop()!;
    if (n === 1) return top;
    const size = n - 1;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const r = l + 1;
      const c = r < size && keys[r]! < keys[l]! ? r : l;
      if (keys[c]! >= lastKey) break;
      keys[i] = keys[c]!;
      items[i] = items[c]!;
      i = c;
    }
    keys[i] = lastKey;
    items[i] = lastItem;
    return top;
  }

  /** Removes every item whose key satisfies `due(key)` (tested on the smallest first), smallest key first. */
  popWhile(due: (key: number) => boolean, visit: (item: T, key: number) => void): void {
    while (this.keys.length > 0 && due(this.keys[0]!)) {
      const key = this.keys[0]!;
      visit(this.pop()!, key);
    }
  }
}
