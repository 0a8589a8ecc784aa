/**
 * The dashboard's pure parts (status parsing against hostile answers, the metrics reader and its
 * quantiles, samples and the ring, the miner and alert views) and the collector against real HTTP
 * servers that answer well, badly and not at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseRequestTotals, quantileBetween } from './prom-text.js';
import { Ring, sampleOf } from './samples.js';
import { OPS_LIMITS, parseNodeStatus, NodeStatusError } from './snapshot.js';
import { OpsCollector } from './collector.js';
import { alertsOf, effectiveHealth, minerRows } from './views.js';
import { isExplorerTxUrl } from './routes.js';
import type { MinerRecord, NodeRecord } from '../store/store.js';
import { ManualClock } from '../clock.js';

const miner = (id: string, extra: Record<string, unknown> = {}) => ({ id, tier: 'open', dservices: ['echo'], slots: 2, inUse: 0, latencyMs: 12.5, draining: false, completed: 3, failed: 0, ...extra });
const status = (extra: Record<string, unknown> = {}) => ({
  node: { id: 'n1', uptimeS: 10, draining: false },
  miners: [miner('m1'), miner('m2', { inUse: 1, tier: 'dedicated' })],
  queues: [{ dservice: 'echo', tier: 'open', depth: 3, accounts: 1, oldestMs: 250 }],
  counters: { broker: { submitted: 10, completed: 8, failed: 1, refusedQueueFull: 0, deadlineExceeded: 0, minersLost: 0 } },
  alerts: { firing: [{ key: 'miners_lost', rule: 'miners_lost', severity: 'critical', summary: 'miners lost: 0 connected', since: '2026-01-01T00:00:00.000Z' }], webhook: {} },
  ...extra,
});

const metricsText = (ok: number, err: number, buckets: [string, number][], sum: number) => [
  '# HELP cgn_node_requests_total x',
  '# TYPE cgn_node_requests_total counter',
  `cgn_node_requests_total{node="n1",dservice="echo",tier="open",status="200"} ${ok}`,
  `cgn_node_requests_total{node="n1",dservice="echo",tier="open",status="503"} ${err}`,
  ...buckets.map(([le, c]) => `cgn_node_request_duration_seconds_bucket{node="n1",dservice="echo",tier="open",le="${le}"} ${c}`),
  `cgn_node_request_duration_seconds_sum{node="n1",dservice="echo",tier="open"} ${sum}`,
  `cgn_node_request_duration_seconds_count{node="n1",dservice="echo",tier="open"} ${buckets[buckets.length - 1]![1]}`,
  'process_cpu_seconds_total 1.5',
].join('\n');

describe('parseNodeStatus', () => {
  it('keeps the fields the dashboard needs', () => {
    const s = parseNodeStatus(status());
    expect(s.miners.map((m) => m.id)).toEqual(['m1', 'm2']);
    expect(s.queues[0]).toEqual({ dservice: 'echo', tier: 'open', depth: 3, oldestMs: 250 });
    expect(s.broker.completed).toBe(8);
    expect(s.alerts?.[0]?.rule).toBe('miners_lost');
  });

  it('bounds what it keeps from a node that reports too much', () => {
    const many = Array.from({ length: OPS_LIMITS.miners + 50 }, (_, i) => miner(`m${i}`));
    const s = parseNodeStatus(status({ miners: many, alerts: { firing: Array.from({ length: 500 }, () => ({ key: 'k', rule: 'r', severity: 'bogus', summary: 'x'.repeat(10_000), since: 'now' })) } }));
    expect(s.miners.length).toBe(OPS_LIMITS.miners);
    expect(s.minersTotal).toBe(OPS_LIMITS.miners + 50);
    expect(s.alerts!.length).toBe(OPS_LIMITS.alerts);
    expect(s.alerts![0]!.summary.length).toBeLessThanOrEqual(OPS_LIMITS.text + 1);
    expect(s.alerts![0]!.severity).toBe('warning');
  });

  it('refuses malformed answers with a reason, and never throws anything else', () => {
    expect(() => parseNodeStatus('nope')).toThrow(NodeStatusError);
    expect(() => parseNodeStatus(status({ miners: [miner('x', { tier: 'gold' })] }))).toThrow(/miners\[0\]\.tier/);
    expect(() => parseNodeStatus(status({ miners: [miner('x', { slots: -1 })] }))).toThrow(/slots/);
    fc.assert(fc.property(fc.anything(), (x) => {
      try {
        parseNodeStatus(x);
      } catch (err) {
        expect(err).toBeInstanceOf(NodeStatusError);
      }
    }));
  });
});

describe('the metrics reader', () => {
  it('sums requests by status class and the latency histogram over labels', () => {
    const t = parseRequestTotals(metricsText(90, 10, [['0.01', 50], ['0.1', 90], ['+Inf', 100]], 3));
    expect(t.byClass).toEqual({ '2xx': 90, '5xx': 10 });
    expect(t.answered).toBe(100);
    expect(t.count).toBe(100);
    expect(t.buckets).toEqual([[0.01, 50], [0.1, 90], [Infinity, 100]]);
  });

  it('interpolates quantiles between two readings', () => {
    const a: [number, number][] = [[0.01, 0], [0.1, 0], [Infinity, 0]];
    const b: [number, number][] = [[0.01, 50], [0.1, 100], [Infinity, 100]];
    expect(quantileBetween(a, b, 0.5)).toBeCloseTo(0.01);
    expect(quantileBetween(a, b, 0.75)).toBeCloseTo(0.055);
    expect(quantileBetween(b, b, 0.5)).toBeNull();
  });

  it('a quantile lies within the histogram\'s finite bounds (property)', () => {
    fc.assert(fc.property(fc.array(fc.nat(1000), { minLength: 3, maxLength: 3 }), fc.double({ min: 0, max: 1, noNaN: true }), (incs, q) => {
      const bounds = [0.01, 0.1, Infinity];
      let c = 0;
      const after = bounds.map((le, i) => [le, (c += incs[i]!)] as [number, number]);
      const v = quantileBetween(bounds.map((le) => [le, 0]), after, q);
      if (c === 0) expect(v).toBeNull();
      else expect(v! >= 0 && v! <= 0.1).toBe(true);
    }));
  });
});

describe('samples and the ring', () => {
  it('rates are differences over the interval', () => {
    const snap = parseNodeStatus(status());
    const t1 = parseRequestTotals(metricsText(90, 10, [['0.01', 50], ['0.1', 90], ['+Inf', 100]], 3));
    const t2 = parseRequestTotals(metricsText(140, 20, [['0.01', 100], ['0.1', 150], ['+Inf', 160]], 5));
    const s = sampleOf({ t: 0, snap, totals: t1 }, { t: 5000, snap, totals: t2 });
    expect(s.throughput).toBe(12);
    expect(s.errors).toBe(2);
    expect(s.p50Ms).toBeCloseTo(6); // 30th of 60 new answers, 50 of them under 10 ms
    expect(s.queued).toBe(3);
    expect(s.miners).toBe(2);
    expect(s.busy).toBe(1);
    expect(sampleOf(null, { t: 5000, snap, totals: t2 }).throughput).toBe(0);
  });

  it('the ring keeps the last `capacity` items in order (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.integer(), { maxLength: 100 }), (cap, xs) => {
      const r = new Ring<number>(cap);
      for (const x of xs) r.push(x);
      expect(r.toArray()).toEqual(xs.slice(-cap));
      expect(r.last()).toBe(xs[xs.length - 1]);
    }));
  });
});

const nodeRec = (id: string, statusUrl: string): NodeRecord => ({
  id, operatorAccount: 'sys', region: 'eu-west', lat: 0, lon: 0, urls: { work: '', miner: '', status: statusUrl, central: '' }, health: 'up', lastSeenAt: 0, draining: false, capacity: {}, createdAt: 0,
});

describe('a node\'s health on the dashboard', () => {
  it('is the link\'s word, except that polls fill in an unknown one and a node central cannot read is down', () => {
    const view = (stale: boolean, lastError: string | null) => ({ nodeId: 'n', latest: null, readAt: null, stale, lastError, metrics: false });
    expect(effectiveHealth('unknown', view(false, null))).toBe('up');
    expect(effectiveHealth('degraded', view(false, null))).toBe('degraded');
    expect(effectiveHealth('up', view(true, 'ECONNREFUSED'))).toBe('down');
    expect(effectiveHealth('unknown', view(true, null))).toBe('unknown'); // not polled yet
    expect(effectiveHealth('up', undefined)).toBe('up');
  });
});

describe('the explorer link template', () => {
  it('is an http(s) URL with {tx}', () => {
    expect(isExplorerTxUrl('https://etherscan.io/tx/{tx}')).toBe(true);
    expect(isExplorerTxUrl('http://127.0.0.1:4000/tx/{tx}')).toBe(true);
    for (const bad of ['javascript:alert(1)//{tx}', 'https://etherscan.io/tx/', 'data:text/html,{tx}', 'https://a b/{tx}']) expect(isExplorerTxUrl(bad), bad).toBe(false);
  });
});

describe('the views', () => {
  it('lists connected miners with their node and region, and registered ones as offline', () => {
    const nodes = [nodeRec('n1', 'http://x/v1/status')];
    const views = new Map([['n1', { nodeId: 'n1', latest: parseNodeStatus(status()), readAt: 1, stale: false, lastError: null, metrics: true }]]);
    const reg: MinerRecord[] = [
      { id: 'm1', accountId: 'acc', name: 'rig-1', tier: 'open', attestationKey: null, createdAt: 0, createdBy: 'u', revokedAt: null },
      { id: 'm9', accountId: 'acc', name: 'rig-9', tier: 'open', attestationKey: null, createdAt: 0, createdBy: 'u', revokedAt: null },
    ];
    const rows = minerRows(nodes, views, reg);
    expect(rows.map((r) => [r.id, r.name, r.nodeId, r.region, r.state])).toEqual([
      ['m1', 'rig-1', 'n1', 'eu-west', 'idle'], ['m2', null, 'n1', 'eu-west', 'busy'], ['m9', 'rig-9', null, null, 'offline'],
    ]);
    const alerts = alertsOf(nodes, new Map([['n1', { ...views.get('n1')!, stale: true, lastError: 'connect ECONNREFUSED' }]]), 0);
    // Both critical: the older first (central's since is when it last read the node).
    expect(alerts.map((a) => [a.source, a.rule])).toEqual([['central', 'node_unreachable'], ['node:n1', 'miners_lost']]);
  });
});

describe('the collector over HTTP', () => {
  // Two servers: the good node's metrics counter is its own (the others' /metrics is the other server's).
  const servers: http.Server[] = [];
  let base = '';
  let other = '';
  const counters = new Map<number, number>();
  beforeAll(async () => {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const url = req.url ?? '';
      if (url === '/good/v1/status' || url === '/v1/status') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(status()));
      }
      if (url === '/metrics') {
        const port = req.socket.localPort!;
        // The second server's metrics need a token, like a node started with --metrics-token.
        if (port === Number(new URL(other).port) && req.headers.authorization !== 'Bearer s3cret') {
          res.writeHead(401);
          return res.end();
        }
        const counter = (counters.get(port) ?? 0) + 10;
        counters.set(port, counter);
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end(metricsText(counter, 0, [['0.01', counter], ['+Inf', counter]], counter / 100));
      }
      if (url === '/huge/v1/status') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(`[${'1,'.repeat(200_000)}1]`);
      }
      if (url === '/garbage/v1/status') {
        res.writeHead(200);
        return res.end('{"miners": [');
      }
      if (url === '/silent/v1/status') return; // never answers
      res.writeHead(404);
      res.end();
    };
    for (let i = 0; i < 2; i++) {
      const server = http.createServer(handler);
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    }
    base = `http://127.0.0.1:${(servers[0]!.address() as AddressInfo).port}`;
    other = `http://127.0.0.1:${(servers[1]!.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('keeps a good node\'s status and samples, and marks bad ones stale with the reason', async () => {
    const clock = new ManualClock(1_000_000);
    const nodes = [nodeRec('good', `${base}/v1/status`), nodeRec('huge', `${other}/huge/v1/status`), nodeRec('garbage', `${other}/garbage/v1/status`), nodeRec('silent', `${other}/silent/v1/status`), nodeRec('gone', 'http://127.0.0.1:1/v1/status')];
    // The deadline is what the silent node runs into; it is long enough that a busy machine does
    // not make the others miss it (the good node's samples need both of its readings).
    const c = new OpsCollector({ listNodes: async () => nodes, clock }, { intervalMs: 0, timeoutMs: 1500, maxBytes: 64 * 1024 });
    await c.pollAll();
    clock.advance(5000);
    await c.pollAll();
    const good = c.view('good')!;
    expect(good.stale).toBe(false);
    expect(good.metrics).toBe(true);
    expect(good.latest!.miners.length).toBe(2);
    const samples = c.samples('good');
    expect(samples.length).toBe(2);
    expect(samples[1]!.throughput).toBe(2); // 10 more answers over 5 s
    expect(c.samples('good', samples[0]!.t)).toEqual([samples[1]]); // what the charts ask for after their first load
    // A node whose metrics need a token: its status is read either way, its metrics only with the token.
    const locked = [nodeRec('locked', `${other}/v1/status`)];
    const without = new OpsCollector({ listNodes: async () => locked, clock }, { intervalMs: 0, timeoutMs: 1500 });
    const withToken = new OpsCollector({ listNodes: async () => locked, clock }, { intervalMs: 0, timeoutMs: 1500, metricsToken: 's3cret' });
    await Promise.all([without.pollAll(), withToken.pollAll()]);
    expect([without.view('locked')!.stale, without.view('locked')!.metrics]).toEqual([false, false]);
    expect([withToken.view('locked')!.stale, withToken.view('locked')!.metrics]).toEqual([false, true]);
    for (const [id, why] of [['huge', /larger than/], ['garbage', /JSON/], ['silent', /no answer within/], ['gone', /ECONNREFUSED/]] as const) {
      const v = c.view(id)!;
      expect(v.stale, id).toBe(true);
      expect(v.lastError, id).toMatch(why);
      expect(c.samples(id)).toEqual([]);
    }
  });
});
