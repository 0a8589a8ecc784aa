#!/usr/bin/env node
/**
 * What the operator dashboard costs central: a real central (SQLite in memory) polls K stand-in
 * nodes over real HTTP, each reporting M miners and a metrics page, for a full hour of samples
 * (the clock is moved 5 s per poll, so the hour takes seconds). Then it measures:
 *   - the time of one poll of all nodes (median over the last 50),
 *   - the bytes of GET /v1/ops/series for the hour and of an incremental poll (?since=last),
 *   - GET /v1/ops/overview and /v1/ops/miners latency (median of 50) and size,
 *   - central's heap growth over the hour of samples.
 *
 *   node bench/dashboard.mjs [--nodes 5] [--miners 1000]
 *
 * Prints one JSON line. Run `npx tsc -b` first (it uses the built packages).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { ARGON2_TEST, ManualClock, SqliteCentralStore, TEST_ADMIN, startCentral, testCall } from '@cgn/central';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}
const NODES = arg('nodes', 5);
const MINERS = arg('miners', 1000);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

let answered = 0;
const server = http.createServer((req, res) => {
  if (req.url === '/metrics') {
    answered += 500;
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end([
      `cgn_node_requests_total{dservice="echo",tier="open",status="200"} ${answered}`,
      ...['0.01', '0.1', '+Inf'].map((le, i) => `cgn_node_request_duration_seconds_bucket{dservice="echo",tier="open",le="${le}"} ${Math.round(answered * [0.5, 0.95, 1][i])}`),
      `cgn_node_request_duration_seconds_count{dservice="echo",tier="open"} ${answered}`,
    ].join('\n'));
  }
  const miners = Array.from({ length: MINERS }, (_, i) => ({ id: i.toString(16).padStart(64, '0'), tier: 'open', dservices: ['echo', 'mediagen'], slots: 4, inUse: i % 3, latencyMs: 12.5, draining: false, completed: 100 + i, failed: 0 }));
  const body = JSON.stringify({ node: { uptimeS: 1 }, miners, queues: [{ dservice: 'echo', tier: 'open', depth: 3, oldestMs: 120 }], counters: { broker: { completed: answered, failed: 0 } }, alerts: { firing: [] } });
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const clock = new ManualClock(Date.UTC(2026, 0, 1));
const central = await startCentral({
  port: 0, store: new SqliteCentralStore({ path: ':memory:' }), argon2: ARGON2_TEST, clock, bootstrapAdmin: TEST_ADMIN, ops: { intervalMs: 0 },
  http: { rateLimits: { perIp: { burst: 1e6, perSecond: 1e6 }, perPrincipal: { burst: 1e6, perSecond: 1e6 }, auth: { burst: 1e6, perSecond: 1e6 } } },
});
const token = (await testCall(central.url, null, 'POST', '/v1/auth/login', TEST_ADMIN)).body.token;
const sys = (await testCall(central.url, token, 'GET', '/v1/me')).body.account.id;
for (let i = 0; i < NODES; i++) {
  const r = await testCall(central.url, token, 'POST', '/v1/nodes', { id: `node-${i}`, operatorAccount: sys, region: `r-${i % 3}`, lat: 0, lon: 0, urls: { work: `${base}/v1/d/`, miner: 'ws://127.0.0.1:1', status: `${base}/v1/status`, central: 'wss://127.0.0.1:1' } });
  if (r.status !== 201) throw new Error(`add node: ${r.status}`);
}

global.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const pollMs = [];
const samples = central.ops.capacity;
for (let i = 0; i < samples; i++) {
  const t0 = performance.now();
  await central.ops.pollAll();
  pollMs.push(performance.now() - t0);
  clock.advance(5000);
}
global.gc?.();
const heapAfter = process.memoryUsage().heapUsed;

const timed = async (path, n = 50) => {
  const ms = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetch(central.url + path, { headers: { authorization: `Bearer ${token}` } });
    bytes = (await r.arrayBuffer()).byteLength;
    ms.push(performance.now() - t0);
    if (r.status !== 200) throw new Error(`${path}: ${r.status}`);
  }
  return { medianMs: Math.round(median(ms) * 100) / 100, bytes };
};
const full = await timed('/v1/ops/series', 10);
const last = central.ops.samples('node-0').at(-1).t;
const incremental = await timed(`/v1/ops/series?since=${last - 5000}`);
const overview = await timed('/v1/ops/overview');
const minersList = await timed('/v1/ops/miners', 10);

console.log(JSON.stringify({
  bench: 'dashboard', nodes: NODES, minersPerNode: MINERS, samplesPerNode: samples,
  pollAllMedianMs: Math.round(median(pollMs.slice(-50)) * 100) / 100,
  seriesHour: full, seriesIncremental: incremental, overview, miners: minersList,
  heapGrowthMiB: Math.round(((heapAfter - heapBefore) / 2 ** 20) * 10) / 10,
}));
await central.stop();
server.close();
