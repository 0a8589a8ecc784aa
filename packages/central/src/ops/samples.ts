/**
 * One sample per node per poll for the dashboard's charts, derived from two consecutive readings
 * of the node's counters (throughput and error rates are differences over the interval), kept in a
 * fixed-size ring: memory is bounded by nodes x capacity whatever happens.
 */
import type { NodeOpsSnapshot } from './snapshot.js';
import { quantileBetween, type RequestTotals } from './prom-text.js';

export interface OpsSample {
  /** Epoch ms of the reading. */
  t: number;
  /** Work answered per second over the interval (from the node's metrics; broker completions without them). */
  throughput: number;
  /** Answers with a 5xx status per second (broker failures without metrics). */
  errors: number;
  /** Latency of answered work over the interval, ms; null without metrics or without answers. */
  p50Ms: number | null;
  p95Ms: number | null;
  /** Queued work units over all queues, and the oldest one's age (ms). */
  queued: number;
  oldestMs: number;
  miners: number;
  slots: number;
  busy: number;
}

export interface Reading {
  t: number;
  snap: NodeOpsSnapshot;
  totals: RequestTotals | null;
}

const perS = (a: number, b: number, dtS: number): number => (dtS > 0 && b >= a ? Math.round(((b - a) / dtS) * 1000) / 1000 : 0);
const ms = (s: number | null): number | null => (s === null ? null : Math.round(s * 1e5) / 100);

/** The sample for `cur`, given the previous reading (null for the first: rates are then 0). */
export function sampleOf(prev: Reading | null, cur: Reading): OpsSample {
  const s = cur.snap;
  const gauges = {
    queued: s.queues.reduce((n, q) => n + q.depth, 0),
    oldestMs: s.queues.reduce((n, q) => Math.max(n, q.oldestMs), 0),
    miners: s.minersTotal,
    slots: s.miners.reduce((n, m) => n + (m.draining ? 0 : m.slots), 0),
    busy: s.miners.reduce((n, m) => n + m.inUse, 0),
  };
  if (prev === null || cur.t <= prev.t) return { t: cur.t, throughput: 0, errors: 0, p50Ms: null, p95Ms: null, ...gauges };
  const dtS = (cur.t - prev.t) / 1000;
  if (prev.totals !== null && cur.totals !== null) {
    const a = prev.totals;
    const b = cur.totals;
    return {
      t: cur.t,
      throughput: perS(a.answered, b.answered, dtS),
      errors: perS(a.byClass['5xx'] ?? 0, b.byClass['5xx'] ?? 0, dtS),
      p50Ms: ms(quantileBetween(a.buckets, b.buckets, 0.5)),
      p95Ms: ms(quantileBetween(a.buckets, b.buckets, 0.95)),
      ...gauges,
    };
  }
  return {
    t: cur.t,
    throughput: perS(prev.snap.broker.completed, s.broker.completed, dtS),
    errors: perS(prev.snap.broker.failed, s.broker.failed, dtS),
    p50Ms: null,
    p95Ms: null,
    ...gauges,
  };
}

/** A fixed-capacity ring, oldest first when read. */
export class Ring<T> {
  private readonly items: (T | undefined)[];
  private start = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('ring capacity must be a positive integer');
    this.items = new Array<T | undefined>(capacity);
  }

  push(x: T): void {
    if (this.size < this.capacity) {
      this.items[(this.start + this.size) % this.capacity] = x;
      this.size++;
    } else {
      this.items[this.start] = x;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  get length(): number {
    return this.size;
  }

  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.items[(this.start + i) % this.capacity]!);
    return out;
  }

  last(): T | undefined {
    return this.size === 0 ? undefined : this.items[(this.start + this.size - 1) % this.capacity];
  }
}
