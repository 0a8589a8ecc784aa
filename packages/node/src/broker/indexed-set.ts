/**
 * A set with O(1) add, delete and uniform random access by position (swap-remove), so the broker
 * can sample a member without walking the set. Iteration order is not insertion order.
 */
export class IndexedSet<T> {
  /** The members, densely packed; read-only for callers. */
  readonly items: T[] = [];
  private readonly pos = new Map<T, number>();

  get size(): number {
    return this.items.length;
  }

  has(x: T): boolean {
    return this.pos.has(x);
  }

  add(x: T): boolean {
    if (this.pos.has(x)) return false;
    this.pos.set(x, this.items.length);
    this.items.push(x);
    return true;
  }

  delete(x: T): boolean {
    const i = this.pos.get(x);
    if (i === undefined) return false;
    const last = this.items.pop()!;
    this.pos.delete(x);
    if (last !== x) {
      this.items[i] = last;
      this.pos.set(last, i);
    }
    return true;
  }

  /** Adds or deletes `x` so that membership equals `member`. */
  set(x: T, member: boolean): void {
    if (member) this.add(x);
    else this.delete(x);
  }
}
