/**
 * The node's Prometheus metrics (`GET /metrics`). Most are read at scrape time from counters the
 * node keeps anyway (broker, ledger writer, tunnels): a scrape costs a snapshot, a request costs
 * nothing extra. Only what needs a distribution is observed as it happens: one counter increment
 * and up to three histogram observations per answered request (label children cached, and plain
 * array writes: fast-metrics.ts), and two histogram observations per ledger commit (not per record;
 * the same plain array writes).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { TIERS, type Tier } from '@cgn/protocol';
import { FastCounter, FastHistogram, type CounterChild, type HistogramChild } from './fast-metrics.js';
import type { GroupCommitCounters } from '@cgn/ledger';
import type { BrokerCounters } from '../broker/broker.js';
import type { RedundancyCounters } from '../broker/redundancy.js';

/** What the node reads at scrape time (the same figures `/v1/status` shows). */
export interface NodeMetricSources {
  nodeId: string;
  /** The broker's snapshot (miners, queues, counters, redundancy). */
  broker: () => {
    miners: readonly { tier: Tier; slots: number; inUse: number; draining: boolean }[];
    queues: readonly { dservice: string; tier: Tier; depth: number; accounts: number; oldestMs: number }[];
    counters: BrokerCounters;
    redundancy?: RedundancyCounters;
  };
  ledger: () => GroupCommitCounters;
  /** Registered DService names: only these become label values (a stranger's path cannot add series). */
  isDService: (name: string) => boolean;
  draining: () => boolean;
}

/** Seconds: from 1 ms to a minute (work deadlines are up to minutes). */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const COMMIT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/** Label value for a request whose DService is not one this node routes to (unbounded names stay out). */
export const OTHER_DSERVICE = '_other';

export interface RequestTiming {
  queueS: number;
  execS: number;
  totalS: number;
}

interface TimingChildren {
  queue: HistogramChild;
  exec: HistogramChild;
  total: HistogramChild;
}

/** Minimal memo so that the collect() of several metrics in one scrape shares one broker snapshot. */
function memo<T>(read: () => T, ms: number): () => T {
  let at = -Infinity;
  let value: T;
  return () => {
    const now = performance.now();
    if (now - at > ms) {
      value = read();
      at = now;
    }
    return value;
  };
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly requests: FastCounter;
  private readonly queueSeconds: FastHistogram;
  private readonly execSeconds: FastHistogram;
  private readonly totalSeconds: FastHistogram;
  private readonly commitSeconds: HistogramChild;
  private readonly batchSize: HistogramChild;
  private readonly requestChildren = new Map<string, Map<number, CounterChild>>();
  private readonly timingChildren = new Map<string, TimingChildren>();
  /** Answers so far, and those with a 5xx status (the error-rate alert reads them). */
  readonly tally = { answered: 0, serverErrors: 0 };

  constructor(private readonly sources: NodeMetricSources, options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: sources.nodeId });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const snap = memo(sources.broker, 50);

    const r = this.registry;
    this.requests = new FastCounter('cgn_node_requests_total', 'Work requests answered, by DService, tier and HTTP status (the node\'s own refusals included; DService "_other" for names it does not route)', ['dservice', 'tier', 'status'], r);
    this.queueSeconds = new FastHistogram('cgn_node_request_queue_seconds', 'Time answered work waited in the broker queue', ['dservice', 'tier'], LATENCY_BUCKETS, r);
    this.execSeconds = new FastHistogram('cgn_node_request_execution_seconds', 'Execution time of answered work as the node measured it (sent to result)', ['dservice', 'tier'], LATENCY_BUCKETS, r);
    this.totalSeconds = new FastHistogram('cgn_node_request_duration_seconds', 'Total time of answered work, from received to answer (ledger commit included)', ['dservice', 'tier'], LATENCY_BUCKETS, r);

    new Gauge({
      name: 'cgn_node_queue_depth', help: 'Units queued per DService and tier', labelNames: ['dservice', 'tier'], registers,
      collect() {
        this.reset();
        for (const q of snap().queues) this.set({ dservice: q.dservice, tier: q.tier }, q.depth);
      },
    });
    new Gauge({
      name: 'cgn_node_queue_oldest_age_seconds', help: 'Age of the oldest queued unit per DService and tier (0 when empty)', labelNames: ['dservice', 'tier'], registers,
      collect() {
        this.reset();
        for (const q of snap().queues) this.set({ dservice: q.dservice, tier: q.tier }, q.oldestMs / 1000);
      },
    });
    new Gauge({
      name: 'cgn_node_queue_accounts_waiting', help: 'Accounts with work queued per DService and tier', labelNames: ['dservice', 'tier'], registers,
      collect() {
        this.reset();
        for (const q of snap().queues) this.set({ dservice: q.dservice, tier: q.tier }, q.accounts);
      },
    });
    new Gauge({
      name: 'cgn_node_miners', help: 'Connected miners by tier and state (idle: no work, busy: some work, draining)', labelNames: ['tier', 'state'], registers,
      collect() {
        this.reset();
        const n = new Map<string, number>();
        for (const t of TIERS) for (const s of ['idle', 'busy', 'draining']) n.set(`${t}/${s}`, 0);
        for (const m of snap().miners) {
          const k = `${m.tier}/${m.draining ? 'draining' : m.inUse > 0 ? 'busy' : 'idle'}`;
          n.set(k, n.get(k)! + 1);
        }
        for (const [k, v] of n) {
          const [tier, state] = k.split('/') as [string, string];
          this.set({ tier, state }, v);
        }
      },
    });
    new Gauge({
      name: 'cgn_node_miner_slots', help: 'Work slots of connected miners by tier, and how many are in use', labelNames: ['tier', 'use'], registers,
      collect() {
        this.reset();
        for (const t of TIERS) for (const use of ['total', 'in_use']) this.set({ tier: t, use }, 0);
        for (const m of snap().miners) {
          this.inc({ tier: m.tier, use: 'total' }, m.slots);
          this.inc({ tier: m.tier, use: 'in_use' }, m.inUse);
        }
      },
    });
    const brokerCounter = (name: string, help: string, pick: (c: BrokerCounters) => number): void => {
      new Counter({
        name, help, registers,
        collect() {
          this.reset();
          this.inc(pick(snap().counters));
        },
      });
    };
    brokerCounter('cgn_node_miners_lost_total', 'Miners that left the pool while connected (closed, failed, ack timeout)', (c) => c.minersLost);
    brokerCounter('cgn_node_failovers_total', 'Work units put back to the head of the queue to run on another miner (miner fault)', (c) => c.requeued);
    brokerCounter('cgn_node_work_submitted_total', 'Work units the broker accepted', (c) => c.submitted);
    brokerCounter('cgn_node_work_completed_total', 'Work units a miner completed', (c) => c.completed);
    brokerCounter('cgn_node_work_failed_total', 'Work units that failed (the DService could not run them)', (c) => c.failed);
    brokerCounter('cgn_node_work_deadline_exceeded_total', 'Work units past their deadline (504)', (c) => c.deadlineExceeded);
    brokerCounter('cgn_node_work_cancelled_total', 'Work units cancelled (the client left)', (c) => c.cancelled);
    brokerCounter('cgn_node_queue_refused_total', 'Work refused past the queue depth/age threshold (503)', (c) => c.refusedQueueFull);
    new Counter({
      name: 'cgn_node_verifications_total', help: 'Open-tier redundant runs by outcome (agreed, disputed: a third replica ran, unconfirmed: no majority) and requests answered without a check (unchecked)', labelNames: ['outcome'], registers,
      collect() {
        this.reset();
        const r = snap().redundancy;
        this.inc({ outcome: 'agreed' }, r?.agreed ?? 0);
        this.inc({ outcome: 'disputed' }, r?.disputes ?? 0);
        this.inc({ outcome: 'unconfirmed' }, r?.unconfirmed ?? 0);
        this.inc({ outcome: 'unchecked' }, r?.unchecked ?? 0);
      },
    });
    new Counter({
      name: 'cgn_node_verification_cheaters_total', help: 'Disputes a majority settled: a miner proven to have returned a wrong result', registers,
      collect() {
        this.reset();
        this.inc(snap().redundancy?.cheatersProven ?? 0);
      },
    });

    // Observed between a commit and the answers waiting on it (on the path of every request at one
    // connection): plain array writes, not prom-client's observe (label validation, ~1-3 µs each).
    this.commitSeconds = new FastHistogram('cgn_ledger_commit_seconds', 'Duration of one ledger group commit (one transaction)', [], COMMIT_BUCKETS, r).child();
    this.batchSize = new FastHistogram('cgn_ledger_commit_batch_size', 'Records per ledger group commit', [], BATCH_BUCKETS, r).child();
    const ledger = memo(sources.ledger, 50);
    new Counter({
      name: 'cgn_ledger_records_total', help: 'Records the ledger writer handled, by result (inserted, duplicate: already recorded, overdraft_refused)', labelNames: ['result'], registers,
      collect() {
        this.reset();
        const c = ledger();
        this.inc({ result: 'inserted' }, c.inserted);
        this.inc({ result: 'duplicate' }, c.duplicates);
        this.inc({ result: 'overdraft_refused' }, c.overdraftRefused);
      },
    });
    new Counter({
      name: 'cgn_ledger_failed_commits_total', help: 'Ledger commits that failed (their records were not charged and their requests got a retryable error)', registers,
      collect() {
        this.reset();
        this.inc(ledger().failedBatches);
      },
    });
    new Gauge({
      name: 'cgn_ledger_pending_records', help: 'Records buffered or being committed now', registers,
      collect() {
        this.set(ledger().pending);
      },
    });
    new Gauge({
      name: 'cgn_node_draining', help: '1 while the node drains (refuses new work)', registers,
      collect() {
        this.set(sources.draining() ? 1 : 0);
      },
    });
  }

  /** One answered request (any status). `timing` for work a miner ran; null for the node's own refusals. */
  request(dservice: string, tier: Tier | string, status: number, timing: RequestTiming | null): void {
    const ds = this.sources.isDService(dservice) ? dservice : OTHER_DSERVICE;
    const t = TIERS.includes(tier as Tier) ? tier : 'unknown';
    const tk = `${ds}\u0000${t}`;
    // One small map per (DService, tier) holds its children by status: no string built per status.
    let byStatus = this.requestChildren.get(tk);
    if (byStatus === undefined) this.requestChildren.set(tk, (byStatus = new Map()));
    let c = byStatus.get(status);
    if (c === undefined) byStatus.set(status, (c = this.requests.child(ds, t, String(status))));
    c.inc();
    this.tally.answered++;
    if (status >= 500) this.tally.serverErrors++;
    if (timing === null) return;
    let h = this.timingChildren.get(tk);
    if (h === undefined) {
      h = { queue: this.queueSeconds.child(ds, t), exec: this.execSeconds.child(ds, t), total: this.totalSeconds.child(ds, t) };
      this.timingChildren.set(tk, h);
    }
    h.queue.observe(timing.queueS);
    h.exec.observe(timing.execS);
    h.total.observe(timing.totalS);
  }

  /** One ledger group commit. */
  commit(batchSize: number, commitUs: number): void {
    this.batchSize.observe(batchSize);
    this.commitSeconds.observe(commitUs / 1e6);
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
