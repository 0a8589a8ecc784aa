/**
 * Reputation -> service level: how well a miner (or a node) served over a window of the ledger,
 * in basis points (0..10,000). The validator election weighs each candidate by stake x service
 * level (the DCCN seed's "Proof of Service Level and Stake"); the epoch scheduler in @cgn/chain
 * pushes these numbers on chain.
 *
 * The seed computes a provider's service level from its quality of service, and its reputation
 * as a weighted sum of completed deals (log-scaled), the ratio of completed deals to all deals,
 * service level and rating, exponentially smoothed from period to period
 * (p_i = w * x_i + (1 - w) * p_{i-1}). The ledger has no ratings, so here, per subject (a miner,
 * or a node) over a window, from its records grouped by DService:
 *
 *   n   = records,  f = records whose DService answered 5xx (the work failed on that machine)
 *   s   = (n - f) / n                                           success ratio ("completed deals ratio")
 *   l   = sum_d n_d * min(1, peer_d / own_d) / n                latency vs. peers: per DService d, the
 *         mean latency of the *other* subjects on d over this subject's mean (1 when it is at least
 *         as fast, or alone on d); for miners the latency is the miner-reported execution time,
 *         for nodes the time queued at the node
 *   v   = ln(1 + n) / ln(1 + n_max)                             volume / availability, log-scaled like
 *         the seed's "total completed deals", relative to the busiest subject of the window
 *   bps = round(10,000 * s * ((1 - wl - wv) + wl * l + wv * v))   (defaults wl = wv = 0.25)
 *
 * The success ratio multiplies the weighted sum instead of being one more term of it: a machine
 * whose every result failed serves nothing, whatever its speed. A subject with fewer than
 * `minRecords` records in the window (no evidence of service), or one that was slashed or caught
 * cheating (`penalized`), has level 0. The level is monotone in s, l and v, bounded 0..10,000.
 *
 * Smoothing (`smoothServiceLevels`) combines consecutive windows, newest first, with the seed's
 * exponential weights (alpha on the newest, alpha(1-alpha) on the one before, ...), normalised:
 * a subject absent from a window scores 0 there. Computing it from the ledger on each epoch keeps
 * the scheduler stateless (restart-safe): the same ledger gives the same levels.
 *
 * Subjects map to EVM addresses through a lookup the caller supplies (`levelsByAddress`); the
 * ledger's payout addresses (`registerAddress('miner', id, address)`) are one such lookup
 * (`ledgerAddressLookup`). Several subjects of one address get the record-weighted mean.
 */
import { CgnError } from '@cgn/protocol';
import type { BillingLedgerStore } from './store.js';
import type { Beneficiary } from './pricing/split.js';

export const MAX_SERVICE_LEVEL = 10_000;

/** Whose activity: the miner that ran the work, or the node that brokered it. */
export type ActivitySubject = 'miner' | 'node';

export interface ActivityFilter {
  /** receivedAt >= from (epoch ms) */
  from?: number;
  /** receivedAt < to (epoch ms) */
  to?: number;
}

/** One subject's records on one DService over a window (what `BillingLedgerStore.activity` returns). */
export interface ActivityLine {
  /** Miner id (hex public key) or node id. */
  subject: string;
  dservice: string;
  records: number;
  /** Records whose DService status was 5xx. */
  failures: number;
  /** Summed latency of the records, µs (a float: sums may pass 2^53): execution time (miners) or queue time (nodes). */
  latencyUs: number;
}

export interface ServiceLevelOptions {
  /** Weight of latency vs. peers, 0..1 (default 0.25). */
  latencyWeight?: number;
  /** Weight of volume, 0..1 (default 0.25); latencyWeight + volumeWeight <= 1. */
  volumeWeight?: number;
  /** Records needed in the window for a non-zero level (default 1). */
  minRecords?: number;
  /** Subjects slashed or caught cheating: level 0. */
  penalized?: ReadonlySet<string>;
}

export interface ServiceLevel {
  subject: string;
  records: number;
  failures: number;
  /** Success ratio s, 0..1 (0 without records). */
  success: number;
  /** Latency score l, 0..1. */
  latency: number;
  /** Volume score v, 0..1. */
  volume: number;
  penalized: boolean;
  /** The service level, integer basis points 0..10,000. */
  bps: number;
}

function weights(opts: ServiceLevelOptions): { wl: number; wv: number; minRecords: number } {
  const wl = opts.latencyWeight ?? 0.25;
  const wv = opts.volumeWeight ?? 0.25;
  const minRecords = opts.minRecords ?? 1;
  const unit = (x: number) => Number.isFinite(x) && x >= 0 && x <= 1;
  if (!unit(wl) || !unit(wv) || wl + wv > 1) throw new CgnError('bad_request', `latencyWeight and volumeWeight must be in 0..1 and sum to at most 1 (got ${wl} and ${wv})`);
  if (!Number.isSafeInteger(minRecords) || minRecords < 1) throw new CgnError('bad_request', `minRecords must be a positive integer (got ${minRecords})`);
  return { wl, wv, minRecords };
}

function lineProblem(l: ActivityLine): string | null {
  if (typeof l.subject !== 'string' || l.subject.length === 0) return 'subject must be a non-empty string';
  if (typeof l.dservice !== 'string') return 'dservice must be a string';
  for (const k of ['records', 'failures'] as const) if (!Number.isSafeInteger(l[k]) || l[k] < 0) return `${k} must be a non-negative integer`;
  if (!Number.isFinite(l.latencyUs) || l.latencyUs < 0) return 'latencyUs must be a finite non-negative number';
  if (l.failures > l.records) return 'failures cannot exceed records';
  return null;
}

/**
 * The service level of every subject in `lines` (one window), sorted by subject. Pure: the same
 * lines (in any order) give the same levels.
 */
export function serviceLevels(lines: readonly ActivityLine[], opts: ServiceLevelOptions = {}): ServiceLevel[] {
  const { wl, wv, minRecords } = weights(opts);
  // Merge duplicate (subject, dservice) lines and total per DService.
  const bySubject = new Map<string, Map<string, { n: number; f: number; lat: number }>>();
  const perService = new Map<string, { n: number; lat: number }>();
  for (const l of lines) {
    const p = lineProblem(l);
    if (p !== null) throw new CgnError('bad_request', `activity line of ${String(l.subject)}/${String(l.dservice)}: ${p}`);
    let m = bySubject.get(l.subject);
    if (m === undefined) bySubject.set(l.subject, (m = new Map()));
    const e = m.get(l.dservice) ?? { n: 0, f: 0, lat: 0 };
    e.n += l.records;
    e.f += l.failures;
    e.lat += l.latencyUs;
    m.set(l.dservice, e);
    const t = perService.get(l.dservice) ?? { n: 0, lat: 0 };
    t.n += l.records;
    t.lat += l.latencyUs;
    perService.set(l.dservice, t);
  }
  let nMax = 0;
  for (const m of bySubject.values()) {
    let n = 0;
    for (const e of m.values()) n += e.n;
    nMax = Math.max(nMax, n);
  }
  const out: ServiceLevel[] = [];
  for (const [subject, m] of bySubject) {
    let n = 0;
    let f = 0;
    let latAcc = 0;
    // In DService order, so that float sums do not depend on the order of the input lines.
    for (const [d, e] of [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      n += e.n;
      f += e.f;
      if (e.n === 0) continue;
      const t = perService.get(d)!;
      const peerN = t.n - e.n;
      let factor = 1;
      if (peerN > 0 && e.lat > 0) {
        const peerMean = (t.lat - e.lat) / peerN;
        const ownMean = e.lat / e.n;
        factor = Math.min(1, peerMean / ownMean);
      }
      latAcc += e.n * factor;
    }
    const success = n === 0 ? 0 : (n - f) / n;
    const latency = n === 0 ? 0 : latAcc / n;
    const volume = nMax === 0 ? 0 : Math.log1p(n) / Math.log1p(nMax);
    const penalized = opts.penalized?.has(subject) ?? false;
    let bps = 0;
    if (!penalized && n >= minRecords) {
      bps = Math.round(MAX_SERVICE_LEVEL * success * (1 - wl - wv + wl * latency + wv * volume));
      bps = Math.min(MAX_SERVICE_LEVEL, Math.max(0, bps));
    }
    out.push({ subject, records: n, failures: f, success, latency, volume, penalized, bps });
  }
  return out.sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
}

export interface SmoothedLevel {
  subject: string;
  /** Records over all windows. */
  records: number;
  bps: number;
}

/**
 * Combines per-window levels, `windows[0]` the newest, with exponential weights alpha(1-alpha)^k
 * (normalised over the windows given). A subject missing from a window counts 0 there; one
 * penalized in any window is 0.
 */
export function smoothServiceLevels(windows: readonly (readonly ServiceLevel[])[], alpha = 0.5): SmoothedLevel[] {
  if (!(alpha > 0 && alpha <= 1)) throw new CgnError('bad_request', `alpha must be in (0, 1] (got ${alpha})`);
  const acc = new Map<string, { records: number; sum: number; penalized: boolean }>();
  let norm = 0;
  windows.forEach((w, k) => {
    const weight = alpha * (1 - alpha) ** k;
    norm += weight;
    for (const l of w) {
      const a = acc.get(l.subject) ?? { records: 0, sum: 0, penalized: false };
      a.records += l.records;
      a.sum += weight * l.bps;
      a.penalized ||= l.penalized;
      acc.set(l.subject, a);
    }
  });
  const out: SmoothedLevel[] = [];
  for (const [subject, a] of acc) {
    const bps = a.penalized || norm === 0 ? 0 : Math.min(MAX_SERVICE_LEVEL, Math.max(0, Math.round(a.sum / norm)));
    out.push({ subject, records: a.records, bps });
  }
  return out.sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
}

/** Maps a subject id to its EVM address (0x + 40 hex), or undefined when it has none. */
export type AddressLookup = (subject: string) => string | undefined;

export interface AddressLevels {
  /** Lower-case address -> service level (record-weighted mean of its subjects). */
  levels: Map<string, number>;
  /** Subjects with no address (not pushed anywhere). */
  unmapped: string[];
}

/** Service levels per address: several subjects of one address get the mean weighted by records. */
export function levelsByAddress(levels: readonly SmoothedLevel[], lookup: AddressLookup): AddressLevels {
  const acc = new Map<string, { w: number; sum: number; any: boolean }>();
  const unmapped: string[] = [];
  for (const l of levels) {
    const a = lookup(l.subject);
    if (a === undefined || !/^0x[0-9a-fA-F]{40}$/.test(a)) {
      unmapped.push(l.subject);
      continue;
    }
    const key = a.toLowerCase();
    const e = acc.get(key) ?? { w: 0, sum: 0, any: false };
    e.w += l.records;
    e.sum += l.records * l.bps;
    e.any = true;
    acc.set(key, e);
  }
  const out = new Map<string, number>();
  for (const [a, e] of acc) out.set(a, e.w === 0 ? 0 : Math.round(e.sum / e.w));
  return { levels: out, unmapped };
}

/** A lookup over the ledger's registered payout addresses of `role` (miners by default). */
export async function ledgerAddressLookup(store: BillingLedgerStore, role: Beneficiary = 'miner'): Promise<AddressLookup> {
  const book = await store.addresses();
  return (subject) => book.get(`${role}\u0000${subject}`);
}

export interface LedgerServiceLevelOptions extends ServiceLevelOptions {
  by?: ActivitySubject;
  /** End of the newest window, epoch ms (default now). */
  now?: number;
  /** Length of one window, ms (default 1 hour). */
  windowMs?: number;
  /** Windows to smooth over (default 4). */
  windows?: number;
  /** Weight of the newest window (default 0.5). */
  alpha?: number;
}

export interface LedgerServiceLevels {
  /** Per subject, smoothed. */
  subjects: SmoothedLevel[];
  /** The newest window's detail (success, latency, volume per subject). */
  latest: ServiceLevel[];
  from: number;
  to: number;
}

/** Reads `windows` windows of activity from the ledger and smooths their service levels. */
export async function ledgerServiceLevels(store: BillingLedgerStore, opts: LedgerServiceLevelOptions = {}): Promise<LedgerServiceLevels> {
  const to = opts.now ?? Date.now();
  const windowMs = opts.windowMs ?? 3_600_000;
  const k = opts.windows ?? 4;
  if (!Number.isSafeInteger(windowMs) || windowMs <= 0) throw new CgnError('bad_request', `windowMs must be a positive integer (got ${windowMs})`);
  if (!Number.isSafeInteger(k) || k < 1 || k > 1000) throw new CgnError('bad_request', `windows must be an integer from 1 to 1000 (got ${k})`);
  const perWindow: ServiceLevel[][] = [];
  for (let i = 0; i < k; i++) {
    const lines = await store.activity(opts.by ?? 'miner', { from: to - (i + 1) * windowMs, to: to - i * windowMs });
    perWindow.push(serviceLevels(lines, opts));
  }
  return { subjects: smoothServiceLevels(perWindow, opts.alpha), latest: perWindow[0]!, from: to - k * windowMs, to };
}
