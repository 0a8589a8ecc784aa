/**
 * Alert lifecycle, pure: a condition that holds for its rule's `forS` fires once (one `firing`
 * notice, however many evaluations it keeps holding: deduplicated), and one `resolved` notice
 * follows when it stops holding. A condition that stops before `forS` says nothing.
 */
import type { RuleName, Severity } from './config.js';
import type { Violation } from './rules.js';

export interface AlertNotice {
  /** Same for the firing and the resolved notice of one episode (receivers deduplicate retries by it). */
  id: string;
  status: 'firing' | 'resolved';
  rule: RuleName;
  key: string;
  severity: Severity;
  summary: string;
  labels: Record<string, string>;
  /** The measured value when it fired (firing) or last held (resolved), and the rule's threshold. */
  value: number;
  threshold: number;
  startsAt: string;
  endsAt: string | null;
}

interface Firing {
  startsAt: number;
  last: Violation;
}

export class AlertState {
  private readonly pendingSince = new Map<string, number>();
  private readonly active = new Map<string, Firing>();

  /** One evaluation: the notices to send, in order. */
  step(now: number, violations: readonly Violation[], forSOf: (rule: RuleName) => number): AlertNotice[] {
    const notices: AlertNotice[] = [];
    const seen = new Set<string>();
    for (const v of violations) {
      seen.add(v.key);
      const firing = this.active.get(v.key);
      if (firing !== undefined) {
        firing.last = v;
        continue;
      }
      const since = this.pendingSince.get(v.key) ?? now;
      this.pendingSince.set(v.key, since);
      if (now - since >= forSOf(v.rule) * 1000) {
        this.pendingSince.delete(v.key);
        this.active.set(v.key, { startsAt: now, last: v });
        notices.push(notice(v, 'firing', now, null));
      }
    }
    for (const key of [...this.pendingSince.keys()]) if (!seen.has(key)) this.pendingSince.delete(key);
    for (const [key, f] of [...this.active]) {
      if (seen.has(key)) continue;
      this.active.delete(key);
      notices.push(notice(f.last, 'resolved', f.startsAt, now));
    }
    return notices;
  }

  /** What fires now, for the status page. */
  firing(): { key: string; rule: RuleName; severity: Severity; summary: string; since: string }[] {
    return [...this.active.values()].map((f) => ({ key: f.last.key, rule: f.last.rule, severity: f.last.severity, summary: f.last.summary, since: new Date(f.startsAt).toISOString() }));
  }
}

function notice(v: Violation, status: AlertNotice['status'], startsAt: number, endsAt: number | null): AlertNotice {
  const starts = new Date(startsAt).toISOString();
  return {
    id: `${v.key}@${starts}`,
    status, rule: v.rule, key: v.key, severity: v.severity,
    summary: status === 'firing' ? v.summary : `resolved: ${v.summary.split(':')[0]}`,
    labels: v.labels, value: v.value, threshold: v.threshold,
    startsAt: starts, endsAt: endsAt === null ? null : new Date(endsAt).toISOString(),
  };
}
