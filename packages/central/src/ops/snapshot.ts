/**
 * A node's status (its `GET /v1/status` JSON) read for the operator dashboard: checked field by
 * field and cut to bounds, because a node's answer is input like any other (a broken or hostile
 * node must not grow central's memory or break the page). Unknown fields are dropped.
 */

/** A node's status that cannot be read; the collector records the message as the node's last error. */
export class NodeStatusError extends Error {
  readonly code = 'bad_node_status';
  constructor(message: string) {
    super(message);
    this.name = 'NodeStatusError';
  }
}

export const OPS_LIMITS = { miners: 2000, queues: 500, alerts: 100, dservices: 64, text: 300 } as const;

export type Tier = 'open' | 'attested' | 'dedicated';
const TIERS: readonly string[] = ['open', 'attested', 'dedicated'];

export interface OpsMiner {
  id: string;
  tier: Tier;
  dservices: string[];
  slots: number;
  inUse: number;
  latencyMs: number | null;
  draining: boolean;
  completed: number;
  failed: number;
}

export interface OpsQueue {
  dservice: string;
  tier: Tier;
  depth: number;
  oldestMs: number;
}

export interface NodeAlert {
  key: string;
  rule: string;
  severity: 'info' | 'warning' | 'critical';
  summary: string;
  since: string;
}

export interface NodeOpsSnapshot {
  uptimeS: number;
  draining: boolean;
  miners: OpsMiner[];
  /** All miners the node reported (`miners` keeps at most OPS_LIMITS.miners). */
  minersTotal: number;
  queues: OpsQueue[];
  broker: { submitted: number; completed: number; failed: number; refusedQueueFull: number; deadlineExceeded: number; minersLost: number };
  /** Firing alerts, when the node runs its alert rules; null when it does not. */
  alerts: NodeAlert[] | null;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => x !== null && typeof x === 'object' && !Array.isArray(x);
const bad = (why: string): NodeStatusError => new NodeStatusError(`the node's status is malformed: ${why}`);

const count = (x: unknown, what: string): number => {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || x > 1e15) throw bad(`${what} must be a non-negative number`);
  return x;
};
const optCount = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1e15 ? x : 0);
const text = (x: unknown, what: string, max: number = OPS_LIMITS.text): string => {
  if (typeof x !== 'string') throw bad(`${what} must be a string`);
  return x.length > max ? `${x.slice(0, max)}…` : x;
};
const tier = (x: unknown, what: string): Tier => {
  if (typeof x !== 'string' || !TIERS.includes(x)) throw bad(`${what} must be open, attested or dedicated`);
  return x as Tier;
};

export function parseNodeStatus(x: unknown): NodeOpsSnapshot {
  if (!isObj(x)) throw bad('not an object');
  const node = isObj(x['node']) ? x['node'] : {};
  const rawMiners = Array.isArray(x['miners']) ? x['miners'] : [];
  const miners: OpsMiner[] = rawMiners.slice(0, OPS_LIMITS.miners).map((m, i) => {
    if (!isObj(m)) throw bad(`miners[${i}] must be an object`);
    const ds = Array.isArray(m['dservices']) ? m['dservices'] : [];
    return {
      id: text(m['id'], `miners[${i}].id`, 200),
      tier: tier(m['tier'], `miners[${i}].tier`),
      dservices: ds.slice(0, OPS_LIMITS.dservices).map((d, j) => text(d, `miners[${i}].dservices[${j}]`, 64)),
      slots: count(m['slots'], `miners[${i}].slots`),
      inUse: count(m['inUse'], `miners[${i}].inUse`),
      latencyMs: m['latencyMs'] === null || m['latencyMs'] === undefined ? null : count(m['latencyMs'], `miners[${i}].latencyMs`),
      draining: m['draining'] === true,
      completed: optCount(m['completed']),
      failed: optCount(m['failed']),
    };
  });
  const rawQueues = Array.isArray(x['queues']) ? x['queues'] : [];
  const queues: OpsQueue[] = rawQueues.slice(0, OPS_LIMITS.queues).map((q, i) => {
    if (!isObj(q)) throw bad(`queues[${i}] must be an object`);
    return { dservice: text(q['dservice'], `queues[${i}].dservice`, 64), tier: tier(q['tier'], `queues[${i}].tier`), depth: count(q['depth'], `queues[${i}].depth`), oldestMs: optCount(q['oldestMs']) };
  });
  const counters = isObj(x['counters']) && isObj(x['counters']['broker']) ? x['counters']['broker'] : {};
  let alerts: NodeAlert[] | null = null;
  if (isObj(x['alerts']) && Array.isArray(x['alerts']['firing'])) {
    alerts = x['alerts']['firing'].slice(0, OPS_LIMITS.alerts).map((a, i) => {
      if (!isObj(a)) throw bad(`alerts.firing[${i}] must be an object`);
      const sev = a['severity'];
      return {
        key: text(a['key'], `alerts.firing[${i}].key`),
        rule: text(a['rule'], `alerts.firing[${i}].rule`, 64),
        severity: sev === 'info' || sev === 'warning' || sev === 'critical' ? sev : 'warning',
        summary: text(a['summary'], `alerts.firing[${i}].summary`),
        since: text(a['since'], `alerts.firing[${i}].since`, 40),
      };
    });
  }
  return {
    uptimeS: optCount(node['uptimeS']),
    draining: node['draining'] === true,
    miners,
    minersTotal: Math.max(miners.length, rawMiners.length),
    queues,
    broker: {
      submitted: optCount(counters['submitted']), completed: optCount(counters['completed']), failed: optCount(counters['failed']),
      refusedQueueFull: optCount(counters['refusedQueueFull']), deadlineExceeded: optCount(counters['deadlineExceeded']), minersLost: optCount(counters['minersLost']),
    },
    alerts,
  };
}
