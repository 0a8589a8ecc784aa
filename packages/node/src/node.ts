/**
 * A regional node: the work and status endpoints (node:http), the miner endpoint (WebSocket),
 * the broker between them and the metering ledger. `startNode` builds and starts them in order;
 * `stop` drains: no new work, in-flight and queued work finishes, then everything closes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CgnError, RateLimiter, TIERS, describeCert, frame, loadTlsPair, watchTlsFiles, type Tier } from '@cgn/protocol';
import { PayoutNotifier } from './payout-notices.js';
import { ReputationNotifier } from './reputation-notices.js';
import { startCentralLink } from './central/attach.js';
import { NodeBilling } from './billing.js';
import { openLedger, type Ledger } from '@cgn/ledger';
import { Broker } from './broker/broker.js';
import { MinerEndpoint } from './tunnel/miner-endpoint.js';
import { createWorkEndpoint } from './http/work-endpoint.js';
import { BodyPool } from './http/body-pool.js';
import { MeteringClips } from './charge-bound.js';
import { sendProblem, toCgnError } from './http/problem.js';
import { FileApiKeyStore, type ApiKeyVerifier } from './auth/api-keys.js';
import { DServiceRegistry } from './registry.js';
import { resolveNodeOptions, type NodeOptions, type NodeOptionsInput } from './options.js';
import { createLogger, type Logger } from './log.js';
import type { OpenTier, OverReport } from './slashing/index.js';
import { localGrant, type MinerGrant } from './tiers/grants.js';
import { TpmQuoteVerifier, type AttestationPolicy } from './attestation/verifier.js';
import { AccountPolicies, type AccountPolicyInput } from './accounts/policies.js';
import { QuotaGate } from './accounts/quotas.js';
import { diagnose, refusalOf, type Diagnosis } from './explain/diagnose.js';
import { explainAccess } from './explain/access.js';
import { NodeMetrics } from './metrics/node-metrics.js';
import { metricsAccess } from './metrics/access.js';
import { startAlerter, type Alerter } from './alerts/alerter.js';
import { cycleIsEmpty, type CycleSummary } from '@cgn/ledger';
import { loadDServicePackage } from '@cgn/miner/packages';
import { PackageSource, packageFromLink } from './packages/package-source.js';
import { PlacementFrames } from './packages/placement-frames.js';
import { FRAME_OVERHEAD_BYTES, routableBodyLimit, tunnelBodyLimit } from './tunnel/frame-limit.js';
import { attachPlacement, type Placement } from './placement/attach.js';

/**
 * Light load, for the tunnel outboxes and the ledger writer: nothing went out (was committed) for
 * this long, so a frame (record) goes at once instead of waiting a turn for company.
 */
const QUIET_MS = 1;

/** How often the body pool drops the blocks that went unused since the last time. */
const BODY_POOL_TRIM_MS = 30_000;

export interface RunningNode {
  options: NodeOptions;
  workUrl: string;
  statusUrl: string;
  minerUrl: string;
  /** Where central dials this node (wss, mutual TLS), when the node has a central link. */
  centralLinkUrl: string | null;
  broker: Broker;
  keys: FileApiKeyStore;
  /** The node's ledger (records, cycles, balances) and its billing (prices, balance guard, idempotency). */
  ledger: Ledger;
  billing: NodeBilling;
  /** Accounts' fair-queue weights and quotas (from options, or pushed by central). */
  accounts: AccountPolicies;
  quotas: QuotaGate;
  /** Why work of a DService would (not) run now: the diagnosis behind refusals and `GET /v1/explain`. */
  explain(dservice: string, tier: Tier, account?: string | null): Diagnosis;
  /** Open-tier stake checks, evidence and slashing; null when neither stake checks nor redundancy are on. */
  openTier: OpenTier | null;
  status(): Record<string, unknown>;
  /** Prometheus metrics (served at `GET /metrics` on the work port). */
  metrics: NodeMetrics;
  metricsUrl: string;
  /** The alert loop (`options.alerts`), or null. */
  alerts: Alerter | null;
  /** DService packages served to miners (`GET /v1/packages/<digest>` on the miner endpoint); `packages.lookup(name)`. */
  packages: PackageSource;
  /** `place` / `unplace` frames to miners and their `placed` answers (events). */
  placement: PlacementFrames;
  /** The placement controller (autoscale + place each tick) and the miners' capability probes. */
  placer: Placement;
  /** Graceful: refuses new work, finishes what it owns (up to `graceMs`), then closes. */
  stop(graceMs?: number): Promise<void>;
}

const clock = { now: () => Date.now() };

/** Registers the configured operator, charity and developer payout addresses in the ledger. */
function registerPayTo(store: Ledger['store'], options: NodeOptions, log: Logger): void {
  const { payTo, billing } = options;
  const entries: ['operator' | 'charity' | 'developer', string, string | null][] = [
    ['operator', billing.operator, payTo.operator],
    ['charity', billing.charity, payTo.charity],
    ...Object.entries(payTo.developers).map(([id, a]) => ['developer', id, a] as ['developer', string, string]),
  ];
  for (const [role, id, address] of entries) {
    if (address === null) continue;
    store.registerAddress(role, id, address);
    log.info({ role, id, address }, 'payout address registered in the ledger');
  }
}

export async function startNode(input: NodeOptionsInput, extra: { log?: Logger; keys?: ApiKeyVerifier } = {}): Promise<RunningNode> {
  const options = resolveNodeOptions(input);
  const log = extra.log ?? createLogger('cgn-node');
  mkdirSync(options.dataDir, { recursive: true });
  const registry = DServiceRegistry.fromDirs(options.dservices);
  const localNames = new Set(registry.list().map((d) => d.name));
  // Local DServices packed once, so a miner started without them can be given them.
  const packages = new PackageSource({
    dir: join(options.dataDir, 'packages'), log,
    // Central's approved packages come over the node's own link (mutual TLS), on first demand.
    fromCentral: options.central === null ? null : (digest, size) => {
      if (central === null) throw new CgnError('dservice_unavailable', 'no central link', { retryable: true });
      return packageFromLink((op, args, ms) => central.link.request(op, args, ms))(digest, size);
    },
  });
  await packages.addLocal(options.dservices.map((dir) => {
    const p = loadDServicePackage(dir);
    return { dir: p.dir, name: p.descriptor.name, version: p.descriptor.version };
  }));
  let placement: PlacementFrames | null = null;
  let placer: Placement | null = null;
  const keyStore = new FileApiKeyStore(options.keysFile);
  let draining = false;
  let endpoint: MinerEndpoint | null = null;
  let broker: Broker;
  let metrics: NodeMetrics | null = null;
  const ledger = openLedger({ path: join(options.dataDir, 'ledger.sqlite'), durability: options.durability, writer: { commitAtOnceWhenQuietMs: QUIET_MS, refuseOverdraft: options.billing.enforceBalance, onCommit: (n, us) => metrics?.commit(n, us) } });
  ledger.writer.start();
  const billing = await NodeBilling.open(ledger.store, options.billing);
  const openTier =
    options.staking !== null || options.broker.redundancy > 0
      ? // Loaded only here: the chain client (viem) is ~25 MB of an idle node's memory.
        await (await import('./slashing/index.js')).startOpenTier({ nodeId: options.nodeId, dataDir: options.dataDir, staking: options.staking, log })
      : null;
  registerPayTo(ledger.store, options, log);
  const minerPayTo = new Map<string, string>();
  const accounts = new AccountPolicies(options.accounts.defaults, options.accounts.byAccount);
  const quotas = new QuotaGate(accounts, () => performance.now());

  broker = new Broker(
    {
      now: () => performance.now(),
      send: (id, f) => endpoint!.send(id, f),
      closeMiner: (id, reason) => endpoint!.closeMiner(id, reason),
      heardWithin: (id, ms) => endpoint?.heardWithin(id, ms) === true,
      log: (level, msg, fields) => log[level](fields ?? {}, msg),
      ...(openTier !== null ? { onDispute: openTier.onDispute } : {}),
      // Deterministic DServices only; the descriptor may set its own floor and decay.
      verificationOf: (name) => {
        const d = registry.get(name);
        if (d === undefined || !d.deterministic) return null;
        return { floor: d.verification?.floor ?? options.broker.redundancy, decay: d.verification?.decay ?? options.broker.verificationDecay };
      },
      weightOf: (account) => accounts.weightOf(account),
      regionsOf: (account) => accounts.regionsOf(account),
      memoryOf: (name) => registry.get(name)?.resources.memoryMb ?? 0,
      maxResultBytesOf: (name) => registry.get(name)?.maxBodyBytes,
    },
    options.broker,
  );
  const allowed = new Set(options.minerKeys);
  // Fixed at start (frame-limit.ts): at least the descriptor default, so central's DServices fit too.
  const maxBody = tunnelBodyLimit(registry.list());
  // Read before anything listens: a certificate that does not load stops the start with its reason.
  const tls = options.tls === null ? null : loadTlsPair(options.tls);
  // Central first: miner admission and digest checks may ask it.
  const central = options.central === null ? null : await startCentralLink(options, options.central, registry, () => broker.snapshot(), () => draining, log, () => endpoint?.readmit(), (id) => endpoint?.regrant(id), (developer, address) => {
    // The developer's own choice (set at central) wins over this node's --developer-address.
    ledger.store.registerAddress('developer', developer, address);
    log.info({ role: 'developer', id: developer, address }, 'payout address from central registered in the ledger');
  }, (byAccount) => accounts.replaceAll(byAccount as Record<string, AccountPolicyInput>), (approved) => {
    billing.applyApproved(approved);
    // Approved at central but not given to this node as a directory: routed too (miners placed with its package, or started with it).
    for (const a of approved) {
      if (localNames.has(a.name)) continue;
      const body = routableBodyLimit(a.maxBodyBytes, maxBody);
      if (body < a.maxBodyBytes) log.warn({ dservice: a.name, maxBodyBytes: a.maxBodyBytes, tunnelBodyBytes: maxBody }, 'approved DService allows larger bodies than the miner tunnel carries (fixed at start); its larger requests are refused with 413. Give the node a local copy of it to raise the limit');
      registry.add(body < a.maxBodyBytes ? { ...a, maxBodyBytes: body } : a);
    }
    packages.setApproved(approved.flatMap((a) => (a.package === null ? [] : [{ name: a.name, version: a.version, digest: a.package.digest, sizeBytes: a.package.sizeBytes }])));
  });
  const localPolicy: AttestationPolicy = { runtimes: new Set(options.grants.attestation.runtimes), dservices: new Map(Object.entries(options.grants.attestation.dservices)) };
  // Each miner hears how this node sees it (its control app shows it).
  const reputationNotices = new ReputationNotifier({
    nodeId: options.nodeId,
    miners: () => broker.snapshot().miners,
    send: (id, message) => endpoint!.send(id, frame({ t: 'notice', kind: 'reputation', message })),
    intervalMs: 10_000,
  });
  endpoint = new MinerEndpoint(
    {
      attestation: {
        verifier: new TpmQuoteVerifier({ now: () => Date.now(), maxAgeMs: options.attestation.timeoutMs }),
        // With central, its allow-list and approved digests; without, this node's grants file.
        policy: () => (central === null ? localPolicy : central.attestationPolicy()),
        intervalMs: options.attestation.intervalMs,
        timeoutMs: options.attestation.timeoutMs,
        now: () => Date.now(),
      },
      ...(tls !== null ? { tls } : {}),
      host: options.host,
      port: options.minerPort,
      nodeId: options.nodeId,
      heartbeatMs: options.heartbeatMs,
      handshakeTimeoutMs: options.timeouts.minerHandshakeMs,
      maxPayloadBytes: maxBody + FRAME_OVERHEAD_BYTES,
      sendAtOnceWhenQuietMs: QUIET_MS,
      grantOf: (id) => {
        const fallback: MinerGrant | null = allowed.has(id) ? { tier: 'open', attestationKey: null, by: 'node' } : options.acceptAnyMiner ? { tier: 'open', attestationKey: null, by: 'any-miner' } : null;
        const local = localGrant(options.grants.miners, id);
        if (local !== null || central === null) return local ?? fallback;
        // Central's registry grants tiers; a key it does not know may still join open where this node lets it.
        return central.minerGrant(id).then((g) => g ?? fallback, (err: unknown) => {
          if (fallback !== null) return fallback;
          throw err;
        });
      },
      admitDServices: (ad) => (central === null ? ad : central.admitDServices(ad)),
      httpRoute: (req, res) => packages.handle(req, res),
      onPlaced: (id, f) => placement?.onPlaced(id, f),
      onProbed: (id, f) => placer?.onProbed(id, f),
      onProbeError: (id, probeId, message) => placer?.probes?.onRefused(id, probeId, message) ?? false,
      ...(openTier !== null ? { checkAdvert: openTier.checkAdvert } : {}),
      // What was kept per miner goes with it: ids are anyone's fresh keys, so such maps must not only grow.
      minerGone: (id: string) => {
        minerPayTo.delete(id);
        openTier?.gate.forget(id);
        reputationNotices.forget(id);
      },
      onPayoutAddress: (id, address) => {
        if (minerPayTo.get(id) === address.toLowerCase()) return;
        try {
          ledger.store.registerAddress('miner', id, address);
          minerPayTo.set(id, address.toLowerCase());
          log.info({ miner: id.slice(0, 16), address }, 'miner payout address registered in the ledger');
        } catch (err) {
          log.error({ err, miner: id.slice(0, 16) }, 'could not register the miner payout address');
        }
      },
    },
    broker,
    log,
  );
  const minerAddr = await endpoint.start();
  placement = new PlacementFrames((id, f) => endpoint!.send(id, f), packages);
  const placed = (placer = attachPlacement({
    options: options.placement, defaultTier: options.defaultTier, broker, packages, log,
    advertOf: (id) => endpoint!.advertOf(id), send: (id, f) => endpoint!.send(id, f), dservices: () => registry.list(),
    activity: (by, f) => ledger.store.activity(by, f),
  }));
  placement.on('placed', (id, f) => placed.onPlaced(id, f));
  placed.start();
  // A miner without a payout address hears it on its console each time a cycle holds its earnings.
  const payoutNotices = new PayoutNotifier({
    store: ledger.store,
    connected: (id) => endpoint!.hasMiner(id),
    send: (n) => endpoint!.send(n.minerId, frame({ t: 'notice', kind: n.kind, message: n.message })),
    log: (msg, fields) => log.info(fields, msg),
  });
  payoutNotices.start();
  reputationNotices.start();
  openTier?.start((id, reason) => endpoint!.dropMiner(id, reason));

  const keys = extra.keys ?? central?.keys ?? keyStore;
  /** `withQuota` false: the account's regions count, its quotas not (the work endpoint checks those itself, with 429). */
  const explain = (dservice: string, tier: Tier, account: string | null = null, withQuota = true): Diagnosis => {
    const d = registry.get(dservice);
    const regions = account === null ? null : accounts.get(account).regions;
    return diagnose({
      dservice, tier, account, regions,
      descriptor: d === undefined ? null : { memoryMb: d.resources.memoryMb },
      miners: broker.minersOf(dservice),
      queue: broker.queueOf(dservice, tier, account),
      quota: account === null || !withQuota ? null : { usage: quotas.usageOf(account), refusal: quotas.check(account) },
      placement: placed.view(dservice, tier, regions),
    });
  };
  const startedAt = Date.now();
  const bodyPool = new BodyPool();
  const meteringClips = new MeteringClips();
  const trimBodyPool = setInterval(() => bodyPool.trim(), BODY_POOL_TRIM_MS);
  trimBodyPool.unref();
  const nodeMetrics = (metrics = new NodeMetrics({
    nodeId: options.nodeId,
    broker: () => broker.snapshot(),
    ledger: () => ledger.writer.counters,
    isDService: (name) => registry.get(name) !== undefined,
    draining: () => draining,
  }));
  const metricsAllowed = metricsAccess(options.metricsToken);
  const alerts = options.alerts === null ? null : startAlerter(options.alerts, {
    queues: () => broker.snapshot().queues,
    minersConnected: () => broker.snapshot().miners.length,
    requests: () => ({ ...nodeMetrics.tally }),
    unanchored: async () => {
      const anchored = new Set((await ledger.store.anchors()).map((a) => a.cycle));
      return (await ledger.store.cycles())
        .filter((c): c is CycleSummary => c.sealedAt !== null && 'records' in c && !cycleIsEmpty(c) && !anchored.has(c.id))
        .map((c) => ({ cycle: c.id, sealedAt: c.sealedAt! }));
    },
    balances: async () => (await ledger.store.balances()).filter((b) => b.deposited > 0n),
  }, { source: { node: options.nodeId }, log: (level, msg, fields) => log[level](fields, msg) });
  const work = createWorkEndpoint({
    nodeId: options.nodeId, broker, registry, keys, meter: ledger.writer, billing, log,
    defaultTier: options.defaultTier, retryAfterS: options.retryAfterS, isDraining: () => draining,
    limits: options.rateLimits === null ? null : {
      perKey: new RateLimiter(options.rateLimits.perKey, clock),
      perIp: new RateLimiter(options.rateLimits.perIp, clock),
    },
    bodyPool,
    clips: meteringClips,
    minerFault: (id, reason) => endpoint!.fault(id, reason),
    ...(openTier !== null
      ? { overReported: (id: string, report: OverReport) => void (openTier.onOverReport(id, report) && endpoint!.dropMiner(id, 'banned from the open tier: it kept reporting more CPU time than it could have used (evidence stored, stake slashed)')) }
      : {}),
    bodyRate: { minBytesPerS: options.timeouts.minBodyBytesPerS, windowMs: options.timeouts.bodyRateWindowMs },
    quotas,
    // No connected miner runs it: refused now with the reason, unless placement can start one
    // (then the request waits), which it does once the request is admitted and paid for.
    unservable: (name, tier, account) => {
      const d = explain(name, tier, account, false);
      return d.runnable ? null : refusalOf(d);
    },
    regionsOf: (account) => accounts.regionsOf(account),
    wantsPlacement: (name, tier, account) => void placed.wake(name, tier, accounts.get(account).regions),
    observe: (name, tier, status, timing) => nodeMetrics.request(name, tier, status, timing),
  });

  const status = (): Record<string, unknown> => {
    const snap = broker.snapshot();
    return {
      node: { id: options.nodeId, uptimeS: Math.round((Date.now() - startedAt) / 1000), draining, pid: process.pid, rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
      dservices: registry.list().map((d) => ({ name: d.name, version: d.version, maxBodyBytes: d.maxBodyBytes, requestMs: d.timeouts.requestMs })),
      miners: snap.miners,
      minersByTier: snap.miners.reduce<Record<Tier, number>>((n, m) => ((n[m.tier] += 1), n), { open: 0, attested: 0, dedicated: 0 }),
      queues: snap.queues,
      counters: { broker: snap.counters, http: work.counters, quotas: quotas.counters, tunnels: endpoint!.counters, bodyPool: bodyPool.counters, ledger: ledger.writer.counters, ...(central ? { central: central.keys.counters } : {}) },
      central: central === null ? null : { url: central.url, connected: central.link.connected },
      pending: snap.pending,
      minerFaults: endpoint!.faults.top(),
      meteringClips: { total: meteringClips.total, byMiner: meteringClips.top() },
      ...(snap.redundancy !== undefined ? { redundancy: snap.redundancy } : {}),
      ...(openTier !== null ? { openTier: openTier.status() } : {}),
      ...(alerts !== null ? { alerts: alerts.status() } : {}),
      placement: placed.status(),
      // The DService packages this node hands to miners (GET /v1/packages/<digest> on the miner endpoint).
      packages: { available: packages.list().map((p) => ({ name: p.name, version: p.version, digest: p.digest, sizeBytes: p.sizeBytes })), ...packages.counters },
      // Connected miners whose payout address this node registered (not registered again while unchanged).
      payoutAddressesKept: minerPayTo.size,
    };
  };

  /**
   * `GET /v1/explain?dservice=NAME[&tier=T][&account=A]`: the diagnosis as JSON (200 whatever it
   * says). With `account`, only for that account's API key or the operator's token (401/403).
   */
  const explainAllowed = explainAccess({ keys, operatorToken: options.metricsToken });
  const answerExplain = (res: ServerResponse, url: string, authorization: string | undefined): void => {
    const q = new URL(url, 'http://x').searchParams;
    const dservice = q.get('dservice');
    const tier = (q.get('tier') ?? options.defaultTier) as Tier;
    if (dservice === null || dservice === '') return sendProblem(res, new CgnError('bad_request', 'say which DService: GET /v1/explain?dservice=NAME[&tier=open|attested|dedicated][&account=ACCOUNT]'));
    if (!TIERS.includes(tier)) return sendProblem(res, new CgnError('bad_request', `tier must be one of ${TIERS.join(', ')}`));
    const account = q.get('account')?.slice(0, 128) ?? null;
    const answer = (): void => {
      const body = JSON.stringify(explain(dservice.slice(0, 128), tier, account));
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (account === null) return answer();
    // An account's regions and quotas are its own: its API key or the operator's token.
    explainAllowed(authorization, account).then(answer, (err: unknown) => {
      const e = toCgnError(err);
      sendProblem(res, e, e.code === 'unauthorized' ? { headers: { 'www-authenticate': 'Bearer realm="cgn-explain"' } } : {});
    });
  };

  const t = options.timeouts;
  // Deadlines for strangers: headers, the whole request, idle keep-alive; checked every second
  // (Node checks every 30 s by default, which would let a silent connection live that long).
  const serverOptions = { keepAliveTimeout: t.keepAliveMs, headersTimeout: t.headersMs, requestTimeout: t.requestMs, connectionsCheckingInterval: 1000 };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    if (url.startsWith('/v1/d/')) return work.handle(req, res);
    if (req.method === 'GET' && (url === '/v1/status' || url === '/status')) {
      const body = JSON.stringify(status());
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      return void res.end(body);
    }
    if (req.method === 'GET' && url === '/metrics') {
      if (!metricsAllowed(req.headers.authorization)) return sendProblem(res, new CgnError('unauthorized', 'GET /metrics needs Authorization: Bearer <the node\'s --metrics-token>'), { headers: { 'www-authenticate': 'Bearer realm="cgn-metrics"' } });
      return void nodeMetrics.scrape().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        },
        (err: unknown) => sendProblem(res, new CgnError('internal', `metrics could not be collected: ${err instanceof Error ? err.message : String(err)}`)),
      );
    }
    if (req.method === 'GET' && (url.startsWith('/v1/explain?') || url === '/v1/explain')) return answerExplain(res, url, req.headers.authorization);
    if (req.method === 'GET' && url === '/healthz') {
      res.writeHead(draining ? 503 : 200, { 'content-type': 'text/plain' });
      return void res.end(draining ? 'draining' : 'ok');
    }
    // Answered without reading a body that may still be coming: the connection closes instead.
    sendProblem(res, new CgnError('not_found', `no route for ${req.method} ${url.slice(0, 100)}; work goes to /v1/d/{dservice}/{path}, status is at /v1/status, Prometheus metrics at /metrics`), req.complete ? {} : { headers: { connection: 'close' } });
  };
  const server: Server = tls === null ? createServer(serverOptions, handle) : createHttpsServer({ ...serverOptions, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, handle);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.workPort, options.host, resolve));
  const workAddr = server.address() as AddressInfo;
  const urlHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  const base = `${tls === null ? 'http' : 'https'}://${urlHost}:${workAddr.port}`;
  const minerUrl = `${tls === null ? 'ws' : 'wss'}://${urlHost}:${minerAddr.port}`;
  const unwatchTls = options.tls === null ? () => {} : watchTlsFiles(options.tls, [server as HttpsServer, endpoint.tlsTarget!], (level, msg, fields) => log[level](fields, msg));
  if (tls !== null) log.info({ ...describeCert(tls.cert) }, 'serving HTTPS and WSS');
  log.info({ work: base, miner: minerUrl, dservices: registry.list().map((d) => d.name) }, 'node started');

  let stopping: Promise<void> | null = null;
  const stop = (graceMs = 30_000): Promise<void> =>
    (stopping ??= (async () => {
      draining = true;
      placed.stop();
      log.info({ pending: broker.pending }, 'node draining: no new work, finishing what it owns');
      server.close();
      unwatchTls();
      const until = Date.now() + graceMs;
      while (broker.pending > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      payoutNotices.stop();
      reputationNotices.stop();
      await alerts?.stop();
      await endpoint!.stop();
      if (central !== null) await central.stop();
      await openTier?.stop();
      billing.stop();
      await ledger.writer.stop();
      server.closeAllConnections();
      clearInterval(trimBodyPool);
      log.info({ left: broker.pending }, 'node stopped');
    })());

  return {
    options,
    workUrl: `${base}/v1/d/`,
    statusUrl: `${base}/v1/status`,
    minerUrl,
    centralLinkUrl: central?.url ?? null,
    broker,
    keys: keyStore,
    ledger,
    billing,
    accounts,
    quotas,
    explain,
    openTier,
    status,
    metrics: nodeMetrics,
    metricsUrl: `${base}/metrics`,
    alerts,
    packages,
    placement,
    placer: placed,
    stop,
  };
}
