/**
 * Protocol violations per miner key: a malformed frame, a frame out of order, a result the node
 * cannot write. Each closes that miner's tunnel (its work runs elsewhere); they are counted here,
 * shown in `/v1/status`, and a miner that keeps committing them is quarantined: refused at
 * authentication for a while, so a broken or hostile miner cannot take work, fail it and come
 * straight back. Plain logic with an injected clock; bounded memory (oldest entries go first).
 */
import { RecentMap } from '../recent-map.js';

export interface MinerFaultOptions {
  /** Faults within `windowMs` that quarantine a miner. Default 3. */
  threshold: number;
  windowMs: number;
  /** How long a quarantined miner is refused, ms. Default 10 minutes. */
  quarantineMs: number;
  /** Miners remembered at most. Default 10,000. */
  maxEntries: number;
}

export const MINER_FAULT_DEFAULTS: MinerFaultOptions = { threshold: 3, windowMs: 10 * 60_000, quarantineMs: 10 * 60_000, maxEntries: 10_000 };

interface Entry {
  total: number;
  /** Times of the recent faults, oldest first (at most `threshold`). */
  recent: number[];
  lastReason: string;
  quarantinedUntil: number;
}

export interface MinerFaultView {
  miner: string;
  faults: number;
  lastReason: string;
  quarantinedForMs: number;
}

export class MinerFaults {
  readonly options: MinerFaultOptions;
  private readonly entries: RecentMap<string, Entry>;
  quarantines = 0;

  constructor(private readonly now: () => number, options: Partial<MinerFaultOptions> = {}) {
    this.options = { ...MINER_FAULT_DEFAULTS, ...options };
    this.entries = new RecentMap(this.options.maxEntries);
  }

  /** Records a fault (`reason` already bounded); true when it puts the miner in quarantine. */
  record(minerId: string, reason: string): boolean {
    const now = this.now();
    const e = this.entries.touch(minerId, () => ({ total: 0, recent: [], lastReason: '', quarantinedUntil: 0 }));
    e.total++;
    e.lastReason = reason;
    e.recent.push(now);
    while (e.recent.length > 0 && now - e.recent[0]! > this.options.windowMs) e.recent.shift();
    if (e.recent.length > this.options.threshold) e.recent.shift();
    if (e.recent.length >= this.options.threshold && e.quarantinedUntil <= now) {
      e.quarantinedUntil = now + this.options.quarantineMs;
      e.recent = [];
      this.quarantines++;
      return true;
    }
    return false;
  }

  /** Milliseconds the miner is still refused (0: not quarantined), and why. */
  quarantine(minerId: string): { remainingMs: number; reason: string } {
    const e = this.entries.get(minerId);
    if (e === undefined) return { remainingMs: 0, reason: '' };
    return { remainingMs: Math.max(0, e.quarantinedUntil - this.now()), reason: e.lastReason };
  }

  /** The miners with the most faults first, at most `limit`. */
  top(limit = 20): MinerFaultView[] {
    const now = this.now();
    return [...this.entries.entries()]
      .sort((a, b) => b[1].total - a[1].total)
      .slice(0, limit)
      .map(([miner, e]) => ({ miner: miner.slice(0, 16), faults: e.total, lastReason: e.lastReason, quarantinedForMs: Math.max(0, e.quarantinedUntil - now) }));
  }
}
