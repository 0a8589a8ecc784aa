/**
 * When CPU over-reports become evidence. One gross over-report (charge-bound.ts: more than twice
 * what the node measured x the DService's CPUs, and 10 ms above it) is clipped and counted as a
 * fault; `threshold` of them from one miner within `windowMs` (defaults: 3 in 10 minutes, the
 * quarantine rule) are a pattern no honest miner produces, since its DService's sandbox is held to
 * those CPUs: in the open tier they become slashing evidence (`buildOverReportEvidence`).
 */
import { RecentMap } from '../recent-map.js';
import type { OverReport } from './evidence.js';

export interface OverReportRule {
  threshold: number;
  windowMs: number;
}

export const OVER_REPORT_RULE: OverReportRule = { threshold: 3, windowMs: 10 * 60_000 };

export class OverReportTally {
  private readonly byMiner: RecentMap<string, { at: number; report: OverReport }[]>;

  constructor(
    readonly rule: OverReportRule = OVER_REPORT_RULE,
    private readonly now: () => number = Date.now,
    maxMiners = 10_000,
  ) {
    this.byMiner = new RecentMap(maxMiners);
  }

  /** Adds a gross over-report; returns the reports that make the evidence once the rule is met (and starts over). */
  add(minerId: string, report: OverReport): OverReport[] | null {
    const t = this.now();
    const list = this.byMiner.touch(minerId, () => []);
    while (list.length > 0 && t - list[0]!.at > this.rule.windowMs) list.shift();
    list.push({ at: t, report });
    if (list.length < this.rule.threshold) return null;
    const reports = list.map((e) => e.report);
    list.length = 0;
    return reports;
  }
}
