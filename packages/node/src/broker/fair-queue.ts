/**
 * The fair-queue rule: the queue of one (DService, tier) pair, shared among accounts by weighted
 * fair queueing (start-time fair queueing with one unit of cost per request).
 *
 * Each account has its own FIFO. An account's next request carries a virtual start tag: when the
 * account becomes backlogged, `max(V, its last finish)`; after each of its requests is served,
 * `+ 1 / weight`. The next request served is the head of the account with the smallest start tag
 * (ties: the account that got its tag first), and the queue's virtual time `V` becomes that tag.
 * So over any stretch in which accounts a and b both wait, the requests served for each, divided
 * by its weight, differ by at most `1/wa + 1/wb`: a request that is k-th in its account's queue
 * waits behind at most `floor(k * wb / wa) + 1` requests of any other account b, however many b
 * has queued (`fair-queue.test.ts` checks this on random arrival sequences).
 *
 * Work handed back by a failed miner (`unshift`) goes ahead of everyone: its turn was already
 * taken when it was first dispatched. Per dequeue: O(log accounts waiting) (a binary heap of the
 * accounts that have work), and nothing is allocated except the first time an account is seen.
 */
import { WorkQueue } from './queue.js';

interface Flow<T> {
  account: string;
  items: WorkQueue<T>;
  /** Start tag of the head request (meaningful while the flow is in the heap). */
  start: number;
  /** Finish tag of the last request served: where the flow resumes when it has work again. */
  finish: number;
  /** Tie-break: order in which flows got their current tag. */
  seq: number;
  /** Position in the heap; -1 when it has no work. */
  at: number;
}

export class FairQueue<T> {
  private readonly first = new WorkQueue<T>(4);
  private readonly flows = new Map<string, Flow<T>>();
  private readonly heap: Flow<T>[] = [];
  private vtime = 0;
  private seq = 0;
  private size = 0;
  /** Bumped by every push and unshift: a reader that saw the same value knows nothing was added since. */
  version = 0;

  constructor(
    private readonly accountOf: (item: T) => string,
    private readonly weightOf: (account: string) => number = () => 1,
  ) {}

  get length(): number {
    return this.size;
  }

  /** Accounts with queued work (excluding work handed back). */
  get accountsWaiting(): number {
    return this.heap.length;
  }

  /** Queued requests of one account (excluding work handed back). */
  depthOf(account: string): number {
    return this.flows.get(account)?.items.length ?? 0;
  }

  /**
   * The oldest queued request of one account for which `live` holds; those before it (ended while
   * they waited) are dropped without charging the account.
   */
  oldestOf(account: string, live: (item: T) => boolean): T | undefined {
    const f = this.flows.get(account);
    if (f === undefined || f.at < 0) return undefined;
    for (let head = f.items.peek(); head !== undefined; head = f.items.peek()) {
      if (live(head)) return head;
      f.items.shift();
      this.size--;
      if (f.items.length === 0) this.detach(f);
    }
    return undefined;
  }

  /** A new request: at the back of its account's FIFO. */
  push(item: T): void {
    this.version++;
    const account = this.accountOf(item);
    let f = this.flows.get(account);
    if (f === undefined) {
      f = { account, items: new WorkQueue<T>(4), start: 0, finish: 0, seq: 0, at: -1 };
      this.flows.set(account, f);
    }
    f.items.push(item);
    this.size++;
    if (f.at < 0) {
      f.start = f.finish > this.vtime ? f.finish : this.vtime;
      f.seq = this.seq++;
      f.at = this.heap.length;
      this.heap.push(f);
      this.up(f.at);
    }
  }

  /** Work handed back: served before anything else, most recently handed back first. */
  unshift(item: T): void {
    this.version++;
    this.first.unshift(item);
    this.size++;
  }

  /** The request `shift` would return. */
  peek(): T | undefined {
    if (this.first.length > 0) return this.first.peek();
    return this.heap.length === 0 ? undefined : this.heap[0]!.items.peek();
  }

  /** Serves the next request, charging its account one unit. */
  shift(): T | undefined {
    if (this.first.length > 0) {
      this.size--;
      return this.first.shift();
    }
    if (this.heap.length === 0) return undefined;
    const f = this.heap[0]!;
    this.vtime = f.start;
    const item = f.items.shift();
    this.size--;
    this.charge(f);
    return item;
  }

  /**
   * Removes the head without charging its account (a request that ended while it waited: its
   * account's next request keeps the turn).
   */
  dropHead(): T | undefined {
    if (this.first.length > 0) {
      this.size--;
      return this.first.shift();
    }
    if (this.heap.length === 0) return undefined;
    const f = this.heap[0]!;
    const item = f.items.shift();
    this.size--;
    if (f.items.length === 0) this.detach(f);
    return item;
  }

  /** Removes `item` wherever it is, charging its account (it is being served out of turn). O(n). */
  remove(item: T): boolean {
    if (this.first.remove(item)) {
      this.size--;
      return true;
    }
    const f = this.flows.get(this.accountOf(item));
    if (f === undefined || !f.items.remove(item)) return false;
    this.size--;
    this.charge(f);
    return true;
  }

  /** Handed-back work, then each waiting account's requests (not exactly service order). */
  *[Symbol.iterator](): IterableIterator<T> {
    yield* this.first;
    for (const f of this.heap) yield* f.items;
  }

  private charge(f: Flow<T>): void {
    const w = this.weightOf(f.account);
    f.finish = f.start + 1 / (w > 0 ? w : 1);
    if (f.items.length === 0) return this.detach(f);
    f.start = f.finish;
    f.seq = this.seq++;
    this.down(f.at);
  }

  private detach(f: Flow<T>): void {
    const i = f.at;
    const last = this.heap.pop()!;
    f.at = -1;
    if (last === f) return;
    this.heap[i] = last;
    last.at = i;
    this.down(i);
    this.up(last.at);
  }

  private less(a: Flow<T>, b: Flow<T>): boolean {
    return a.start < b.start || (a.start === b.start && a.seq < b.seq);
  }

  private up(i: number): void {
    const h = this.heap;
    const f = h[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(f, h[p]!)) break;
      h[i] = h[p]!;
      h[i]!.at = i;
      i = p;
    }
    h[i] = f;
    f.at = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const f = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.less(h[c + 1]!, h[c]!)) c++;
      if (!this.less(h[c]!, f)) break;
      h[i] = h[c]!;
      h[i]!.at = i;
      i = c;
    }
    h[i] = f;
    f.at = i;
  }
}
