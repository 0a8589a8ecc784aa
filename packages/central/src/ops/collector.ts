/**
 * Central's view of its nodes for the operator dashboard: every `intervalMs` it asks each node of
 * the directory for its status (`urls.status`) and its request metrics (`/metrics` beside it), keeps
 * the latest status (miners, queues, firing alerts) and one sample per poll in a ring covering
 * `windowMs` (default 5 s for 1 h: 720 samples per node). A node that does not answer keeps its
 * last status, marked stale, and raises the `node_unreachable` alert at central.
 */
import type { Clock } from '../clock.js';
import type { NodeRecord } from '../store/store.js';
import { boundedGet } from './fetch-json.js';
import { parseRequestTotals } from './prom-text.js';
import { Ring, sampleOf, type OpsSample, type Reading } from './samples.js';
import { parseNodeStatus, type NodeOpsSnapshot } from './snapshot.js';

export interface OpsCollectorOptions {
  /** How often each node is polled, ms. Default 5000. 0 = never (tests call `pollAll`). */
  intervalMs?: number;
  /** How much history the charts keep, ms. Default 3 600 000 (1 h). */
  windowMs?: number;
  /** Per request, ms. Default 3000. */
  timeoutMs?: number;
  /** Largest status answer read, bytes. Default 4 MiB. */
  maxBytes?: number;
  /** CA certificate (PEM) trusted for nodes' https URLs. Default: the system's. */
  ca?: string | Buffer;
  /** Bearer token for the nodes' `/metrics`, when they require one. */
  metricsToken?: string;
}

export const OPS_DEFAULTS = { intervalMs: 5000, windowMs: 3_600_000, timeoutMs: 3000, maxBytes: 4 * 1024 * 1024 } as const;

export interface NodeView {
  nodeId: string;
  /** The last status read, or null if none was ever read. */
  latest: NodeOpsSnapshot | null;
  /** When `latest` was read (epoch ms), or null. */
  readAt: number | null;
  /** Whether the last poll failed. */
  stale: boolean;
  lastError: string | null;
  /** Whether the node's metrics could be read (latency needs them). */
  metrics: boolean;
}

interface NodeTrack {
  view: NodeView;
  ring: Ring<OpsSample>;
  prev: Reading | null;
  polling: boolean;
}

export class OpsCollector {
  private readonly nodes = new Map<string, NodeTrack>();
  private timer: NodeJS.Timeout | null = null;
  private readonly o: Required<Pick<OpsCollectorOptions, 'intervalMs' | 'windowMs' | 'timeoutMs' | 'maxBytes'>> & OpsCollectorOptions;

  constructor(private readonly deps: { listNodes: () => Promise<NodeRecord[]>; clock: Clock }, options: OpsCollectorOptions = {}) {
    this.o = { ...OPS_DEFAULTS, ...options };
    for (const k of ['intervalMs', 'windowMs', 'timeoutMs', 'maxBytes'] as const) {
      if (!Number.isInteger(this.o[k]) || this.o[k] < 0) throw new RangeError(`ops.${k} must be a non-negative integer (got ${String(this.o[k])})`);
    }
  }

  /** Samples kept per node. */
  get capacity(): number {
    return Math.max(1, Math.ceil(this.o.windowMs / Math.max(1, this.o.intervalMs || OPS_DEFAULTS.intervalMs)));
  }

  get intervalMs(): number {
    return this.o.intervalMs;
  }

  start(): void {
    if (this.o.intervalMs > 0 && this.timer === null) {
      void this.pollAll();
      (this.timer = setInterval(() => void this.pollAll(), this.o.intervalMs)).unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Polls every node of the directory once (nodes still busy with the last poll are skipped). */
  async pollAll(): Promise<void> {
    let nodes: NodeRecord[];
    try {
      nodes = await this.deps.listNodes();
    } catch {
      return;
    }
    const ids = new Set(nodes.map((n) => n.id));
    for (const id of this.nodes.keys()) if (!ids.has(id)) this.nodes.delete(id);
    await Promise.all(nodes.map((n) => this.poll(n)));
  }

  private track(id: string): NodeTrack {
    let t = this.nodes.get(id);
    if (t === undefined) {
      t = { view: { nodeId: id, latest: null, readAt: null, stale: true, lastError: null, metrics: false }, ring: new Ring(this.capacity), prev: null, polling: false };
      this.nodes.set(id, t);
    }
    return t;
  }

  private async poll(n: NodeRecord): Promise<void> {
    const t = this.track(n.id);
    if (t.polling) return;
    t.polling = true;
    const get = { timeoutMs: this.o.timeoutMs, maxBytes: this.o.maxBytes, ...(this.o.ca !== undefined ? { ca: this.o.ca } : {}) };
    try {
      const metricsUrl = new URL('/metrics', n.urls.status).toString();
      const [status, metrics] = await Promise.all([
        boundedGet(n.urls.status, get),
        boundedGet(metricsUrl, { ...get, ...(this.o.metricsToken ? { headers: { authorization: `Bearer ${this.o.metricsToken}` } } : {}) }).catch(() => null),
      ]);
      if (status.status !== 200) throw new Error(`GET ${n.urls.status} answered ${status.status}`);
      let json: unknown;
      try {
        json = JSON.parse(status.body);
      } catch {
        throw new Error(`GET ${n.urls.status} did not answer JSON`);
      }
      const snap = parseNodeStatus(json);
      const totals = metrics !== null && metrics.status === 200 ? parseRequestTotals(metrics.body) : null;
      const reading: Reading = { t: this.deps.clock.now(), snap, totals };
      // A node restarted (counters went back) or lost its metrics: start the rates afresh.
      const prev = t.prev !== null && (t.prev.totals === null) === (totals === null) && snap.broker.completed >= t.prev.snap.broker.completed ? t.prev : null;
      t.ring.push(sampleOf(prev, reading));
      t.prev = reading;
      t.view = { nodeId: n.id, latest: snap, readAt: reading.t, stale: false, lastError: null, metrics: totals !== null };
    } catch (err) {
      t.view = { ...t.view, stale: true, lastError: (err as Error).message.slice(0, 300) };
    } finally {
      t.polling = false;
    }
  }

  view(nodeId: string): NodeView | undefined {
    return this.nodes.get(nodeId)?.view;
  }

  views(): NodeView[] {
    return [...this.nodes.values()].map((t) => t.view);
  }

  /** The node's samples newer than `since` (epoch ms), oldest first. */
  samples(nodeId: string, since = 0): OpsSample[] {
    const t = this.nodes.get(nodeId);
    return t === undefined ? [] : t.ring.toArray().filter((s) => s.t > since);
  }
}
