/**
 * The alert rules file (`cgn node --alerts FILE`, JSON or YAML): where notifications go, how often
 * rules are evaluated, and each rule's thresholds. Every field has a default (ALERT_DEFAULTS); a
 * rule left out keeps its defaults, `enabled: false` turns one off, and an unknown field is an
 * error naming it (a misspelt threshold must not silently fall back to its default).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

export type Severity = 'info' | 'warning' | 'critical';
const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];

interface RuleBase {
  enabled: boolean;
  /** The condition must hold this long (seconds) before the alert fires. */
  forS: number;
  severity: Severity;
}

export interface AlertRules {
  /** A (DService, tier) queue whose oldest unit waited more than `thresholdS`. */
  queue_age: RuleBase & { thresholdS: number };
  /** Answers with a 5xx status over all answers in the last `windowS`, above `threshold` (0-1), once at least `minRequests` were answered. */
  error_rate: RuleBase & { threshold: number; windowS: number; minRequests: number };
  /** Fewer than `minConnected` miners connected (all lost, by default). */
  miners_lost: RuleBase & { minConnected: number };
  /** A sealed cycle with records not anchored on chain within `lateS` of being sealed (settler down, chain down, a refusal on hold). */
  anchoring: RuleBase & { lateS: number };
  /** A prepaid account (deposits > 0) whose available balance fell below `belowFraction` of its deposits. */
  account_low: RuleBase & { belowFraction: number };
}

export type RuleName = keyof AlertRules;
export const RULE_NAMES: readonly RuleName[] = ['queue_age', 'error_rate', 'miners_lost', 'anchoring', 'account_low'];

export interface AlertConfig {
  webhook: {
    url: string;
    /** Extra headers sent with every notification (e.g. an Authorization for the receiver). */
    headers: Record<string, string>;
    /** Per attempt, ms. */
    timeoutMs: number;
    /** Attempts after the first failed one. */
    retries: number;
    /** Delay before the first retry, ms; doubles each time up to `maxBackoffMs`. */
    backoffMs: number;
    maxBackoffMs: number;
  };
  /** How often the rules are evaluated, seconds. */
  intervalS: number;
  rules: AlertRules;
}

export const ALERT_DEFAULTS: Omit<AlertConfig, 'webhook'> & { webhook: Omit<AlertConfig['webhook'], 'url'> } = {
  webhook: { headers: {}, timeoutMs: 5000, retries: 5, backoffMs: 500, maxBackoffMs: 30_000 },
  intervalS: 15,
  rules: {
    queue_age: { enabled: true, forS: 60, severity: 'warning', thresholdS: 3 },
    error_rate: { enabled: true, forS: 0, severity: 'critical', threshold: 0.05, windowS: 300, minRequests: 20 },
    miners_lost: { enabled: true, forS: 0, severity: 'critical', minConnected: 1 },
    anchoring: { enabled: true, forS: 0, severity: 'critical', lateS: 1800 },
    account_low: { enabled: true, forS: 0, severity: 'warning', belowFraction: 0.1 },
  },
};

export class AlertConfigError extends Error {
  readonly code = 'alert_config';
  constructor(message: string) {
    super(message);
    this.name = 'AlertConfigError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

function only(o: Obj, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new AlertConfigError(`${where}: unknown field "${k}" (known: ${allowed.join(', ')})`);
  }
}

function num(v: unknown, where: string, min: number, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new AlertConfigError(`${where}: must be a number from ${min}${max === Infinity ? ' up' : ` to ${max}`}, not ${JSON.stringify(v)}`);
  }
  return v;
}

/** Fills and checks a parsed rules document (the file's contents as an object). */
export function parseAlertConfig(doc: unknown, source = 'alert config'): AlertConfig {
  if (!isObj(doc)) throw new AlertConfigError(`${source}: must be an object with "webhook" and optionally "intervalS" and "rules"`);
  only(doc, ['webhook', 'intervalS', 'rules'], source);
  const w = doc['webhook'];
  if (!isObj(w) || typeof w['url'] !== 'string') throw new AlertConfigError(`${source}: webhook.url is required (where notifications are POSTed as JSON)`);
  only(w, ['url', 'headers', 'timeoutMs', 'retries', 'backoffMs', 'maxBackoffMs'], `${source}: webhook`);
  let url: URL;
  try {
    url = new URL(w['url']);
  } catch {
    throw new AlertConfigError(`${source}: webhook.url "${w['url']}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AlertConfigError(`${source}: webhook.url must be http:// or https://, not ${url.protocol}`);
  const d = ALERT_DEFAULTS;
  const headers = w['headers'] ?? {};
  if (!isObj(headers) || !Object.values(headers).every((v) => typeof v === 'string')) throw new AlertConfigError(`${source}: webhook.headers must map header names to strings`);
  const webhook: AlertConfig['webhook'] = {
    url: url.href,
    headers: headers as Record<string, string>,
    timeoutMs: num(w['timeoutMs'] ?? d.webhook.timeoutMs, `${source}: webhook.timeoutMs`, 10, 600_000),
    retries: num(w['retries'] ?? d.webhook.retries, `${source}: webhook.retries`, 0, 100),
    backoffMs: num(w['backoffMs'] ?? d.webhook.backoffMs, `${source}: webhook.backoffMs`, 1, 3_600_000),
    maxBackoffMs: num(w['maxBackoffMs'] ?? d.webhook.maxBackoffMs, `${source}: webhook.maxBackoffMs`, 1, 3_600_000),
  };
  const intervalS = num(doc['intervalS'] ?? d.intervalS, `${source}: intervalS`, 0.05, 86_400);
  const rulesIn = doc['rules'] ?? {};
  if (!isObj(rulesIn)) throw new AlertConfigError(`${source}: rules must be an object keyed by rule name (${RULE_NAMES.join(', ')})`);
  only(rulesIn, RULE_NAMES, `${source}: rules`);
  const rules = {} as Record<RuleName, unknown>;
  for (const name of RULE_NAMES) {
    const def = d.rules[name] as unknown as Obj;
    const given = rulesIn[name] ?? {};
    const where = `${source}: rules.${name}`;
    if (!isObj(given)) throw new AlertConfigError(`${where}: must be an object (e.g. { "enabled": false })`);
    only(given, Object.keys(def), where);
    const out: Obj = { ...def, ...given };
    if (typeof out['enabled'] !== 'boolean') throw new AlertConfigError(`${where}.enabled: must be true or false`);
    if (!SEVERITIES.includes(out['severity'] as Severity)) throw new AlertConfigError(`${where}.severity: must be one of ${SEVERITIES.join(', ')}`);
    for (const [k, v] of Object.entries(out)) {
      if (k === 'enabled' || k === 'severity') continue;
      const max = k === 'threshold' || k === 'belowFraction' ? 1 : Infinity;
      out[k] = num(v, `${where}.${k}`, 0, max);
    }
    rules[name] = out;
  }
  return { webhook, intervalS, rules: rules as unknown as AlertRules };
}

/** Reads a rules file: `.yaml`/`.yml` as YAML, anything else as JSON. */
export function loadAlertConfig(path: string): AlertConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AlertConfigError(`cannot read the alert rules file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new AlertConfigError(`${path} is not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
  return parseAlertConfig(doc, path);
}
