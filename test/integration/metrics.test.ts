/**
 * Prometheus metrics over real sockets: the node's GET /metrics moves by exactly the requests
 * sent (by DService, tier and status; latency histograms; ledger commits), a metrics token is
 * enforced, a real miner process serves its own metrics on loopback, and central answers too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCentral, type TestCentral } from '@cgn/central';
import { ECHO, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

/** One sample line of the text exposition format: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples of `name` whose labels include `match`. */
function value(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Sample[]> {
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

describe('metrics', () => {
  let t: TestNode;
  const miners: MinerProcess[] = [];
  const tmp = tempDir();

  beforeAll(async () => {
    t = await startTestNode();
    miners.push(spawnMiner(t.node.minerUrl, tmp.path, { name: 'a', dservices: [ECHO], args: ['--metrics-port', '0'] }));
    await waitFor(() => minersOf(t.node).length === 1, 'the miner to join');
  });

  afterAll(async () => {
    for (const m of miners) m.kill('SIGKILL');
    await t.cleanup();
    tmp.cleanup();
  });

  it('counts requests by DService, tier and status, and observes their latencies and ledger commits', async () => {
    const metricsUrl = t.node.metricsUrl;
    expect(metricsUrl).toMatch(/\/metrics$/);
    const before = await scrape(metricsUrl);
    const N = 12;
    const answers = await Promise.all(Array.from({ length: N }, (_, i) => fetch(t.url('echo', `/m${i}`), { method: 'POST', body: `x${i}`, headers: { authorization: `Bearer ${t.apiKey}` } })));
    for (const a of answers) {
      expect(a.status).toBe(200);
      await a.arrayBuffer();
    }
    const unknown = await fetch(t.url('no-such-dservice', '/'), { headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(unknown.status).toBe(404);
    const noKey = await fetch(t.url('echo', '/'), { method: 'POST', body: 'x' });
    expect(noKey.status).toBe(401);
    const after = await scrape(metricsUrl);

    const moved = (name: string, match: Record<string, string> = {}): number => value(after, name, match) - value(before, name, match);
    expect(moved('cgn_node_requests_total', { dservice: 'echo', tier: 'open', status: '200' })).toBe(N);
    expect(moved('cgn_node_requests_total', { dservice: '_other', status: '404' })).toBe(1);
    expect(moved('cgn_node_requests_total', { dservice: 'echo', status: '401' })).toBe(1);
    for (const h of ['cgn_node_request_queue_seconds', 'cgn_node_request_execution_seconds', 'cgn_node_request_duration_seconds']) {
      expect(moved(`${h}_count`, { dservice: 'echo', tier: 'open' }), h).toBe(N);
      // Every observation falls in the +Inf bucket, and the sum grows by a plausible amount.
      expect(moved(`${h}_bucket`, { dservice: 'echo', tier: 'open', le: '+Inf' }), h).toBe(N);
      expect(moved(`${h}_sum`, { dservice: 'echo', tier: 'open' }), h).toBeGreaterThanOrEqual(0);
      expect(moved(`${h}_sum`, { dservice: 'echo', tier: 'open' }), h).toBeLessThan(N * 30);
    }
    // Each answer was committed before it left: the batches hold exactly N more records.
    expect(moved('cgn_ledger_commit_batch_size_sum')).toBe(N);
    expect(moved('cgn_ledger_commit_seconds_count')).toBe(moved('cgn_ledger_commit_batch_size_count'));
    expect(moved('cgn_ledger_commit_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(moved('cgn_ledger_records_total', { result: 'inserted' })).toBe(N);
    expect(moved('cgn_node_work_completed_total')).toBe(N);
    expect(value(after, 'cgn_node_miners', { tier: 'open' })).toBe(1);
    expect(value(after, 'cgn_node_miner_slots', { tier: 'open', use: 'total' })).toBeGreaterThan(0);
    expect(value(after, 'cgn_node_queue_depth', { dservice: 'echo', tier: 'open' })).toBe(0);
    // Process metrics, labelled with the node id.
    expect(after.some((s) => s.name === 'process_cpu_seconds_total' && s.labels['node'] === 'node-local-1')).toBe(true);
    expect(after.some((s) => s.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('serves the miner\'s own metrics on loopback (--metrics-port 0 logs its URL)', async () => {
    let url = '';
    await waitFor(() => {
      const m = /"metricsUrl":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(miners[0]!.stderr());
      if (m !== null) url = m[1]!;
      return m !== null;
    }, 'the miner to log its metrics URL');
    await waitFor(async () => value(await scrape(url), 'cgn_miner_work_done_total') >= 12, 'the miner to count the work it did');
    const s = await scrape(url);
    expect(value(s, 'cgn_miner_connected')).toBe(1);
    expect(value(s, 'cgn_miner_dservice_state', { dservice: 'echo', state: 'ready' })).toBe(1);
    expect(value(s, 'cgn_miner_work_execution_seconds_count')).toBe(value(s, 'cgn_miner_work_done_total'));
    expect(s.some((x) => x.name === 'process_resident_memory_bytes')).toBe(true);
  });

  it('needs the token when the node was given one', async () => {
    const guarded = await startTestNode({ metricsToken: 's3cret-metrics' });
    try {
      const none = await fetch(guarded.node.metricsUrl);
      expect(none.status).toBe(401);
      expect(none.headers.get('content-type')).toBe('application/problem+json');
      expect((await fetch(guarded.node.metricsUrl, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      const ok = await scrape(guarded.node.metricsUrl, { authorization: 'Bearer s3cret-metrics' });
      expect(ok.some((s) => s.name === 'cgn_node_requests_total' || s.name === 'cgn_node_miners')).toBe(true);
    } finally {
      await guarded.cleanup();
    }
  });
});

describe('central metrics', () => {
  let central: TestCentral;
  beforeAll(async () => {
    central = await startTestCentral();
  });
  afterAll(async () => {
    await central.stop();
  });

  it('counts API requests by route pattern and status and reads the store at scrape time', async () => {
    const before = parseExposition(await (await fetch(`${central.url}/metrics`)).text());
    const r = await central.admin.call('GET', '/v1/accounts');
    expect(r.status).toBe(200);
    await fetch(`${central.url}/v1/nowhere-${Date.now()}`);
    const res = await fetch(`${central.url}/metrics`);
    expect(res.status).toBe(200);
    const after = parseExposition(await res.text());
    const moved = (name: string, match: Record<string, string>): number => value(after, name, match) - value(before, name, match);
    expect(moved('cgn_central_http_requests_total', { method: 'GET', route: '/v1/accounts', status: '200' })).toBe(1);
    expect(moved('cgn_central_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1);
    expect(value(after, 'cgn_central_objects', { kind: 'users' })).toBeGreaterThanOrEqual(1);
    expect(after.some((s) => s.name === 'process_cpu_seconds_total')).toBe(true);
  });
});

describe('central metrics with a token', () => {
  it('refuses /metrics without it', async () => {
    const central = await startTestCentral({ http: { metricsToken: 'm-token', rateLimits: { perIp: { burst: 1000, perSecond: 1000 } } } });
    try {
      expect((await fetch(`${central.url}/metrics`)).status).toBe(401);
      expect((await fetch(`${central.url}/metrics`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
      const ok = await fetch(`${central.url}/metrics`, { headers: { authorization: 'Bearer m-token' } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toMatch(/^cgn_central_node_links\{state="open"\} 0$/m);
    } finally {
      await central.stop();
    }
  });
});
