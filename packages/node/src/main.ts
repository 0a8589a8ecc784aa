/**
 * `cgn node`: runs a regional node until SIGINT/SIGTERM, then drains and exits.
 */
import { parseArgs } from 'node:util';
import { startNode } from './node.js';
import { EDGE_TIMEOUT_DEFAULTS, NODE_DEFAULTS } from './options.js';
import { createLogger } from './log.js';
import { readGrantsFile } from './tiers/grants-file.js';
import { readAccountsFile } from './accounts/policies-file.js';
import { plaintextProblem } from '@cgn/protocol';
import { runNodeKeysFromArgs } from './keys-cli.js';

export const NODE_USAGE = `Usage: cgn node [options]
       cgn node keys add|list|revoke   API keys of a node without central (cgn node keys --help)

Runs a regional CGN node: the work endpoint (/v1/d/{dservice}/{path}), the status endpoint
(/v1/status) and the miner endpoint (WebSocket), with the broker and the metering ledger.

Options:
  --node-id ID           node id in the network            (default ${NODE_DEFAULTS.nodeId})
  --host HOST            interface to listen on             (default ${NODE_DEFAULTS.host})
  --work-port PORT       work + status port, 0 = any free   (default ${NODE_DEFAULTS.workPort})
  --miner-port PORT      miner WebSocket port, 0 = any free (default ${NODE_DEFAULTS.minerPort})
  --data-dir DIR         ledger and state directory         (default ${NODE_DEFAULTS.dataDir})
  --dservice DIR         a DService package to route to (repeatable; needs dservice.json)
  --keys FILE            API keys file                      (default <data-dir>/api-keys.json;
                         manage it with cgn node keys add|list|revoke; unused with --central-port)
  --accept-any-miner     let any miner key join (local/dev networks only)
  --miner-key HEX        a miner public key allowed to join (repeatable)
  --dedicated-miner HEX  a miner public key allowed to join and granted the dedicated tier (repeatable;
                         with central, staff grant it there: cgn miner grant)
  --attest-interval MS   attested tier: re-challenge each attested miner this often (default 60000)
  --attest-timeout MS    attested tier: time to answer a challenge with a quote; a nonce's lifetime (default 10000)
  --grants FILE          this node's own grants: {"miners": {"<id>": {"tier", "attestationKey"}},
                         "attestation": {"runtimes": [...], "dservices": {"name": "digest"}}}
  --accounts FILE        accounts' fair-queue weights and quotas (without central; with it, central's win):
                         {"defaults": {"weight": 1, "maxConcurrent": 100}, "byAccount": {"<account>": {"weight": 2, "perSecond": 50, "burst": 100}}}
  --durability MODE      normal (survives a killed process) | full (survives power loss)
  --max-queue N          queue depth past which work gets 503 (default ${NODE_DEFAULTS.broker.maxQueueDepth})
  --max-queue-age MS     queue age past which work gets 503   (default ${NODE_DEFAULTS.broker.maxQueueAgeMs})
  --ack-timeout MS       time a miner has to ack a work unit before its acks are measured; a miner's
                         deadline then follows its ack round trip, at most 4x this  (default ${NODE_DEFAULTS.broker.ackTimeoutMs})
  --central-port PORT    listen for central's mutual-TLS link on PORT (keys and approvals come from central)
  --pki DIR              certificates for the central link: ca.crt, node-<id>.crt, node-<id>.key
  --key-ttl MS           how long a key checked with central is trusted (default 30000)
  --operator-address 0x  EVM address the operator's share is paid to (claimed with cgn wallet claim)
  --charity-address 0x   EVM address the charity's share is paid to
  --developer-address NAME=0x  EVM address of DService developer NAME (descriptor "developer"; repeatable)
  --enforce-balance      refuse work with 402 when the account's prepaid balance cannot cover it
                         (credit balances with: cgn ledger credit --ledger <data-dir>/ledger.sqlite)
  --no-rate-limit        turn off the per-key and per-IP rate limits of the work endpoint

Open tier (stake, redundant execution, slashing):
  --chain-rpc URL        JSON-RPC endpoint: open-tier miners must prove a staked address
                         (Staking.isOpenTierEligible), their work runs on two miners, proven
                         cheaters are slashed
  --contracts FILE       contract addresses from deployment (cgn dev: .cgn/chain-contracts.json)
  --slasher-key HEX      key with SLASHER_ROLE that sends the slashes (env CGN_SLASHER_KEY);
                         without it cheaters are banned at this node but not slashed
  --redundancy FLOOR     open tier: check results on a second miner; a new miner's results
                         always, a proven one's at least this share (falls by --verification-decay
                         per clean result); 1 = every result, 0 = off (default 0.05 with
                         --chain-rpc, else 0). A DService's descriptor may set its own
                         "verification": { "floor", "decay" }; only deterministic DServices are checked
  --verification-decay F factor a miner's check probability falls by per clean result (default 0.8)
  --stake-refresh MS     how often admitted open-tier miners are re-checked on chain (default 30000)
  Deadlines for strangers (a slower client is cut off):
  --headers-timeout MS   time to send a request's headers     (default ${EDGE_TIMEOUT_DEFAULTS.headersMs})
  --request-timeout MS   time to send a whole request         (default ${EDGE_TIMEOUT_DEFAULTS.requestMs})
  --min-body-rate B/S    slowest upload accepted, bytes per second over ${EDGE_TIMEOUT_DEFAULTS.bodyRateWindowMs / 1000} s windows;
                         slower gets 408 (default ${EDGE_TIMEOUT_DEFAULTS.minBodyBytesPerS}, 0 = off)
  --keep-alive-timeout MS  idle keep-alive connections close after (default ${EDGE_TIMEOUT_DEFAULTS.keepAliveMs})
  --handshake-timeout MS time a miner has from connecting to advertising (default ${EDGE_TIMEOUT_DEFAULTS.minerHandshakeMs})
  --tls-cert FILE        serve the work endpoint over HTTPS and the miner endpoint over WSS with this
                         certificate (PEM; reloaded when the file changes, open connections kept)
  --tls-key FILE         ... and this private key (PEM)
  --plaintext            serve plain HTTP/WS on a non-loopback --host (only behind a TLS-terminating
                         load balancer; warned). Without TLS flags the node only listens on loopback.
  --metrics-token TOKEN  GET /metrics (Prometheus, on the work port) needs Authorization: Bearer TOKEN
                         (or CGN_METRICS_TOKEN; default: open, metrics hold no account, key or payload)
  --alerts FILE          alert rules (JSON, or YAML for .yaml/.yml) evaluated in the node, notices POSTed
                         to their webhook (README: Alerts)
  --no-placement         do not place DServices on miners (only miners started with --dservice run them)
  --placement-idle MS    an idle DService's instances are stopped (down to its instances.min) after this
                         (default 300000)
  --cold-start-timeout MS  a placed instance not ready after this is given up and placed elsewhere
                         (default 60000)
  --no-probe             do not run the capability probe on joining miners (their claims are believed)
  -h, --help             show this help
`;

export async function runNodeFromArgs(argv: string[]): Promise<void> {
  if (argv[0] === 'keys') {
    process.exitCode = runNodeKeysFromArgs(argv.slice(1));
    return;
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'node-id': { type: 'string' }, host: { type: 'string' }, 'work-port': { type: 'string' }, 'miner-port': { type: 'string' },
        'data-dir': { type: 'string' }, dservice: { type: 'string', multiple: true }, keys: { type: 'string' },
        'accept-any-miner': { type: 'boolean' }, 'miner-key': { type: 'string', multiple: true }, 'dedicated-miner': { type: 'string', multiple: true }, grants: { type: 'string' }, accounts: { type: 'string' }, 'attest-interval': { type: 'string' }, 'attest-timeout': { type: 'string' }, durability: { type: 'string' },
        'max-queue': { type: 'string' }, 'max-queue-age': { type: 'string' }, 'ack-timeout': { type: 'string' }, help: { type: 'boolean', short: 'h' },
        'central-port': { type: 'string' }, pki: { type: 'string' }, 'key-ttl': { type: 'string' }, 'no-rate-limit': { type: 'boolean' }, 'enforce-balance': { type: 'boolean' },
        'chain-rpc': { type: 'string' }, contracts: { type: 'string' }, 'slasher-key': { type: 'string' }, redundancy: { type: 'string' }, 'verification-decay': { type: 'string' }, 'stake-refresh': { type: 'string' },
        'headers-timeout': { type: 'string' }, 'request-timeout': { type: 'string' }, 'min-body-rate': { type: 'string' },
        'keep-alive-timeout': { type: 'string' }, 'handshake-timeout': { type: 'string' },
        'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, plaintext: { type: 'boolean' },
        'metrics-token': { type: 'string' }, alerts: { type: 'string' },
        'no-placement': { type: 'boolean' }, 'placement-idle': { type: 'string' }, 'cold-start-timeout': { type: 'string' }, 'no-probe': { type: 'boolean' },
        'operator-address': { type: 'string' }, 'charity-address': { type: 'string' }, 'developer-address': { type: 'string', multiple: true },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`cgn node: ${(err as Error).message}\n\n${NODE_USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(NODE_USAGE);
    return;
  }
  const num = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) {
      process.stderr.write(`cgn node: --${name} must be a number, got "${v}"\n`);
      process.exit(2);
    }
    return n;
  };
  const broker: Record<string, number> = {};
  const mq = num(values['max-queue'], 'max-queue');
  const ma = num(values['max-queue-age'], 'max-queue-age');
  const at = num(values['ack-timeout'], 'ack-timeout');
  if (mq !== undefined) broker['maxQueueDepth'] = mq;
  if (ma !== undefined) broker['maxQueueAgeMs'] = ma;
  if (at !== undefined) broker['ackTimeoutMs'] = at;
  const red = num(values.redundancy, 'redundancy');
  if (red !== undefined) broker['redundancy'] = red;
  const decay = num(values['verification-decay'], 'verification-decay');
  if (decay !== undefined) broker['verificationDecay'] = decay;
  const input: Record<string, unknown> = { broker, dservices: values.dservice ?? [], acceptAnyMiner: values['accept-any-miner'] ?? false, minerKeys: values['miner-key'] ?? [] };
  try {
    const grants = values.grants !== undefined ? readGrantsFile(values.grants) : { miners: {}, attestation: { runtimes: [], dservices: {} } };
    for (const id of values['dedicated-miner'] ?? []) grants.miners[id.toLowerCase()] = { ...grants.miners[id.toLowerCase()], tier: 'dedicated' };
    input['grants'] = grants;
    if (values.accounts !== undefined) input['accounts'] = readAccountsFile(values.accounts);
  } catch (err) {
    process.stderr.write(`cgn node: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const attestation: Record<string, number | undefined> = { intervalMs: num(values['attest-interval'], 'attest-interval'), timeoutMs: num(values['attest-timeout'], 'attest-timeout') };
  input['attestation'] = Object.fromEntries(Object.entries(attestation).filter(([, v]) => v !== undefined));
  if (values['node-id'] !== undefined) input['nodeId'] = values['node-id'];
  if (values.host !== undefined) input['host'] = values.host;
  if (values['work-port'] !== undefined) input['workPort'] = num(values['work-port'], 'work-port');
  if (values['miner-port'] !== undefined) input['minerPort'] = num(values['miner-port'], 'miner-port');
  if (values['data-dir'] !== undefined) input['dataDir'] = values['data-dir'];
  if (values.keys !== undefined) input['keysFile'] = values.keys;
  if (values.durability !== undefined) input['durability'] = values.durability;
  if (values['no-rate-limit']) input['rateLimits'] = null;
  const timeouts: Record<string, number | undefined> = {
    headersMs: num(values['headers-timeout'], 'headers-timeout'),
    requestMs: num(values['request-timeout'], 'request-timeout'),
    minBodyBytesPerS: num(values['min-body-rate'], 'min-body-rate'),
    keepAliveMs: num(values['keep-alive-timeout'], 'keep-alive-timeout'),
    minerHandshakeMs: num(values['handshake-timeout'], 'handshake-timeout'),
  };
  input['timeouts'] = Object.fromEntries(Object.entries(timeouts).filter(([, v]) => v !== undefined));
  if (values['enforce-balance']) input['billing'] = { enforceBalance: true };
  const developers: Record<string, string> = {};
  for (const d of values['developer-address'] ?? []) {
    const eq = d.lastIndexOf('=');
    if (eq <= 0) {
      process.stderr.write(`cgn node: --developer-address must be NAME=0xADDRESS, got "${d}"\n`);
      process.exit(2);
    }
    developers[d.slice(0, eq)] = d.slice(eq + 1);
  }
  input['payTo'] = { operator: values['operator-address'] ?? null, charity: values['charity-address'] ?? null, developers };
  if (values['central-port'] !== undefined || values.pki !== undefined) {
    if (values['central-port'] === undefined || values.pki === undefined) {
      process.stderr.write('cgn node: --central-port and --pki go together\n');
      process.exit(2);
    }
    input['central'] = { port: num(values['central-port'], 'central-port'), pkiDir: values.pki, keyTtlMs: num(values['key-ttl'], 'key-ttl') ?? 30_000 };
  }

  const rpcUrl = values['chain-rpc'];
  const contractsFile = values.contracts;
  if (rpcUrl !== undefined || values['slasher-key'] !== undefined) {
    if (rpcUrl === undefined || contractsFile === undefined) {
      process.stderr.write('cgn node: --chain-rpc needs --contracts FILE (and --slasher-key goes with both)\n');
      process.exit(2);
    }
    const slasherKey = values['slasher-key'] ?? process.env['CGN_SLASHER_KEY'];
    input['staking'] = { rpcUrl, contractsFile, ...(slasherKey !== undefined ? { slasherKey } : {}), ...(values['stake-refresh'] !== undefined ? { refreshMs: num(values['stake-refresh'], 'stake-refresh') } : {}) };
  }

  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) {
    process.stderr.write('cgn node: --tls-cert and --tls-key go together\n');
    process.exit(2);
  }
  if (values['tls-cert'] !== undefined) {
    if (values.plaintext) {
      process.stderr.write('cgn node: --plaintext and --tls-cert contradict each other: choose one\n');
      process.exit(2);
    }
    input['tls'] = { certFile: values['tls-cert'], keyFile: values['tls-key']! };
  } else {
    const refusal = plaintextProblem(values.host ?? NODE_DEFAULTS.host, values.plaintext === true, 'the work and miner endpoints', '--tls-cert FILE --tls-key FILE');
    if (refusal !== null) {
      process.stderr.write(`cgn node: ${refusal}\n`);
      process.exit(2);
    }
  }

  const idle = num(values['placement-idle'], 'placement-idle');
  const coldStart = num(values['cold-start-timeout'], 'cold-start-timeout');
  input['placement'] = {
    ...(values['no-placement'] === true ? { enabled: false } : {}),
    ...(values['no-probe'] === true ? { probe: false } : {}),
    ...(idle !== undefined ? { autoscale: { idleToZeroMs: idle } } : {}),
    ...(coldStart !== undefined ? { coldStartTimeoutMs: coldStart } : {}),
  };

  const metricsToken = values['metrics-token'] ?? process.env['CGN_METRICS_TOKEN'];
  if (metricsToken !== undefined && metricsToken !== '') input['metricsToken'] = metricsToken;

  if (values.alerts !== undefined) {
    try {
      input['alerts'] = (await import('./alerts/config.js')).loadAlertConfig(values.alerts); // yaml only when asked for
    } catch (err) {
      process.stderr.write(`cgn node: --alerts: ${(err as Error).message}\n`);
      process.exit(2);
    }
  }

  const log = createLogger('cgn-node');
  if (values.plaintext) log.warn({}, 'serving plaintext HTTP and WS (--plaintext): API keys and data cross the network unencrypted unless a TLS-terminating load balancer is in front');
  let node;
  try {
    node = await startNode(input, { log });
  } catch (err) {
    process.stderr.write(`cgn node: ${(err as Error).message}\n`);
    process.exit(1);
  }
  // Machine-readable line for supervisors (cgn dev) and tests.
  process.stdout.write(JSON.stringify({ event: 'ready', workUrl: node.workUrl, statusUrl: node.statusUrl, metricsUrl: node.metricsUrl, minerUrl: node.minerUrl, centralLinkUrl: node.centralLinkUrl, pid: process.pid }) + '\n');
  if (values['central-port'] === undefined && !node.keys.list().some((k) => (k.revokedAt ?? null) === null)) {
    const where = values.keys !== undefined ? `--keys ${values.keys}` : `--data-dir ${values['data-dir'] ?? NODE_DEFAULTS.dataDir}`;
    log.warn({}, `no API keys yet: every work request is refused (401) until one is made with cgn node keys add --account NAME ${where}`);
  }
  const shutdown = (signal: string) => {
    log.info({ signal }, 'shutting down');
    node.stop().then(
      () => log.flush(() => process.exit(0)),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}
