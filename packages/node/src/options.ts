/**
 * Node options: every field with its default, filled and checked in one place.
 */
import { TIERS, type RateLimit, type Tier, type TlsFiles } from '@cgn/protocol';
import { BROKER_DEFAULTS, type BrokerOptions } from './broker/broker.js';
import { BILLING_DEFAULTS, type BillingOptions } from './billing.js';
import type { StakingOptions } from './slashing/index.js';
import { NO_GRANTS, parseGrants, type NodeGrants } from './tiers/grants-file.js';
import type { AlertConfig } from './alerts/config.js';
import { DEFAULT_ACCOUNT_POLICY, parseAccountPolicy, type AccountPolicy, type AccountPolicyInput } from './accounts/policies.js';
import { PLACEMENT_DEFAULTS, resolvePlacementOptions, type PlacementOptions, type PlacementOptionsInput } from './placement/options.js';

/**
 * Deadlines on every socket a stranger can open (the work port and the miner port). A client that
 * is slower than these is cut off: it cannot hold a connection, a body buffer or a handshake slot
 * for longer.
 */
export interface EdgeTimeouts {
  /** Time a client has to send a request's headers (work port), ms. Default 10000. */
  headersMs: number;
  /** Time a client has to send a whole request, headers and body (work port), ms. Default 300000. */
  requestMs: number;
  /**
   * Slowest body accepted, bytes per second, measured over each `bodyRateWindowMs`: a body that
   * trickles slower gets 408 and the connection is closed. Default 1024 (0 turns it off).
   */
  minBodyBytesPerS: number;
  /** Window over which the body rate is measured, ms. Default 10000. */
  bodyRateWindowMs: number;
  /**
   * How long an idle keep-alive connection stays open (work port), ms. Default 65000: longer than
   * the 60 s idle timeout of common load balancers, so they never reuse a connection the node closed.
   */
  keepAliveMs: number;
  /** Time a miner connection has to upgrade to WebSocket and then complete hello to advertise, ms. Default 5000. */
  minerHandshakeMs: number;
}

export const EDGE_TIMEOUT_DEFAULTS: EdgeTimeouts = {
  headersMs: 10_000,
  requestMs: 300_000,
  minBodyBytesPerS: 1024,
  bodyRateWindowMs: 10_000,
  keepAliveMs: 65_000,
  minerHandshakeMs: 5_000,
};

export interface NodeOptions {
  /** This node's id in the network (miners sign it; records carry it). Default "node-local-1". */
  nodeId: string;
  /** Interface to listen on. Default 127.0.0.1. */
  host: string;
  /** Work + status endpoint port (0 = any free port). Default 8080. */
  workPort: number;
  /** Miner (WebSocket) endpoint port (0 = any free port). Default 8081. */
  minerPort: number;
  /** Directory for the ledger and other state. Default ".cgn/node". */
  dataDir: string;
  /** DService package directories the node routes to. */
  dservices: string[];
  /** API keys file; default `<dataDir>/api-keys.json`. */
  keysFile: string;
  /** Accept any miner key (local network). Default false: only keys in `minerKeys`. */
  acceptAnyMiner: boolean;
  /** Miner ids (hex public keys) allowed to join. */
  minerKeys: string[];
  /**
   * This node's own tier grants by miner id (each also admits its key) and its attestation
   * allow-list, for nodes without central (`--grants FILE`, `--dedicated-miner HEX`). Central's
   * registry grants every other key. Default: none.
   */
  grants: NodeGrants;
  /**
   * The attested tier: a miner advertising it gets a fresh nonce at admission and every
   * `intervalMs` (default 60000), and must answer with a verifying TPM quote within `timeoutMs`
   * (default 10000; also how long a nonce lives).
   */
  attestation: { intervalMs: number; timeoutMs: number };
  /** Tier used when a request does not say. Default "open". */
  defaultTier: Tier;
  /** Ledger durability: "normal" survives a killed process, "full" survives power loss. */
  durability: 'normal' | 'full';
  /** Miner ping interval, ms. Default 5000. */
  heartbeatMs: number;
  /** Retry-After seconds on 503. Default 1. */
  retryAfterS: number;
  /** Work-endpoint rate limits (429 past them); null turns them off. */
  rateLimits: { perKey: RateLimit; perIp: RateLimit } | null;
  /**
   * The central link: a mutual-TLS WebSocket endpoint central dials into. With it, API keys are
   * checked with central (cached for `keyTtlMs`) and the node routes only to approved DServices.
   * `pkiDir` holds `ca.crt`, `node-<id>.crt` and `node-<id>.key`. Null: no central (keys file).
   */
  central: { port: number; pkiDir: string; keyTtlMs: number } | null;
  /** Prices, the split agreement, and whether work needs a prepaid balance (402 otherwise). */
  billing: BillingOptions;
  /**
   * EVM addresses the operator's, the charity's and DService developers' (by descriptor
   * `developer`) credits are paid to; registered in the ledger at start. Miners advertise theirs.
   * Without one, a beneficiary's credits go to a placeholder address nobody can claim.
   */
  payTo: { operator: string | null; charity: string | null; developers: Record<string, string> };
  broker: BrokerOptions;
  /**
   * Accounts' fair-queue weights and quotas for a node without central (with central, central's
   * account settings replace these as it pushes them). Default: weight 1, no quotas.
   */
  accounts: { defaults: AccountPolicy; byAccount: Record<string, AccountPolicyInput> };
  /**
   * Stake checks and slashing for the `open` tier on an EVM chain: open-tier miners must prove a
   * staked address (`Staking.isOpenTierEligible`), open-tier work runs redundantly
   * (`broker.redundancy`, the verification floor, defaults to 0.05 then) and proven cheaters are slashed. Null (default): the
   * open tier takes miners without stake and `broker.redundancy` defaults to 0.
   */
  staking: StakingOptions | null;
  /** Deadlines for strangers' sockets (see `EdgeTimeouts`). */
  timeouts: EdgeTimeouts;
  /**
   * The certificate and key (PEM files) the work endpoint serves HTTPS and the miner endpoint WSS
   * with, reloaded when the files change. Null: plaintext (the CLI allows it on loopback, or with
   * `--plaintext` behind a TLS-terminating load balancer).
   */
  tls: TlsFiles | null;
  /**
   * A bearer token `GET /metrics` requires. Null (default): metrics are open to whoever reaches
   * the work port (they hold no account, key or payload; see metrics/access.ts).
   */
  metricsToken: string | null;
  /** Alert rules and their webhook (`--alerts FILE`, alerts/config.ts); null (default): no alerts. */
  alerts: AlertConfig | null;
  /** Placement of packaged DServices on miners and the capability probe (placement/options.ts). */
  placement: PlacementOptions;
}

/** The verification floor a node with stake checks starts with (see `broker/verification.ts`). */
export const DEFAULT_VERIFICATION_FLOOR = 0.05;

export const NODE_DEFAULTS: Omit<NodeOptions, 'keysFile'> = {
  nodeId: 'node-local-1',
  host: '127.0.0.1',
  workPort: 8080,
  minerPort: 8081,
  dataDir: '.cgn/node',
  dservices: [],
  acceptAnyMiner: false,
  minerKeys: [],
  grants: NO_GRANTS,
  attestation: { intervalMs: 60_000, timeoutMs: 10_000 },
  defaultTier: 'open',
  durability: 'normal',
  heartbeatMs: 5000,
  retryAfterS: 1,
  rateLimits: { perKey: { burst: 40_000, perSecond: 20_000 }, perIp: { burst: 40_000, perSecond: 20_000 } },
  central: null,
  billing: BILLING_DEFAULTS,
  payTo: { operator: null, charity: null, developers: {} },
  broker: BROKER_DEFAULTS,
  accounts: { defaults: DEFAULT_ACCOUNT_POLICY, byAccount: {} },
  staking: null,
  timeouts: EDGE_TIMEOUT_DEFAULTS,
  tls: null,
  metricsToken: null,
  alerts: null,
  placement: PLACEMENT_DEFAULTS,
};

export type NodeOptionsInput = Partial<Omit<NodeOptions, 'broker' | 'billing' | 'staking' | 'timeouts' | 'attestation' | 'accounts' | 'placement'>> & {
  placement?: PlacementOptionsInput;
  accounts?: { defaults?: AccountPolicyInput; byAccount?: Record<string, AccountPolicyInput> };
  attestation?: Partial<NodeOptions['attestation']>;
  broker?: Partial<BrokerOptions>;
  timeouts?: Partial<EdgeTimeouts>;
  billing?: Partial<BillingOptions>;
  staking?: (Omit<StakingOptions, 'refreshMs' | 'slasherKey'> & Partial<StakingOptions>) | null;
};

export function resolveNodeOptions(input: NodeOptionsInput): NodeOptions {
  const o: NodeOptions = {
    ...NODE_DEFAULTS,
    ...input,
    keysFile: input.keysFile ?? `${input.dataDir ?? NODE_DEFAULTS.dataDir}/api-keys.json`,
    broker: { ...BROKER_DEFAULTS, ...(input.staking != null ? { redundancy: DEFAULT_VERIFICATION_FLOOR } : {}), ...input.broker },
    staking: input.staking == null ? null : { refreshMs: 30_000, slasherKey: null, ...input.staking },
    timeouts: { ...EDGE_TIMEOUT_DEFAULTS, ...input.timeouts },
    attestation: { ...NODE_DEFAULTS.attestation, ...input.attestation },
    billing: { ...BILLING_DEFAULTS, operator: `operator:${input.nodeId ?? NODE_DEFAULTS.nodeId}`, ...input.billing },
    accounts: { defaults: parseAccountPolicy(input.accounts?.defaults ?? {}, 'option accounts.defaults'), byAccount: input.accounts?.byAccount ?? {} },
    placement: resolvePlacementOptions(input.placement),
  };
  const split = Object.values(o.billing.split).reduce((a, b) => a + b, 0);
  if (split !== 10_000) throw new Error(`option billing.split: basis points must sum to 10000, not ${split}`);
  for (const [k, v] of Object.entries(o.billing.price)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`option billing.price.${k}: must be a non-negative integer (fiat micro-units)`);
  }
  const port = (n: number, name: string) => {
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`option ${name}: ${n} is not a port number (0-65535)`);
  };
  port(o.workPort, 'workPort');
  port(o.minerPort, 'minerPort');
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(o.nodeId)) throw new Error(`option nodeId: "${o.nodeId}" must be 1-64 letters, digits, dot, dash or underscore`);
  o.grants = parseGrants(o.grants, 'option grants');
  for (const [k, v] of Object.entries(o.attestation)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 10) throw new Error(`option attestation.${k}: must be a number of milliseconds (at least 10)`);
  }
  if (!TIERS.includes(o.defaultTier)) throw new Error(`option defaultTier: must be one of ${TIERS.join(', ')}`);
  if (o.durability !== 'normal' && o.durability !== 'full') throw new Error('option durability: must be "normal" or "full"');
  for (const [k, v] of Object.entries(o.broker)) {
    if (k === 'redundancy' || k === 'verificationDecay') {
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`option broker.${k}: must be a number from 0 to 1`);
    } else if (typeof v !== 'number' || !(v > 0)) throw new Error(`option broker.${k}: must be a positive number`);
  }
  for (const [k, v] of Object.entries(o.timeouts)) {
    const min = k === 'minBodyBytesPerS' ? 0 : 1;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new Error(`option timeouts.${k}: must be a number of at least ${min}`);
  }
  if (o.timeouts.requestMs < o.timeouts.headersMs) throw new Error('option timeouts.requestMs: must be at least timeouts.headersMs');
  if (o.heartbeatMs < 100) throw new Error('option heartbeatMs: must be at least 100');
  if (o.staking !== null) {
    if (!/^https?:\/\//.test(o.staking.rpcUrl)) throw new Error(`option staking.rpcUrl: "${o.staking.rpcUrl}" is not an http(s) JSON-RPC URL`);
    if (o.staking.slasherKey !== null && !/^0x[0-9a-fA-F]{64}$/.test(o.staking.slasherKey)) throw new Error('option staking.slasherKey: must be 0x and 64 hex digits');
    if (!(o.staking.refreshMs >= 100)) throw new Error('option staking.refreshMs: must be at least 100');
  }
  const evm = /^0x[0-9a-fA-F]{40}$/;
  for (const [k, v] of [['operator', o.payTo.operator], ['charity', o.payTo.charity], ...Object.entries(o.payTo.developers).map(([d, a]) => [`developers.${d}`, a])] as [string, string | null][]) {
    if (v !== null && !evm.test(v)) throw new Error(`option payTo.${k}: "${v}" is not an EVM address (0x + 40 hex digits)`);
  }
  return o;
}
