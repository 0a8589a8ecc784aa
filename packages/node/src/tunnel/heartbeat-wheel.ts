/**
 * One timer for every connection's heartbeat. Members are spread over `buckets` buckets; each tick
 * (every `periodMs / buckets`) visits one bucket, so each member is visited once per `periodMs` and
 * the work of a period is spread over it instead of landing in one turn. Joining and leaving are
 * O(1).
 */
export class HeartbeatWheel<T> {
  private readonly buckets: Set<T>[];
  private readonly where = new Map<T, Set<T>>();
  private next = 0;
  private turn = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly periodMs: number,
    buckets: number,
    private readonly visit: (members: Iterable<T>, now: number) => void,
  ) {
    this.buckets = Array.from({ length: Math.max(1, Math.floor(buckets)) }, () => new Set<T>());
  }

  get size(): number {
    return this.where.size;
  }

  add(member: T): void {
    if (this.where.has(member)) return;
    const bucket = this.buckets[this.next]!;
    this.next = (this.next + 1) % this.buckets.length;
    bucket.add(member);
    this.where.set(member, bucket);
  }

  delete(member: T): void {
    const bucket = this.where.get(member);
    if (bucket === undefined) return;
    bucket.delete(member);
    this.where.delete(member);
  }

  /** Visits the next bucket (the timer calls this; tests may too). */
  tick(now: number): void {
    const bucket = this.buckets[this.turn]!;
    this.turn = (this.turn + 1) % this.buckets.length;
    // A copy: `visit` may drop members.
    if (bucket.size > 0) this.visit([...bucket], now);
  }

  start(now: () => number = Date.now): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(now()), this.periodMs / this.buckets.length);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/** Buckets for a period: about one tick per 50 ms, at most 20. */
export function heartbeatBuckets(periodMs: number): number {
  return Math.max(1, Math.min(20, Math.floor(periodMs / 50)));
}
