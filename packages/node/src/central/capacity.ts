/**
 * What the node reports to central when asked for its status: health and, per DService it
 * routes, miner slots, busy slots and queued work (from the broker's snapshot).
 */
import type { NodeLinkStatus } from '@cgn/protocol';

/** The parts of `Broker.snapshot()` this needs. */
export interface BrokerSnapshotLike {
  miners: readonly { dservices: readonly string[]; slots: number; inUse: number; draining: boolean }[];
  queues: readonly { dservice: string; depth: number }[];
}

/**
 * Capacity per routed DService. A miner's slots are shared by the DServices it runs, so each of
 * them counts all of the miner's slots (an upper bound); draining miners count for nothing.
 */
export function linkStatusFromSnapshot(snap: BrokerSnapshotLike, routed: readonly string[], opts: { draining?: boolean; degraded?: boolean } = {}): NodeLinkStatus {
  const capacity: NodeLinkStatus['capacity'] = {};
  for (const d of routed) capacity[d] = { slots: 0, busy: 0, queued: 0 };
  for (const m of snap.miners) {
    if (m.draining) continue;
    for (const d of m.dservices) {
      const c = capacity[d];
      if (c === undefined) continue;
      c.slots += m.slots;
      c.busy += m.inUse;
    }
  }
  for (const q of snap.queues) {
    const c = capacity[q.dservice];
    if (c !== undefined) c.queued += q.depth;
  }
  return { health: opts.degraded ? 'degraded' : 'up', draining: opts.draining ?? false, capacity };
}
