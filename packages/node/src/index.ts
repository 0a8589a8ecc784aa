/**
 * @cgn/node — a regional CGN node: work endpoint, miner endpoint, status endpoint and the broker.
 *
 * ```ts
 * import { startNode } from '@cgn/node';
 * const node = await startNode({ dservices: ['dservices/mediagen'], acceptAnyMiner: true });
 * console.log(node.workUrl, node.minerUrl);
 * await node.stop();
 * ```
 */
export { startNode, type RunningNode } from './node.js';
export { resolveNodeOptions, NODE_DEFAULTS, type NodeOptions, type NodeOptionsInput } from './options.js';
export { Broker, BROKER_DEFAULTS, type BrokerOptions } from './broker/broker.js';
export { pickMiner } from './broker/assign.js';
export { WorkQueue } from './broker/queue.js';
export { FileApiKeyStore, newApiKey, hashApiKey, type ApiKeyVerifier, type Principal } from './auth/api-keys.js';
export { DServiceRegistry } from './registry.js';
export { CLOSE } from './tunnel/close-codes.js';
export { runNodeFromArgs } from './main.js';
export { NodeBilling, BILLING_DEFAULTS, type BillingOptions } from './billing.js';
export { decide, resultHashHex, type DisputeVerdict, type RedundancyCounters } from './broker/redundancy.js';
export {
  buildEvidence, evidenceHash, EvidenceStore, EVIDENCE_KIND, OpenTierGate, Slasher, startOpenTier,
  type Evidence, type EvidenceRecord, type OpenTier, type OverReport, type SlashOutcome, type StakingOptions,
} from './slashing/index.js';
export { NodeMetrics, OTHER_DSERVICE, type NodeMetricSources, type RequestTiming } from './metrics/node-metrics.js';
export { startAlerter, type Alerter, type AlerterSources } from './alerts/alerter.js';
export { parseAlertConfig, loadAlertConfig, ALERT_DEFAULTS, AlertConfigError, RULE_NAMES, type AlertConfig, type AlertRules, type RuleName, type Severity } from './alerts/config.js';
export { evaluateRules, type AlertInputs, type Violation } from './alerts/rules.js';
export { AlertState, type AlertNotice } from './alerts/state.js';
export { WebhookNotifier } from './alerts/webhook.js';
