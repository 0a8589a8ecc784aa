/**
 * Central's Prometheus metrics at `GET /metrics`: API requests by route and status and their
 * duration (observed per request, label children cached by route and status), the node links by
 * state, accounts, users, DServices and nodes by state (read from the store at scrape time), and
 * process metrics. Labels are route patterns (`/v1/accounts/:id`), never raw URLs, so a stranger's
 * paths cannot grow the series.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CentralService } from '../service.js';
import { createHash, timingSafeEqual } from 'node:crypto';

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const LINK_STATES = ['connecting', 'open', 'closed'] as const;

export interface CentralMetricsOptions {
  /** The central-node links (state per node). */
  linkStatus?: () => unknown;
  /** A bearer token `/metrics` requires; undefined: open (no account data is in it). */
  token?: string;
}

export function centralRegistry(svc: CentralService, linkStatus: (() => unknown) | undefined, defaultMetrics = true): Registry {
  const registry = new Registry();
  const registers = [registry];
  if (defaultMetrics) collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'cgn_central_node_links', help: 'Central-to-node links by state', labelNames: ['state'], registers,
    collect() {
      this.reset();
      const links = (linkStatus?.() ?? []) as { state: string }[];
      for (const s of LINK_STATES) this.set({ state: s }, links.filter((l) => l.state === s).length);
    },
  });
  new Gauge({
    name: 'cgn_central_objects', help: 'Accounts, users, DServices by state and nodes by health in central\'s store', labelNames: ['kind', 'state'], registers,
    async collect() {
      const s = await svc.status();
      this.reset();
      this.set({ kind: 'accounts', state: 'all' }, s.accounts);
      this.set({ kind: 'users', state: 'all' }, s.users);
      for (const [state, n] of Object.entries(s.dservices)) this.set({ kind: 'dservices', state }, n);
      for (const [state, n] of Object.entries(s.nodes)) this.set({ kind: 'nodes', state }, n);
    },
  });
  return registry;
}

/** Adds the request hooks and `GET /metrics` to central's Fastify app (before it listens). */
export function installCentralMetrics(app: FastifyInstance, svc: CentralService, options: CentralMetricsOptions = {}): Registry {
  const registry = centralRegistry(svc, options.linkStatus);
  const registers = [registry];
  const requests = new Counter({ name: 'cgn_central_http_requests_total', help: 'Central API requests by method, route pattern and status', labelNames: ['method', 'route', 'status'], registers });
  const duration = new Histogram({ name: 'cgn_central_http_request_duration_seconds', help: 'Central API request duration by method and route pattern', labelNames: ['method', 'route'], buckets: BUCKETS, registers });
  const want = options.token === undefined ? null : sha256(`Bearer ${options.token}`);
  const counted = new Map<string, { inc: () => void }>();
  const timed = new Map<string, { observe: (v: number) => void }>();
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    if (route === '/metrics') return;
    const key = `${req.method} ${route} ${reply.statusCode}`;
    let c = counted.get(key);
    if (c === undefined) counted.set(key, (c = requests.labels(req.method, route, String(reply.statusCode))));
    c.inc();
    const tk = `${req.method} ${route}`;
    let h = timed.get(tk);
    if (h === undefined) timed.set(tk, (h = duration.labels(req.method, route)));
    h.observe(reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (req, reply) => {
    if (want !== null && !timingSafeEqual(sha256(req.headers.authorization ?? ''), want)) {
      return reply.code(401).header('www-authenticate', 'Bearer realm="cgn-metrics"').header('content-type', 'application/problem+json')
        .send(JSON.stringify({ type: 'urn:cgn:problem:unauthorized', title: 'Unauthorized', status: 401, code: 'unauthorized', detail: 'GET /metrics needs Authorization: Bearer <central\'s metrics token>' }));
    }
    const body = await registry.metrics();
    return reply.header('content-type', registry.contentType).header('cache-control', 'no-store').send(body);
  });
  return registry;
}
