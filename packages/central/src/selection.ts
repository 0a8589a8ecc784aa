/**
 * Node selection: which nodes a DApp (or a miner) should use. Pure functions over a snapshot of
 * the node directory; no I/O, no clock of their own (`now` comes in with the request).
 *
 * For a DApp (`selectNodesForDApp`):
 * 1. Hard filters. A node outside the account's allowed data regions is never returned. A node
 *    that does not route every DService asked for is never returned.
 * 2. Classes, best first:
 *    0 `ready`: health `up`, heard from within `staleAfterMs`, not draining, and a free slot
 *      (slots - busy - queued > 0) for every DService asked for;
 *    1 `busy`: reachable (`up` or `degraded`, fresh, not draining) but degraded or with no free
 *      slot for some DService (overloaded);
 *    2 `unavailable`: down, draining, unknown health or stale. Still listed, at the bottom, so a
 *      client with nothing better can try them.
 * 3. Within a class, lower score first:
 *      score = distanceKm / 1000 + LOAD_WEIGHT x utilisation + (degraded ? DEGRADED_PENALTY : 0)
 *    where utilisation = max over the DServices asked for of (busy + queued) / slots, capped at
 *    MAX_UTILISATION. So 1000 km of distance weighs as much as half the capacity being in use.
 *    Ties: more free slots first, then node id.
 *
 * For a miner (`selectNodesForMiner`): nodes that route at least one DService the miner offers,
 * in the same classes (a node without free capacity is not penalised here: that is the point),
 * scored so that need dominates and distance breaks near-ties:
 *      need = max over offered DServices the node routes of (busy + queued) / max(slots, 1)
 *             (a DService routed with no slots at all needs 1 + queued)
 *      score = distanceKm / 1000 - NEED_WEIGHT x min(need, MAX_NEED)
 */
import type { DServiceCapacity, NodeHealth } from './store/store.js';

export interface LatLon {
  lat: number;
  lon: number;
}

export interface SelectableNode {
  id: string;
  region: string;
  lat: number;
  lon: number;
  health: NodeHealth;
  draining: boolean;
  /** Epoch ms central last heard from the node. */
  lastSeenAt: number;
  /** Per DService the node routes. */
  capacity: Record<string, DServiceCapacity>;
  urls: { work: string; miner: string; status: string };
}

export type SelectionClass = 'ready' | 'busy' | 'unavailable';

export interface RankedNode {
  id: string;
  region: string;
  class: SelectionClass;
  score: number;
  distanceKm: number | null;
  /** Free slots summed over the DServices considered. */
  freeSlots: number;
  health: NodeHealth;
  urls: SelectableNode['urls'];
}

export const SELECTION = {
  LOAD_WEIGHT: 2,
  DEGRADED_PENALTY: 1,
  MAX_UTILISATION: 4,
  NEED_WEIGHT: 2,
  MAX_NEED: 4,
  STALE_AFTER_MS: 60_000,
  DEFAULT_LIMIT: 5,
} as const;

export interface DAppSelectionRequest {
  location: LatLon | null;
  dservices: readonly string[];
  /** Null = any region. */
  allowedRegions: readonly string[] | null;
  now: number;
  limit?: number;
  staleAfterMs?: number;
}

export interface MinerSelectionRequest {
  location: LatLon | null;
  /** DServices the miner can run. */
  offers: readonly string[];
  now: number;
  limit?: number;
  staleAfterMs?: number;
}

const EARTH_RADIUS_KM = 6371.0088;

/** Great-circle distance (haversine), km. */
export function distanceKm(a: LatLon, b: LatLon): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

function reachable(n: SelectableNode, now: number, staleAfterMs: number): boolean {
  return (n.health === 'up' || n.health === 'degraded') && !n.draining && now - n.lastSeenAt <= staleAfterMs;
}

const free = (c: DServiceCapacity): number => c.slots - c.busy - c.queued;
const utilisation = (c: DServiceCapacity): number =>
  c.slots <= 0 ? SELECTION.MAX_UTILISATION : Math.min(SELECTION.MAX_UTILISATION, (c.busy + c.queued) / c.slots);
const CLASS_ORDER: Record<SelectionClass, number> = { ready: 0, busy: 1, unavailable: 2 };

function sortRanked(list: RankedNode[]): RankedNode[] {
  return list.sort((a, b) =>
    CLASS_ORDER[a.class] - CLASS_ORDER[b.class] || a.score - b.score || b.freeSlots - a.freeSlots || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function selectNodesForDApp(nodes: readonly SelectableNode[], req: DAppSelectionRequest): RankedNode[] {
  const stale = req.staleAfterMs ?? SELECTION.STALE_AFTER_MS;
  const allowed = req.allowedRegions === null ? null : new Set(req.allowedRegions);
  const out: RankedNode[] = [];
  for (const n of nodes) {
    if (allowed !== null && !allowed.has(n.region)) continue;
    const caps: DServiceCapacity[] = [];
    let routesAll = true;
    for (const d of req.dservices) {
      const c = n.capacity[d];
      if (c === undefined) {
        routesAll = false;
        break;
      }
      caps.push(c);
    }
    if (!routesAll) continue;
    const dist = req.location === null ? null : distanceKm(req.location, n);
    const util = caps.length === 0 ? 0 : Math.max(...caps.map(utilisation));
    const freeSlots = caps.reduce((s, c) => s + Math.max(0, free(c)), 0);
    const hasRoom = caps.every((c) => free(c) > 0);
    const cls: SelectionClass = !reachable(n, req.now, stale)
      ? 'unavailable'
      : n.health === 'up' && hasRoom ? 'ready' : 'busy';
    const score = (dist ?? 0) / 1000 + SELECTION.LOAD_WEIGHT * util + (n.health === 'degraded' ? SELECTION.DEGRADED_PENALTY : 0);
    out.push({ id: n.id, region: n.region, class: cls, score, distanceKm: dist, freeSlots, health: n.health, urls: n.urls });
  }
  return sortRanked(out).slice(0, req.limit ?? SELECTION.DEFAULT_LIMIT);
}

/** How much a node needs a miner offering these DServices (0 = not at all). */
export function nodeNeed(n: SelectableNode, offers: readonly string[]): number {
  let need = 0;
  for (const d of offers) {
    const c = n.capacity[d];
    if (c === undefined) continue;
    const x = c.slots <= 0 ? 1 + c.queued : (c.busy + c.queued) / c.slots;
    need = Math.max(need, x);
  }
  return need;
}

export function selectNodesForMiner(nodes: readonly SelectableNode[], req: MinerSelectionRequest): RankedNode[] {
  const stale = req.staleAfterMs ?? SELECTION.STALE_AFTER_MS;
  const out: RankedNode[] = [];
  for (const n of nodes) {
    const routed = req.offers.filter((d) => n.capacity[d] !== undefined);
    if (routed.length === 0) continue;
    const dist = req.location === null ? null : distanceKm(req.location, n);
    const need = nodeNeed(n, routed);
    const cls: SelectionClass = !reachable(n, req.now, stale) ? 'unavailable' : n.health === 'up' ? 'ready' : 'busy';
    const freeSlots = routed.reduce((s, d) => s + Math.max(0, free(n.capacity[d]!)), 0);
    const score = (dist ?? 0) / 1000 - SELECTION.NEED_WEIGHT * Math.min(need, SELECTION.MAX_NEED);
    out.push({ id: n.id, region: n.region, class: cls, score, distanceKm: dist, freeSlots, health: n.health, urls: n.urls });
  }
  // For miners, fewer free slots (more need) breaks ties, not more.
  return out
    .sort((a, b) => CLASS_ORDER[a.class] - CLASS_ORDER[b.class] || a.score - b.score || a.freeSlots - b.freeSlots || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, req.limit ?? SELECTION.DEFAULT_LIMIT);
}
