/**
 * The dashboard's read models, as pure functions of what central has: the directory, the link
 * states, the collector's node views and the miner registry. No I/O here.
 */
import type { MinerRecord, NodeRecord } from '../store/store.js';
import type { NodeView } from './collector.js';
import type { NodeAlert, OpsMiner, Tier } from './snapshot.js';

export type MinerState = 'busy' | 'idle' | 'draining' | 'offline';

export interface OpsMinerRow {
  id: string;
  name: string | null;
  accountId: string | null;
  /** The node it is connected to, or null (registered at central, not connected to any node). */
  nodeId: string | null;
  region: string | null;
  /** The tier it works in at its node (null offline); `grantedTier` is what central's registry grants. */
  tier: Tier | null;
  grantedTier: string | null;
  state: MinerState;
  slots: number;
  inUse: number;
  latencyMs: number | null;
  completed: number;
  failed: number;
  dservices: string[];
}

export interface OpsAlert {
  source: string;
  nodeId: string | null;
  rule: string;
  severity: 'info' | 'warning' | 'critical';
  summary: string;
  since: string;
}

export const minerState = (m: Pick<OpsMiner, 'draining' | 'inUse'>): MinerState => (m.draining ? 'draining' : m.inUse > 0 ? 'busy' : 'idle');

/** Every miner connected to a node, then the registered ones connected nowhere (offline). */
export function minerRows(nodes: readonly NodeRecord[], views: ReadonlyMap<string, NodeView>, registered: readonly MinerRecord[]): OpsMinerRow[] {
  const reg = new Map(registered.map((m) => [m.id, m]));
  const seen = new Set<string>();
  const rows: OpsMinerRow[] = [];
  for (const n of nodes) {
    const v = views.get(n.id);
    if (v?.latest == null || v.stale) continue;
    for (const m of v.latest.miners) {
      const r = reg.get(m.id);
      seen.add(m.id);
      rows.push({
        id: m.id, name: r?.name ?? null, accountId: r?.accountId ?? null, nodeId: n.id, region: n.region, tier: m.tier, grantedTier: r?.tier ?? null,
        state: minerState(m), slots: m.slots, inUse: m.inUse, latencyMs: m.latencyMs, completed: m.completed, failed: m.failed, dservices: m.dservices,
      });
    }
  }
  for (const r of registered) {
    if (seen.has(r.id) || r.revokedAt !== null) continue;
    rows.push({ id: r.id, name: r.name, accountId: r.accountId, nodeId: null, region: null, tier: null, grantedTier: r.tier, state: 'offline', slots: 0, inUse: 0, latencyMs: null, completed: 0, failed: 0, dservices: [] });
  }
  return rows;
}

/**
 * The directory's health comes from the central-node link; where there is none (or it has not
 * answered yet) the status polls say whether the node is there.
 */
export function effectiveHealth(directory: string, v: NodeView | undefined): string {
  if (v !== undefined && v.stale && v.lastError !== null) return 'down';
  if (directory === 'unknown' && v !== undefined && !v.stale) return 'up';
  return directory;
}

/** Counts of `rows` by a key. */
export function countBy<T>(rows: readonly T[], key: (r: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) {
    const k = key(r);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * Firing alerts: what each node reports from its own rules, plus central's own about the nodes: a
 * node central cannot read, or one the directory has down.
 */
export function alertsOf(nodes: readonly NodeRecord[], views: ReadonlyMap<string, NodeView>, now: number): OpsAlert[] {
  const out: OpsAlert[] = [];
  for (const n of nodes) {
    const v = views.get(n.id);
    if (v !== undefined && v.stale && v.lastError !== null) {
      out.push({
        source: 'central', nodeId: n.id, rule: 'node_unreachable', severity: 'critical',
        summary: `central cannot read node ${n.id}'s status: ${v.lastError}`,
        since: new Date(v.readAt ?? now).toISOString(),
      });
    }
    for (const a of (v?.latest?.alerts ?? []) as NodeAlert[]) {
      out.push({ source: `node:${n.id}`, nodeId: n.id, rule: a.rule, severity: a.severity, summary: a.summary, since: a.since });
    }
  }
  const rank = { critical: 0, warning: 1, info: 2 } as const;
  return out.sort((a, b) => rank[a.severity] - rank[b.severity] || a.since.localeCompare(b.since));
}
