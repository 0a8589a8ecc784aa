/**
 * The Grafana dashboard (ops/grafana/cgn.json) asks only for metrics CGN serves: every metric name
 * in its expressions is one that the node's, a miner's or central's registry exposes (a renamed
 * metric breaks this test, not an operator's dashboard).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { NodeMetrics } from '@cgn/node';
import { minerRegistry } from '@cgn/miner';
import { centralRegistry, type CentralService } from '@cgn/central';
import { ROOT } from '../integration/harness.js';

const PROMQL_WORDS = new Set(['sum', 'by', 'rate', 'increase', 'histogram_quantile', 'clamp_min', 'max', 'le', 'dservice', 'status', 'tier', 'state', 'use', 'outcome', 'result', 'miner', 'route', 'kind', 'node', 'job', 'instance']);

describe('ops/grafana/cgn.json', () => {
  it('uses only metric names that node, miner and central expose', async () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'ops/grafana/cgn.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
    const exprs = dash.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThan(20);
    const used = new Set(exprs.flatMap((e) => e.replace(/"[^"]*"/g, '').replace(/\[[^\]]*\]/g, '').match(/[a-z_][a-z0-9_]*/g) ?? []).filter((w) => w.includes('_') && !PROMQL_WORDS.has(w)));

    const nodeMetrics = new NodeMetrics({
      nodeId: 'n', broker: () => ({ miners: [], queues: [], counters: { submitted: 0, completed: 0, refusedQueueFull: 0, deadlineExceeded: 0, cancelled: 0, requeued: 0, failed: 0, minersLost: 0 } }),
      ledger: () => ({ records: 0, inserted: 0, duplicates: 0, batches: 0, lastBatchSize: 0, maxBatchSize: 0, lastCommitUs: 0, failedBatches: 0, failedRecords: 0, refused: 0, overdraftRefused: 0, pending: 0 }),
      isDService: () => true, draining: () => false,
    });
    const fakeMiner = Object.assign(new EventEmitter(), { minerId: 'ab'.repeat(32), status: () => ({ connected: true, slots: 1, inFlight: 0, workDone: 0, failures: 0, refused: 0, cancelled: 0, connects: 0, welcomes: 0, dservices: [] }) });
    const fakeCentral = { status: async () => ({ accounts: 0, users: 0, dservices: {}, nodes: {} }) } as unknown as CentralService;
    const registries = [nodeMetrics.registry, minerRegistry(fakeMiner as never), centralRegistry(fakeCentral, () => [])];
    const served = new Set<string>();
    for (const r of registries) {
      for (const m of await r.getMetricsAsJSON()) {
        served.add(m.name);
        if (m.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) served.add(m.name + s);
      }
    }
    // Central's request metrics are made with its HTTP server; named here as installCentralMetrics makes them.
    for (const n of ['cgn_central_http_requests_total', 'cgn_central_http_request_duration_seconds_bucket']) served.add(n);
    const missing = [...used].filter((n) => !served.has(n));
    expect(missing).toEqual([]);
  });
});

describe('ops/alerts.example.yaml', () => {
  it('loads, and shows every default as it is', async () => {
    const { loadAlertConfig, ALERT_DEFAULTS } = await import('@cgn/node');
    const c = loadAlertConfig(join(ROOT, 'ops/alerts.example.yaml'));
    expect(c.rules).toEqual(ALERT_DEFAULTS.rules);
    expect(c.intervalS).toBe(ALERT_DEFAULTS.intervalS);
    expect({ ...c.webhook, url: undefined }).toEqual({ ...ALERT_DEFAULTS.webhook, url: undefined });
  });
});
