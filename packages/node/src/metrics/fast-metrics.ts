/**
 * A labelled counter and histogram for the request path, registered in a prom-client Registry as
 * custom metrics (an object with `name`, `help`, `type` and `get()`, the form prom-client's own
 * metrics take). Why not prom-client's: its label children still validate and hash their labels
 * on every `inc`/`observe` (~1-2 µs each, measured); here a child is a plain object whose
 * `observe` is a few array writes, and all formatting waits for the scrape.
 */
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

export interface CounterChild {
  inc(by?: number): void;
}

export interface HistogramChild {
  observe(value: number): void;
}

/** Index of the first bound ≥ v (bounds.length for +Inf). Linear: bucket lists are short. */
function bucketOf(bounds: readonly number[], v: number): number {
  let i = 0;
  while (i < bounds.length && v > bounds[i]!) i++;
  return i;
}

export class FastCounter {
  readonly type = 'counter';
  private readonly children = new Map<string, { labels: Labels; n: number }>();

  constructor(readonly name: string, readonly help: string, private readonly labelNames: readonly string[], registry: Registry) {
    registry.registerMetric(this as never);
  }

  /** The child for these label values (in `labelNames` order); keep it: it is the cheap part. */
  child(...values: string[]): CounterChild {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (c === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      c = { labels, n: 0 };
      this.children.set(key, c);
    }
    const cell = c;
    return { inc: (by = 1) => void (cell.n += by) };
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values: [...this.children.values()].map((c) => ({ labels: c.labels, value: c.n })) };
  }

  reset(): void {
    this.children.clear();
  }
}

export class FastHistogram {
  readonly type = 'histogram';
  private readonly children = new Map<string, { labels: Labels; counts: Float64Array; sum: number; count: number }>();

  constructor(readonly name: string, readonly help: string, private readonly labelNames: readonly string[], private readonly bounds: readonly number[], registry: Registry) {
    registry.registerMetric(this as never);
  }

  child(...values: string[]): HistogramChild {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (c === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      c = { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.children.set(key, c);
    }
    const cell = c;
    const bounds = this.bounds;
    return {
      observe: (v: number) => {
        cell.counts[bucketOf(bounds, v)]! += 1;
        cell.sum += v;
        cell.count += 1;
      },
    };
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    for (const c of this.children.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += c.counts[i]!;
        values.push({ labels: { le: i < this.bounds.length ? String(this.bounds[i]) : '+Inf', ...c.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: c.labels, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: c.labels, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: 'sum', values };
  }

  reset(): void {
    this.children.clear();
  }
}
