import { describe, expect, it } from 'vitest';
import { NodeMetrics, OTHER_DSERVICE, type NodeMetricSources } from './node-metrics.js';
import { metricsAccess } from './access.js';

type Json = Awaited<ReturnType<NodeMetrics['registry']['getMetricsAsJSON']>>;

function sources(over: Partial<ReturnType<NodeMetricSources['broker']>> = {}): NodeMetricSources {
  return {
    nodeId: 'n1',
    broker: () => ({
      miners: [
        { tier: 'open', slots: 4, inUse: 0, draining: false },
        { tier: 'open', slots: 2, inUse: 1, draining: false },
        { tier: 'dedicated', slots: 8, inUse: 3, draining: true },
      ],
      queues: [{ dservice: 'echo', tier: 'open', depth: 5, accounts: 2, oldestMs: 1500 }],
      counters: { submitted: 10, completed: 7, refusedQueueFull: 1, deadlineExceeded: 0, cancelled: 0, requeued: 2, failed: 1, minersLost: 3 },
      redundancy: { runs: 4, agreed: 3, disputes: 1, cheatersProven: 1, unconfirmed: 0, unchecked: 9, extraExecutions: 5, extraCpuUs: 100 },
      ...over,
    }),
    ledger: () => ({ records: 7, inserted: 6, duplicates: 1, batches: 3, lastBatchSize: 2, maxBatchSize: 4, lastCommitUs: 100, failedBatches: 0, failedRecords: 0, refused: 0, overdraftRefused: 0, pending: 0 }),
    isDService: (n) => n === 'echo',
    draining: () => false,
  };
}

const find = (json: Json, name: string) => json.find((m) => m.name === name)!;
const sample = (json: Json, name: string, labels: Record<string, string | number>) =>
  (find(json, name).values as { labels: Record<string, string | number>; value: number; metricName?: string }[]).find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;

describe('NodeMetrics', () => {
  it('reads the broker and the ledger at scrape time', async () => {
    const m = new NodeMetrics(sources(), { defaultMetrics: false });
    const json = await m.registry.getMetricsAsJSON();
    expect(sample(json, 'cgn_node_miners', { tier: 'open', state: 'idle' })).toBe(1);
    expect(sample(json, 'cgn_node_miners', { tier: 'open', state: 'busy' })).toBe(1);
    expect(sample(json, 'cgn_node_miners', { tier: 'dedicated', state: 'draining' })).toBe(1);
    expect(sample(json, 'cgn_node_miners', { tier: 'attested', state: 'idle' })).toBe(0);
    expect(sample(json, 'cgn_node_miner_slots', { tier: 'open', use: 'total' })).toBe(6);
    expect(sample(json, 'cgn_node_miner_slots', { tier: 'open', use: 'in_use' })).toBe(1);
    expect(sample(json, 'cgn_node_queue_depth', { dservice: 'echo', tier: 'open' })).toBe(5);
    expect(sample(json, 'cgn_node_queue_oldest_age_seconds', { dservice: 'echo', tier: 'open' })).toBe(1.5);
    expect(sample(json, 'cgn_node_miners_lost_total', {})).toBe(3);
    expect(sample(json, 'cgn_node_failovers_total', {})).toBe(2);
    expect(sample(json, 'cgn_node_verifications_total', { outcome: 'disputed' })).toBe(1);
    expect(sample(json, 'cgn_node_verification_cheaters_total', {})).toBe(1);
    expect(sample(json, 'cgn_ledger_records_total', { result: 'duplicate' })).toBe(1);
    // A counter read again is not added twice.
    const again = await m.registry.getMetricsAsJSON();
    expect(sample(again, 'cgn_node_miners_lost_total', {})).toBe(3);
  });

  it('counts requests by label, keeping unknown DService names out of the labels', async () => {
    const m = new NodeMetrics(sources(), { defaultMetrics: false });
    m.request('echo', 'open', 200, { queueS: 0.001, execS: 0.01, totalS: 0.02 });
    m.request('echo', 'open', 200, { queueS: 0.002, execS: 0.02, totalS: 0.03 });
    m.request('random-1', 'open', 404, null);
    m.request('random-2', 'open', 404, null);
    m.request('echo', 'bogus-tier', 400, null);
    m.commit(3, 250);
    const json = await m.registry.getMetricsAsJSON();
    expect(sample(json, 'cgn_node_requests_total', { dservice: 'echo', tier: 'open', status: '200' })).toBe(2);
    expect(sample(json, 'cgn_node_requests_total', { dservice: OTHER_DSERVICE, tier: 'open', status: '404' })).toBe(2);
    expect(sample(json, 'cgn_node_requests_total', { dservice: 'echo', tier: 'unknown', status: '400' })).toBe(1);
    const exec = find(json, 'cgn_node_request_execution_seconds').values as { labels: Record<string, string | number>; value: number; metricName: string }[];
    expect(exec.find((v) => v.metricName.endsWith('_count'))!.value).toBe(2);
    expect(exec.find((v) => v.metricName.endsWith('_sum'))!.value).toBeCloseTo(0.03);
    const batch = find(json, 'cgn_ledger_commit_batch_size').values as { value: number; metricName: string }[];
    expect(batch.find((v) => v.metricName.endsWith('_sum'))!.value).toBe(3);
  });

  it('shares one broker snapshot among the metrics of a scrape', async () => {
    let reads = 0;
    const s = sources();
    const m = new NodeMetrics({ ...s, broker: () => (reads++, s.broker()) }, { defaultMetrics: false });
    await m.registry.metrics();
    expect(reads).toBe(1);
  });
});

describe('metricsAccess', () => {
  it('is open without a token and checks the bearer token with one', () => {
    expect(metricsAccess(null)(undefined)).toBe(true);
    const check = metricsAccess('tok');
    expect(check(undefined)).toBe(false);
    expect(check('Bearer nope')).toBe(false);
    expect(check('Basic tok')).toBe(false);
    expect(check('Bearer tok')).toBe(true);
    expect(check('bearer  tok ')).toBe(true);
  });
});
