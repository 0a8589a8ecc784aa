/**
 * The rules as plain functions: from what the node sees now (`AlertInputs`) to the conditions
 * that hold (`Violation`s, one per alert instance: a queue, an account, the node's miners). No
 * clocks, no I/O; the error-rate window is the caller's pair of request tallies.
 */
import type { AlertRules, RuleName, Severity } from './config.js';

export interface AlertInputs {
  /** Wall clock, ms. */
  now: number;
  queues: readonly { dservice: string; tier: string; oldestMs: number }[];
  minersConnected: number;
  /** Request tallies now and at the start of the error-rate window (null: no history yet). */
  requests: { answered: number; serverErrors: number };
  requestsWindowStart: { answered: number; serverErrors: number } | null;
  /** Sealed cycles with records that are not anchored, with when they were sealed (ms). */
  unanchored: readonly { cycle: number; sealedAt: number }[];
  /** Prepaid accounts (deposited > 0): their deposits and what is available. */
  balances: readonly { account: string; deposited: bigint; available: bigint }[];
}

export interface Violation {
  rule: RuleName;
  /** Unique per alert instance, stable while it holds (e.g. `queue_age/echo/open`). */
  key: string;
  severity: Severity;
  summary: string;
  labels: Record<string, string>;
  value: number;
  threshold: number;
}

export function evaluateRules(rules: AlertRules, x: AlertInputs): Violation[] {
  const out: Violation[] = [];
  const r = rules;
  if (r.queue_age.enabled) {
    for (const q of x.queues) {
      const ageS = q.oldestMs / 1000;
      if (ageS > r.queue_age.thresholdS) {
        out.push({
          rule: 'queue_age', key: `queue_age/${q.dservice}/${q.tier}`, severity: r.queue_age.severity, labels: { dservice: q.dservice, tier: q.tier }, value: ageS, threshold: r.queue_age.thresholdS,
          summary: `the oldest ${q.dservice} work in the ${q.tier} queue has waited ${ageS.toFixed(1)} s (threshold ${r.queue_age.thresholdS} s): too few miners for the load`,
        });
      }
    }
  }
  if (r.error_rate.enabled && x.requestsWindowStart !== null) {
    const answered = x.requests.answered - x.requestsWindowStart.answered;
    const errors = x.requests.serverErrors - x.requestsWindowStart.serverErrors;
    const ratio = answered > 0 ? errors / answered : 0;
    if (answered >= r.error_rate.minRequests && ratio > r.error_rate.threshold) {
      out.push({
        rule: 'error_rate', key: 'error_rate', severity: r.error_rate.severity, labels: {}, value: ratio, threshold: r.error_rate.threshold,
        summary: `${(ratio * 100).toFixed(1)}% of the last ${answered} answers were 5xx within ${r.error_rate.windowS} s (threshold ${(r.error_rate.threshold * 100).toFixed(1)}%)`,
      });
    }
  }
  if (r.miners_lost.enabled && x.minersConnected < r.miners_lost.minConnected) {
    out.push({
      rule: 'miners_lost', key: 'miners_lost', severity: r.miners_lost.severity, labels: {}, value: x.minersConnected, threshold: r.miners_lost.minConnected,
      summary: `${x.minersConnected} miner${x.minersConnected === 1 ? '' : 's'} connected (at least ${r.miners_lost.minConnected} expected): work waits or is refused`,
    });
  }
  if (r.anchoring.enabled) {
    const late = x.unanchored.filter((c) => (x.now - c.sealedAt) / 1000 > r.anchoring.lateS);
    if (late.length > 0) {
      const oldest = late.reduce((a, c) => (c.sealedAt < a.sealedAt ? c : a));
      const ageS = (x.now - oldest.sealedAt) / 1000;
      out.push({
        rule: 'anchoring', key: 'anchoring', severity: r.anchoring.severity, labels: { cycle: String(oldest.cycle) }, value: ageS, threshold: r.anchoring.lateS,
        summary: `cycle ${oldest.cycle} was sealed ${Math.round(ageS)} s ago and is not anchored on chain (${late.length} cycle${late.length === 1 ? '' : 's'} late; threshold ${r.anchoring.lateS} s): check that cgn settle runs and its log for steps on hold`,
      });
    }
  }
  if (r.account_low.enabled) {
    for (const b of x.balances) {
      if (b.deposited <= 0n) continue;
      const fraction = Number(b.available) / Number(b.deposited);
      if (fraction < r.account_low.belowFraction) {
        out.push({
          rule: 'account_low', key: `account_low/${b.account}`, severity: r.account_low.severity, labels: { account: b.account }, value: fraction, threshold: r.account_low.belowFraction,
          summary: `account ${b.account} has ${b.available} of ${b.deposited} tokens left (${(fraction * 100).toFixed(1)}%, threshold ${(r.account_low.belowFraction * 100).toFixed(0)}%): top it up or its work is refused (402)`,
        });
      }
    }
  }
  return out;
}
