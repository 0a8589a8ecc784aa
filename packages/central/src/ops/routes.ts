/**
 * The operator dashboard's JSON endpoints (`/v1/ops/...`), staff only (administrator, operator,
 * monitor: all read-only here; changes go through the existing node and miner routes, which keep
 * their own role checks). They read the collector's node views and samples, the directory, the
 * miner registry and the metering ledger.
 */
import type { Role } from '../store/store.js';
import type { CentralService } from '../service.js';
import type { RouteDef } from '../http/routes.js';
import type { LedgerSource } from '../billing.js';
import { CentralError } from '../errors.js';
import { obj, str } from '../http/schemas.js';
import type { NodeView, OpsCollector } from './collector.js';
import { alertsOf, countBy, effectiveHealth, minerRows } from './views.js';

const STAFF: readonly Role[] = ['administrator', 'operator', 'monitor'];
const NUM = (max: number) => str(max, { pattern: '^[0-9]+$' });

export interface OpsRoutesDeps {
  /** Null when central polls no nodes (then the node parts are empty and say why). */
  collector: OpsCollector | null;
  ledger: LedgerSource | null;
  linkStatus?: () => unknown;
  /** A block explorer's transaction URL with `{tx}` where the hash goes; absent: hashes are shown as text. */
  explorerTxUrl?: string;
}

/** An explorer link template the dashboard may put in an href: http(s), with {tx}. */
export const isExplorerTxUrl = (u: string): boolean => /^https?:\/\/\S+$/.test(u) && u.includes('{tx}');

const noLedger = (): CentralError => new CentralError('unavailable', 'central has no ledger to read revenue and billing cycles from (start it with --ledger)', { retryAfterS: 30 });

export function opsRoutes(svc: CentralService, deps: OpsRoutesDeps): RouteDef[] {
  if (deps.explorerTxUrl !== undefined && !isExplorerTxUrl(deps.explorerTxUrl)) {
    throw new RangeError(`ops.explorerTxUrl must be an http(s) URL with {tx} where the transaction hash goes (e.g. https://etherscan.io/tx/{tx}); got "${deps.explorerTxUrl.slice(0, 200)}"`);
  }
  const views = (): Map<string, NodeView> => new Map((deps.collector?.views() ?? []).map((v) => [v.nodeId, v]));
  const links = (): Map<string, { state: string; since: number; lastError: string | null }> =>
    new Map(((deps.linkStatus?.() ?? []) as { nodeId: string; state: string; since: number; lastError: string | null }[]).map((l) => [l.nodeId, l]));
  const ledger = async () => {
    if (deps.ledger === null) throw noLedger();
    return deps.ledger.get();
  };

  return [
    {
      method: 'GET', url: '/v1/ops/overview', tag: 'ops', auth: 'session', roles: STAFF,
      summary: 'The operator dashboard\'s overview: each node (region, health, link, last status read, miners by tier and state, queues) and the totals of miners by tier, region and state',
      handler: async () => {
        const nodes = await svc.store.listNodes();
        const v = views();
        const l = links();
        const miners = minerRows(nodes, v, await svc.store.listMiners());
        return {
          generatedAt: svc.clock.now(),
          polling: deps.collector === null ? null : { intervalMs: deps.collector.intervalMs, samplesKept: deps.collector.capacity },
          nodes: nodes.map((n) => {
            const nv = v.get(n.id);
            const own = miners.filter((m) => m.nodeId === n.id);
            const link = l.get(n.id);
            return {
              id: n.id, region: n.region, health: effectiveHealth(n.health, nv), directoryHealth: n.health, draining: n.draining, lastSeenAt: n.lastSeenAt, urls: { status: n.urls.status },
              link: link === undefined ? null : { state: link.state, since: link.since, lastError: link.lastError },
              poll: nv === undefined ? null : { readAt: nv.readAt, stale: nv.stale, lastError: nv.lastError, metrics: nv.metrics },
              uptimeS: nv?.latest?.uptimeS ?? null,
              miners: { total: nv?.latest?.minersTotal ?? 0, byTier: countBy(own, (m) => m.tier ?? 'none'), byState: countBy(own, (m) => m.state) },
              queues: nv?.latest?.queues ?? [],
              broker: nv?.latest?.broker ?? null,
              alertsFiring: nv?.latest?.alerts?.length ?? 0,
            };
          }),
          miners: {
            total: miners.length,
            byTier: countBy(miners, (m) => m.tier ?? 'offline'),
            byRegion: countBy(miners, (m) => m.region ?? 'offline'),
            byState: countBy(miners, (m) => m.state),
          },
        };
      },
    },
    {
      method: 'GET', url: '/v1/ops/miners', tag: 'ops', auth: 'session', roles: STAFF,
      summary: 'Every miner: those connected to a node (its node, region, tier, state, slots, latency, work done) and the registered ones connected nowhere (offline)',
      handler: async () => ({ miners: minerRows(await svc.store.listNodes(), views(), await svc.store.listMiners()) }),
    },
    {
      method: 'GET', url: '/v1/ops/series', tag: 'ops', auth: 'session', roles: STAFF,
      summary: 'Samples per node for the charts (throughput, 5xx errors per second, p50/p95 latency, queued work and its oldest age, miners, slots), one per poll over the last hour (query: node, since epoch ms)',
      query: obj({ node: str(64), since: NUM(16) }),
      handler: async ({ query }) => {
        const since = query['since'] === undefined ? 0 : Number(query['since']);
        const nodes = (await svc.store.listNodes()).filter((n) => query['node'] === undefined || n.id === query['node']);
        if (query['node'] !== undefined && nodes.length === 0) throw new CentralError('not_found', `no node ${query['node']} in the directory`);
        return {
          intervalMs: deps.collector?.intervalMs ?? null,
          nodes: nodes.map((n) => ({ nodeId: n.id, region: n.region, samples: deps.collector?.samples(n.id, since) ?? [] })),
        };
      },
    },
    {
      method: 'GET', url: '/v1/ops/alerts', tag: 'ops', auth: 'session', roles: STAFF,
      summary: 'Firing alerts: those the nodes report from their alert rules, and central\'s own (a node whose status it cannot read), most severe first',
      handler: async () => ({ alerts: alertsOf(await svc.store.listNodes(), views(), svc.clock.now()) }),
    },
    {
      method: 'GET', url: '/v1/ops/revenue', tag: 'ops', auth: 'session', roles: STAFF,
      summary: 'Revenue per DService from the ledger: records, µUSD charged and tokens, over all accounts (query: cycle). Amounts are decimal strings',
      query: obj({ cycle: NUM(9) }),
      handler: async ({ query }) => {
        const store = await ledger();
        const lines = await store.usage('dservice', query['cycle'] === undefined ? {} : { cycle: Number(query['cycle']) });
        return {
          dservices: lines.map((u) => ({ dservice: u.key, records: u.records, cpuUs: u.cpuUs, priceMicros: u.priceMicros.toString(), tokens: u.tokens.toString() })),
        };
      },
    },
    {
      method: 'GET', url: '/v1/ops/cycles', tag: 'ops', auth: 'session', roles: STAFF,
      summary: 'Billing cycles, newest first, with their totals, payout root and the transaction that anchored them on chain; explorerTxUrl (or null) links a transaction hash',
      handler: async () => {
        const store = await ledger();
        const anchors = new Map((await store.anchors()).map((a) => [a.cycle, a]));
        const cycles = (await store.cycles()).slice(-200).reverse();
        return {
          explorerTxUrl: deps.explorerTxUrl ?? null,
          cycles: cycles.map((c) => {
            const a = anchors.get(c.id);
            const s = 'records' in c ? c : null;
            return {
              id: c.id, openedAt: c.openedAt, closedAt: c.closedAt, sealedAt: c.sealedAt,
              rate: { num: c.rate.num.toString(), den: c.rate.den.toString() }, rateSource: c.rateSource ?? null,
              records: s?.records ?? null, priceMicros: s?.priceMicros.toString() ?? null, tokens: s?.tokens.toString() ?? null,
              payoutRoot: s?.payoutRoot ?? null, recordsRoot: s?.recordsRoot ?? null,
              anchor: a === undefined ? null : { tx: a.tx, anchoredAt: a.anchoredAt },
            };
          }),
        };
      },
    },
  ];
}
