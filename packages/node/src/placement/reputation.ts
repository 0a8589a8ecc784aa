/**
 * Miners' reputation for placement, from the ledger's service level (packages/ledger/src/
 * reputation.ts: success ratio and latency vs. peers over the last window of records), refreshed
 * in the background every `refreshMs`: the controller reads the last result, never waits on the
 * ledger. A miner without records in the window gets the scheduler's neutral prior.
 */
import { serviceLevels, type ActivityFilter, type ActivityLine } from '@cgn/ledger';
import type { ReputationInputs } from '@cgn/scheduler';

export interface ReputationDeps {
  activity: (by: 'miner', filter: ActivityFilter) => ActivityLine[] | Promise<ActivityLine[]>;
  now: () => number;
  log: (level: 'warn', msg: string, fields: Record<string, unknown>) => void;
}

export class MinerReputation {
  private byMiner = new Map<string, ReputationInputs>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;

  constructor(private readonly deps: ReputationDeps, private readonly windowMs = 3_600_000, private readonly refreshMs = 60_000) {}

  of(minerId: string): ReputationInputs | undefined {
    return this.byMiner.get(minerId);
  }

  /** Reads the window from the ledger now; a failure keeps the previous levels (and is logged). */
  async refresh(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = this.deps.now();
      const levels = serviceLevels(await this.deps.activity('miner', { from: now - this.windowMs, to: now }));
      const next = new Map<string, ReputationInputs>();
      for (const l of levels) {
        // Uptime and verification outcomes are not in the ledger's level: neutral here.
        next.set(l.subject, { records: l.records, success: l.success, latency: l.latency, uptime: 1, verificationsPassed: 0, verificationsFailed: 0 });
      }
      this.byMiner = next;
    } catch (err) {
      this.deps.log('warn', 'could not read miners\' service levels from the ledger; placement keeps the previous ones', { err: err instanceof Error ? err.message : String(err) });
    } finally {
      this.busy = false;
    }
  }

  start(): void {
    if (this.timer !== null) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
