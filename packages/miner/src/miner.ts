/**
 * The miner: wires the pieces together and owns the start/stop lifecycle.
 *
 * start: options -> key -> DService digests (checked against expected ones) -> sandbox mode ->
 * one instance per DService, all healthy -> tunnel dialling the node. Work from the tunnel goes
 * to the named DService's instance through the proxy. The advertisement lists the DServices
 * whose instance is ready and is sent again whenever that set changes.
 *
 * stop (graceful): `drain` to the node, the work in flight finishes (bounded), the tunnel
 * closes, the DService processes get SIGTERM (then SIGKILL), the run directory goes.
 */
import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { availableParallelism, totalmem } from 'node:os';
import { pino } from 'pino';
import { CgnError, minerIdOf, type AdvertiseFrame, type MinerKeyPair, type Tier, type WorkFrame } from '@cgn/protocol';
import { digestPackage } from './digest.js';
import type { DServicePackage } from './dservice-package.js';
import { DServiceInstance, type InstanceState, type InstanceStatus } from './dservice-instance.js';
import { loadOrCreateKey } from './key.js';
import { createLog, errorText, type Log, type LogEntry, type MinerLogger } from './log.js';
import { MAX_SOCKET_PATH, resolveMinerOptions, socketPathFor, type MinerOptions, type ResolvedMinerOptions } from './options.js';
import type { WorkOutcome } from './proxy.js';
import type { Cancellation } from './cancellation.js';
import { createRunDir, sweepStaleRunDirs } from './run-dir.js';
import { resolveSandbox } from './sandbox.js';
import { resolveLimits, type ResolvedLimits } from './limits.js';
import { groupPrefix, sweepStaleGroups } from './cgroup.js';
import { Tunnel, type Advertisement, type DisconnectInfo, type WorkFailure } from './tunnel.js';
import { startAttestation, type Attestation } from './attestation/attest.js';
import { PackageCache } from './package-cache.js';
import { Placements } from './package-placement.js';
import { answerProbe, selfReport } from './probe.js';

export interface DServiceStatus {
  name: string;
  version: string;
  dir: string;
  /** sha256 hex digest the miner computed for the package. */
  digest: string;
  /** `rejected`: its digest did not match the expected one; it is neither run nor advertised. */
  state: InstanceState | 'rejected';
  /** Advertised to the node right now. */
  advertised: boolean;
  /** Work units it answered since the miner started. */
  workDone: number;
  /** Placed by the node (a package it fetched), not started with --dservice. */
  placed: boolean;
  instance: InstanceStatus | null;
}

export interface MinerStatus {
  state: 'running' | 'stopping' | 'stopped';
  /** Welcomed by the node right now. */
  connected: boolean;
  /** Paused by its owner (`pause()`): out of the node's pool, the tunnel kept. */
  paused: boolean;
  /** The miner's id: hex of its public key. */
  minerId: string;
  nodeUrl: string;
  tier: Tier;
  slots: number;
  sandbox: 'bwrap' | 'none';
  /** How the DServices' CPU, memory and process limits are enforced; `none`: they are not. */
  limits: 'cgroup-v2' | 'cgroup-v1' | 'none';
  /** What is not isolated or limited here and why (no bubblewrap, no writable cgroup, ...). */
  isolationWarnings: string[];
  inFlight: number;
  /** Results sent. */
  workDone: number;
  /** Work that failed here (error frames with a work id, excluding refusals). */
  failures: number;
  /** Work refused because the miner was draining or full. */
  refused: number;
  /** Work the node cancelled. */
  cancelled: number;
  /** Dials since start, and how many of them the node welcomed. */
  connects: number;
  welcomes: number;
  dservices: DServiceStatus[];
  /** Packages of DServices the node placed here, unpacked on disk (null before start). */
  packageCache: { dir: string; bytes: number; budgetBytes: number; packages: { digest: string; bytes: number; inUse: number }[] } | null;
}

export interface MinerEvents {
  /** Every log entry (also written to the pino logger). */
  log: [entry: LogEntry];
  /** The node welcomed the miner (after each (re)connect). */
  connected: [info: { minerId: string; heartbeatMs: number }];
  disconnected: [info: DisconnectInfo];
  reconnecting: [delayMs: number];
  advertised: [frame: AdvertiseFrame];
  'work-done': [info: { id: string; status: number; execUs: number; cpuUs: number }];
  'work-failed': [info: WorkFailure];
  'work-cancelled': [id: string];
  /** A DService instance changed state (starting, ready, restarting, ...). */
  instance: [info: { name: string; state: InstanceState; previous: InstanceState }];
  /** The node told the owner something (e.g. earnings held: no payout address). */
  notice: [info: { kind: string; message: string }];
  stopped: [];
}

export interface Miner extends EventEmitter<MinerEvents> {
  readonly minerId: string;
  /** Graceful: drain, finish the work in flight, close the tunnel, stop the DServices. Idempotent. */
  stop(): Promise<void>;
  status(): MinerStatus;
  /** Out of the node's pool (a `drain`), the work in flight finishes; the tunnel stays. Idempotent. */
  pause(reason: string): void;
  /** Back into the node's pool (re-advertises). Idempotent. */
  resume(): void;
  /** Caps the slots advertised, in total and per DService (a CPU ceiling); null lifts the cap. */
  limitSlots(limit: SlotCap | null): void;
  /** Emergency stop for a forced exit: SIGKILL every DService process now, synchronously. */
  kill(): void;
}

/** Slots to advertise at most: in total and per DService. */
export interface SlotCap {
  total: number;
  perDService: Record<string, number>;
}

interface Managed {
  pkg: DServicePackage;
  digest: string;
  rejected: boolean;
  instance: DServiceInstance | null;
  /** Placed by the node (`place`), not started with the miner. */
  placed?: boolean;
}

class MinerImpl extends EventEmitter<MinerEvents> implements Miner {
  readonly minerId: string;
  private readonly log: Log;
  private readonly managed: Managed[] = [];
  private readonly byName = new Map<string, DServiceInstance>();
  private tunnel: Tunnel | null = null;
  private sandbox: 'bwrap' | 'none' = 'none';
  private limits: ResolvedLimits = { support: null, warning: null };
  private sandboxWarning: string | null = null;
  private runDir = '';
  private ownRunDir = false;
  private stateValue: MinerStatus['state'] = 'running';
  private stopping: Promise<void> | null = null;
  private advertisedKey = '';
  private placements: Placements | null = null;
  private packageCache: PackageCache | null = null;
  private slotCap: SlotCap | null = null;
  private readonly doneBy = new Map<string, number>();
  // Disk free where it runs and GPUs seen (probe.ts), besides CPUs and memory: what placement filters on.
  private readonly resources = (() => {
    const self = selfReport();
    return { cpus: availableParallelism(), memoryMb: Math.floor(totalmem() / (1024 * 1024)), diskMb: self.diskMb, gpus: self.gpus };
  })();

  constructor(
    private readonly o: ResolvedMinerOptions,
    private readonly key: MinerKeyPair,
    log: Log,
  ) {
    super();
    this.log = log;
    this.minerId = minerIdOf(key.publicKey);
  }

  /** Last resort if the miner's process exits without stop(): no DService outlives it. */
  private readonly onProcessExit = (): void => this.kill();

  async start(): Promise<void> {
    const o = this.o;
    // Digests first: a package that is not what the operator expects never runs.
    const digests = await Promise.all(o.packages.map((p) => digestPackage(p.dir)));
    o.packages.forEach((pkg, i) => {
      const digest = digests[i]!;
      const expected = o.expectedDigests[pkg.descriptor.name];
      const rejected = expected !== undefined && expected !== digest;
      if (rejected) {
        this.log.error({ dservice: pkg.descriptor.name, dir: pkg.dir, digest, expected }, 'DService package digest does not match the expected digest; not running nor advertising it');
      }
      this.managed.push({ pkg, digest, rejected, instance: null });
    });
    for (const name of Object.keys(o.expectedDigests)) {
      if (!o.packages.some((p) => p.descriptor.name === name)) this.log.warn({ dservice: name }, 'an expected digest names a DService that is not configured');
    }
    const runnable = this.managed.filter((m) => !m.rejected);
    if (o.packages.length > 0 && runnable.length === 0) {
      throw new CgnError('bad_request', 'no DService to run: every configured DService failed its digest check');
    }
    if (o.packages.length === 0) this.log.warn({}, 'no DService configured; the miner will advertise none');

    const sandbox = await resolveSandbox(o.sandbox);
    this.sandbox = sandbox.mode;
    this.sandboxWarning = sandbox.warning;
    if (sandbox.warning !== null) this.log.warn({ sandbox: 'none' }, sandbox.warning);
    this.limits = resolveLimits(o.limits);
    if (this.limits.warning !== null) this.log.warn({ limits: this.limitsName }, this.limits.warning);
    if (this.limits.support !== null) {
      const swept = sweepStaleGroups(this.limits.support);
      if (swept > 0) this.log.info({ swept }, 'removed the cgroups of miners that are gone');
    }

    if (o.runDir === null) {
      const removed = sweepStaleRunDirs();
      if (removed.length > 0) this.log.info({ removed }, 'removed run directories of miners that are gone');
    }
    const runDir = createRunDir(o.runDir);
    this.runDir = runDir.path;
    this.ownRunDir = runDir.own;
    process.on('exit', this.onProcessExit);
    try {
      for (const m of runnable) {
        const name = m.pkg.descriptor.name;
        const socketPath = socketPathFor(this.runDir, name);
        if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) throw new Error(`socket path ${socketPath} is too long; set runDir to a shorter directory`);
        const inst = this.newInstance(m.pkg, socketPath);
        m.instance = inst;
        this.byName.set(name, inst);
      }
      await Promise.all(runnable.map((m) => m.instance!.start()));
    } catch (err) {
      await Promise.all(runnable.map((m) => m.instance?.stop()));
      this.removeRunDir();
      process.off('exit', this.onProcessExit);
      throw err;
    }

    // Attested tier: measure what will run into the TPM before the node can ask for a quote.
    const attestation: Attestation | null = o.tpm === null ? null : await startAttestation({
      tcti: o.tpm, keyFile: o.keyFile, dservices: runnable.map((m) => ({ name: m.pkg.descriptor.name, digest: m.digest })), log: this.log,
    }).catch(async (err: unknown) => {
      await Promise.all(runnable.map((m) => m.instance?.stop()));
      this.removeRunDir();
      process.off('exit', this.onProcessExit);
      throw err;
    });

    // DServices the node places here come from this cache (see package-placement.ts).
    const cache = new PackageCache({ dir: o.packageCacheDir ?? join(dirname(o.keyFile), 'package-cache', this.minerId.slice(0, 16)), budgetBytes: o.packageCacheMb * 1024 * 1024, log: this.log.child({ component: 'package-cache' }) });
    await cache.open();
    this.packageCache = cache;
    this.placements = new Placements({
      log: this.log, nodeUrl: o.nodeUrl, trust: o.trust, cache, fetchTimeoutMs: o.packageFetchTimeoutMs,
      running: (name) => {
        const m = this.managed.find((x) => x.pkg.descriptor.name === name && x.instance !== null);
        return m === undefined ? null : { digest: m.digest, placed: m.placed === true };
      },
      run: (pkg, digest) => this.runPlaced(pkg, digest),
      halt: (name) => this.haltPlaced(name),
      send: (f) => this.tunnel?.sendPlaced(f),
      readvertise: () => this.tunnel?.readvertise(),
      stopping: () => this.stateValue !== 'running',
    });

    const tunnel = new Tunnel({
      url: o.nodeUrl,
      placement: (f) => void (f.t === 'place' ? this.placements!.place(f) : this.placements!.unplace(f)),
      trust: o.trust,
      key: this.key,
      log: this.log.child({ component: 'tunnel' }),
      reconnectBaseMs: o.reconnectBaseMs,
      reconnectCapMs: o.reconnectCapMs,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      maxMessageBytes: o.maxMessageBytes,
      slots: o.slots,
      advertisement: () => this.advertisement(),
      execute: (w, cancel) => this.execute(w, cancel),
      probe: (f) => answerProbe(f, { dir: this.runDir }),
      ...(attestation !== null ? { attest: (nonce: Uint8Array) => attestation.quote(nonce) } : {}),
    });
    this.tunnel = tunnel;
    tunnel.on('welcome', (info) => this.emit('connected', info));
    tunnel.on('disconnected', (info) => this.emit('disconnected', info));
    tunnel.on('reconnecting', (ms) => this.emit('reconnecting', ms));
    tunnel.on('advertised', (f) => {
      this.advertisedKey = f.dservices.map((d) => d.name).join(',');
      this.emit('advertised', f);
    });
    tunnel.on('work-done', (i) => this.emit('work-done', i));
    tunnel.on('work-failed', (i) => this.emit('work-failed', i));
    tunnel.on('work-cancelled', (id) => this.emit('work-cancelled', id));
    tunnel.on('notice', (n) => this.emit('notice', n));
    this.log.info(
      {
        minerId: this.minerId.slice(0, 16), node: o.nodeUrl, tier: o.tier, slots: o.slots, sandbox: this.sandbox, limits: this.limitsName,
        dservices: runnable.map((m) => `${m.pkg.descriptor.name}@${m.pkg.descriptor.version}`),
      },
      'miner started',
    );
    tunnel.start();
  }

  private get limitsName(): MinerStatus['limits'] {
    const v = this.limits.support?.version ?? null;
    return v === null ? 'none' : `cgroup-${v}`;
  }

  private advertisement(): Advertisement {
    const cap = this.slotCap;
    const ad: Advertisement = {
      tier: this.o.tier,
      slots: cap === null ? this.o.slots : Math.min(this.o.slots, cap.total),
      dservices: this.managed
        .filter((m) => m.instance?.ready === true)
        .map((m) => {
          const name = m.pkg.descriptor.name;
          const slots = Math.min(m.pkg.descriptor.concurrency, cap?.perDService[name] ?? Infinity);
          return { name, version: m.pkg.descriptor.version, digest: m.digest, slots };
        }),
      resources: this.resources,
    };
    if (this.o.location !== undefined) ad.location = this.o.location;
    if (this.o.region !== undefined) ad.region = this.o.region;
    if (this.o.priceFloor !== undefined) ad.priceFloor = this.o.priceFloor;
    if (this.o.payoutAddress !== undefined) ad.payoutAddress = this.o.payoutAddress;
    if (this.o.stakeProof !== undefined) ad.stakeProof = this.o.stakeProof;
    return ad;
  }

  /** An instance of `pkg` as every DService runs here: sandbox, cgroups, health checks, restarts. */
  private newInstance(pkg: DServicePackage, socketPath: string): DServiceInstance {
    const o = this.o;
    const name = pkg.descriptor.name;
    const inst = new DServiceInstance({
      pkg,
      socketPath,
      runDir: this.runDir,
      sandbox: this.sandbox,
      hide: [o.keyFile],
      cgroups: this.limits.support,
      cgroupPrefix: `${groupPrefix(this.minerId)}${name}`,
      log: this.log.child({ dservice: name }),
      healthIntervalMs: o.healthIntervalMs,
      healthTimeoutMs: o.healthTimeoutMs,
      healthFailures: o.healthFailures,
      startTimeoutMs: o.startTimeoutMs,
      stopGraceMs: o.stopGraceMs,
      restartBaseMs: o.restartBaseMs,
      restartCapMs: o.restartCapMs,
    });
    inst.on('state', (state, previous) => this.onInstanceState(name, state, previous));
    return inst;
  }

  /** Starts a placed DService; resolves once it is healthy (then it takes work and is advertised). */
  private async runPlaced(pkg: DServicePackage, digest: string): Promise<void> {
    const name = pkg.descriptor.name;
    const socketPath = socketPathFor(this.runDir, name);
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) throw new Error(`socket path ${socketPath} is too long; set runDir to a shorter directory`);
    const inst = this.newInstance(pkg, socketPath);
    this.managed.push({ pkg, digest, rejected: false, instance: inst, placed: true });
    this.byName.set(name, inst);
    await inst.start();
    if (!inst.ready) throw new Error(`${name} did not become healthy (${inst.state})`);
  }

  /** Stops a placed DService and forgets it. */
  private async haltPlaced(name: string): Promise<void> {
    const i = this.managed.findIndex((m) => m.placed === true && m.pkg.descriptor.name === name);
    if (i < 0) return;
    const m = this.managed[i]!;
    this.managed.splice(i, 1);
    if (this.byName.get(name) === m.instance) this.byName.delete(name);
    await m.instance?.stop();
  }

  private onInstanceState(name: string, state: InstanceState, previous: InstanceState): void {
    this.emit('instance', { name, state, previous });
    if (this.stateValue !== 'running' || this.tunnel === null) return;
    // A DService being placed is announced by `placed` first, then advertised.
    if (this.placements?.starting(name) === true) return;
    // Tell the node when the set of DServices it may send work for changes.
    const key = this.advertisement().dservices.map((d) => d.name).join(',');
    if (key !== this.advertisedKey && this.tunnel.connected) this.tunnel.readvertise();
  }

  private execute(w: WorkFrame, cancel: Cancellation): Promise<WorkOutcome> {
    const inst = this.byName.get(w.dservice);
    if (inst === undefined) {
      return Promise.reject(new CgnError('unknown_dservice', `this miner does not run DService "${w.dservice}"`, { retryable: true }));
    }
    if (!inst.ready) {
      return Promise.reject(new CgnError('dservice_unavailable', `DService ${w.dservice} is ${inst.state}`, { retryable: true }));
    }
    return inst.run(w, cancel).then((o) => {
      this.doneBy.set(w.dservice, (this.doneBy.get(w.dservice) ?? 0) + 1);
      return o;
    });
  }

  pause(reason: string): void {
    if (this.stateValue !== 'running' || this.tunnel === null || this.tunnel.paused) return;
    this.log.info({ reason, inFlight: this.tunnel.inFlightCount }, 'miner paused: out of the node pool, the work in flight finishes');
    this.tunnel.pause(reason);
  }

  resume(): void {
    if (this.stateValue !== 'running' || this.tunnel === null || !this.tunnel.paused) return;
    this.log.info({}, 'miner resumed: back in the node pool');
    this.tunnel.resume();
  }

  limitSlots(limit: SlotCap | null): void {
    const before = JSON.stringify(this.slotCap);
    this.slotCap = limit === null ? null : { total: limit.total, perDService: { ...limit.perDService } };
    if (JSON.stringify(this.slotCap) === before) return;
    this.log.info({ slots: this.slotCap?.total ?? this.o.slots }, 'advertised slots changed');
    if (this.tunnel !== null && !this.tunnel.paused && this.stateValue === 'running') this.tunnel.readvertise();
  }

  status(): MinerStatus {
    const t = this.tunnel;
    const advertised = new Set(this.advertisedKey.split(','));
    return {
      state: this.stateValue,
      connected: t?.connected ?? false,
      paused: t?.paused ?? false,
      minerId: this.minerId,
      nodeUrl: this.o.nodeUrl,
      tier: this.o.tier,
      slots: this.o.slots,
      sandbox: this.sandbox,
      limits: this.limitsName,
      isolationWarnings: [this.sandboxWarning, this.limits.warning].filter((w): w is string => w !== null),
      packageCache: this.packageCache === null ? null : {
        dir: this.packageCache.dir, bytes: this.packageCache.bytes, budgetBytes: this.o.packageCacheMb * 1024 * 1024,
        packages: this.packageCache.list().map(({ digest, bytes, inUse }) => ({ digest, bytes, inUse })),
      },
      inFlight: t?.inFlightCount ?? 0,
      workDone: t?.stats.workDone ?? 0,
      failures: t?.stats.failures ?? 0,
      refused: t?.stats.refused ?? 0,
      cancelled: t?.stats.cancelled ?? 0,
      connects: t?.stats.connects ?? 0,
      welcomes: t?.stats.welcomes ?? 0,
      dservices: this.managed.map((m) => ({
        name: m.pkg.descriptor.name,
        version: m.pkg.descriptor.version,
        dir: m.pkg.dir,
        digest: m.digest,
        state: m.rejected ? 'rejected' : (m.instance?.state ?? 'idle'),
        advertised: (t?.connected ?? false) && advertised.has(m.pkg.descriptor.name),
        workDone: this.doneBy.get(m.pkg.descriptor.name) ?? 0,
        placed: m.placed === true,
        instance: m.instance?.status() ?? null,
      })),
    };
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stateValue = 'stopping';
    const t = this.tunnel;
    this.log.info({ inFlight: t?.inFlightCount ?? 0 }, 'miner stopping: draining work');
    if (t !== null) {
      await t.drain('miner stopping', this.o.drainTimeoutMs);
      await t.close();
    }
    await Promise.all(this.managed.map((m) => m.instance?.stop()));
    process.off('exit', this.onProcessExit);
    this.removeRunDir();
    this.stateValue = 'stopped';
    this.log.info({ workDone: t?.stats.workDone ?? 0, failures: t?.stats.failures ?? 0 }, 'miner stopped');
    this.emit('stopped');
  }

  kill(): void {
    for (const m of this.managed) m.instance?.killNow();
  }

  private removeRunDir(): void {
    if (!this.ownRunDir) return;
    try {
      rmSync(this.runDir, { recursive: true, force: true });
    } catch (err) {
      this.log.warn({ runDir: this.runDir, err: errorText(err) }, 'cannot remove the run directory');
    }
  }
}

/** The default logger: pino, JSON to stderr, level `$CGN_LOG_LEVEL` or info. */
export function defaultLogger(): MinerLogger {
  return pino({ name: 'cgn-miner', level: process.env['CGN_LOG_LEVEL'] ?? 'info' }, pino.destination(2));
}

/**
 * Starts a miner: resolves once its DServices are healthy and it is dialling the node (it does
 * not wait for the node: a miner keeps reconnecting). Rejects on wrong options
 * (`MinerOptionError`), a bubblewrap that was asked for but does not work, or a DService that
 * does not start.
 */
export async function startMiner(options: MinerOptions): Promise<Miner> {
  const o = resolveMinerOptions(options);
  const logger = o.logger ?? defaultLogger();
  let miner: MinerImpl | null = null;
  const log = createLog(
    logger,
    (e) => miner?.emit('log', e),
    () => miner !== null && miner.listenerCount('log') > 0,
  );
  const { pair } = loadOrCreateKey(o.keyFile, log);
  miner = new MinerImpl(o, pair, log);
  await miner.start();
  return miner;
}
