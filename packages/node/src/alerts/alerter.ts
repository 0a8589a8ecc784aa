/**
 * The node's alert loop: every `intervalS` it reads what the node holds (broker queues and
 * miners, request tallies, the ledger's cycles, anchors and balances), evaluates the rules and
 * sends what changed to the webhook. Why in the node: every rule reads state the node has in
 * memory or in its own ledger, so nothing else needs to run or be scraped; and the anchoring rule
 * reads the ledger's anchors rather than the settler's word, so a settler that died is caught too.
 */
import type { AlertConfig, RuleName } from './config.js';
import { evaluateRules, type AlertInputs } from './rules.js';
import { AlertState, type AlertNotice } from './state.js';
import { WebhookNotifier, type WebhookCounters } from './webhook.js';

/** What the alerter reads from the node (each call fresh). */
export interface AlerterSources {
  queues: () => AlertInputs['queues'];
  minersConnected: () => number;
  requests: () => AlertInputs['requests'];
  unanchored: () => Promise<AlertInputs['unanchored']> | AlertInputs['unanchored'];
  balances: () => Promise<AlertInputs['balances']> | AlertInputs['balances'];
}

export interface Alerter {
  /** Evaluates once now (the loop also does, every interval). */
  evaluate(): Promise<AlertNotice[]>;
  status(): { firing: ReturnType<AlertState['firing']>; webhook: WebhookCounters & { pending: number } };
  stop(): Promise<void>;
}

export function startAlerter(config: AlertConfig, sources: AlerterSources, deps: { source: Record<string, string>; log: (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void; now?: () => number }): Alerter {
  const now = deps.now ?? Date.now;
  const state = new AlertState();
  const webhook = new WebhookNotifier(config.webhook, { source: deps.source, log: deps.log });
  // Request tallies over the error-rate window: one sample per evaluation, oldest first.
  const history: { at: number; answered: number; serverErrors: number }[] = [];
  const forSOf = (rule: RuleName): number => config.rules[rule].forS;
  let running: Promise<AlertNotice[]> | null = null;

  const once = async (): Promise<AlertNotice[]> => {
    const t = now();
    const requests = sources.requests();
    history.push({ at: t, ...requests });
    const windowMs = config.rules.error_rate.windowS * 1000;
    while (history.length > 1 && t - history[1]!.at >= windowMs) history.shift();
    const start = history.length > 1 ? history[0]! : null;
    const inputs: AlertInputs = {
      now: t,
      queues: sources.queues(),
      minersConnected: sources.minersConnected(),
      requests,
      requestsWindowStart: start,
      unanchored: config.rules.anchoring.enabled ? await sources.unanchored() : [],
      balances: config.rules.account_low.enabled ? await sources.balances() : [],
    };
    const notices = state.step(t, evaluateRules(config.rules, inputs), forSOf);
    for (const n of notices) webhook.send(n);
    return notices;
  };
  const evaluate = (): Promise<AlertNotice[]> => (running ??= once().finally(() => (running = null)));
  const timer = setInterval(() => {
    evaluate().catch((err: unknown) => deps.log('error', `alert rules could not be evaluated: ${(err as Error).message}`, {}));
  }, config.intervalS * 1000);
  timer.unref();

  return {
    evaluate,
    status: () => ({ firing: state.firing(), webhook: { ...webhook.counters, pending: webhook.pending } }),
    stop: async () => {
      clearInterval(timer);
      await running?.catch(() => undefined);
      await webhook.stop();
    },
  };
}
