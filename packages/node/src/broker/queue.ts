/**
 * FIFO queue of work units for one (DService, tier) pair: a growable ring buffer with O(1)
 * push at the back, push at the head (for work handed back by a failed miner) and shift.
 */
export class WorkQueue<T> {
  private items: (T | undefined)[];
  private head = 0;
  private size = 0;

  constructor(initialCapacity = 16) {
    this.items = new Array<T | undefined>(Math.max(2, initialCapacity));
  }

  get length(): number {
    return this.size;
  }

  /** Appends at the back (normal arrival order). */
  push(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size) % this.items.length] = item;
    this.size++;
  }

  /** Inserts at the head: the next `shift` returns it (requeued work goes first). */
  unshift(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.head = (this.head - 1 + this.items.length) % this.items.length;
    this.items[this.head] = item;
    this.size++;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.size--;
    return item;
  }

  peek(): T | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  /** Removes `item` wherever it is (O(n); for units skipped at the head). Returns whether it was there. */
  remove(item: T): boolean {
    const n = this.items.length;
    for (let i = 0; i < this.size; i++) {
      if (this.items[(this.head + i) % n] !== item) continue;
      for (let j = i; j < this.size - 1; j++) this.items[(this.head + j) % n] = this.items[(this.head + j + 1) % n];
      this.items[(this.head + this.size - 1) % n] = undefined;
      this.size--;
      return true;
    }
    return false;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.size; i++) yield this.items[(this.head + i) % this.items.length] as T;
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.items.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) % this.items.length];
    this.items = next;
    this.head = 0;
  }
}
