/**
 * The miner's owner-facing controller: start, pause, resume and stop the miner, and apply "when
 * it may work" (time windows, only while idle, a CPU ceiling) on a tick. The control server
 * (`server.ts`) is its HTTP face; this holds the state and the rules.
 *
 * Pause and the holds of the schedule and of a busy machine all use the same means: the miner
 * drains (out of the node's pool, the work in flight finishes, the tunnel stays) and comes back
 * by advertising again. Stop stops the miner (DServices too); start starts a new one with the
 * same options; the process, and this app, keep running in between.
 */
import { EventEmitter } from 'node:events';
import { baseUnitsAsCgn } from '@cgn/protocol';
import { loadDServicePackage } from '../dservice-package.js';
import type { Miner, MinerEvents, MinerStatus } from '../miner.js';
import type { LogEntry } from '../log.js';
import { slotsUnderCeiling } from './cpu-ceiling.js';
import { ChainEarnings, NO_CHAIN, parseEarnedNotice, unclaimedText, type ChainConfig, type ChainView } from './earnings.js';
import { IdleDetector, cgroupCpuMs, ownerBusyShare, processCpuMs, readCpuTimes, type CpuTimes } from './idle.js';
import { LogRing, type LogLine } from './log-ring.js';
import { decide, type Hold } from './policy.js';
import { loadSettings, parseSettings, saveSettings, type ControlSettings } from './settings.js';

export type ControlState = 'starting' | 'connecting' | 'connected' | 'draining' | 'paused' | 'stopping' | 'stopped';

export interface EarningsView {
  payoutAddress: string | null;
  /** What the node said each closed cycle pays this miner (its `earnings` notices since this process started), newest first; CGN as decimal text. */
  perCycle: { cycleId: string; amount: string }[];
  /** Tokens, stake and claims per cycle from the chain, or why they are unknown. */
  chain: ChainView;
  /** What is earned and not yet claimed: not on chain (the proofs are in the node's ledger); says where to see it. */
  unclaimed: string;
}

export interface ControlStatus {
  state: ControlState;
  /** Why it does not take work now (paused by the owner, outside its windows, owner busy); null when working. */
  hold: Hold | null;
  reason: string;
  minerId: string;
  nodeUrl: string;
  tier: string;
  connected: boolean;
  inFlight: number;
  /** Slots started with, and advertised now (under the CPU ceiling). */
  slots: { configured: number; advertised: number };
  /** Work units answered since the process started (over every start), in total and by DService. */
  work: { total: number; failures: number; byDService: Record<string, number> };
  /** Work done over time: [ms since epoch, total units] samples, oldest first. */
  history: [number, number][];
  /** The owner's CPU share last measured (0..1), null when unknown (no /proc/stat). */
  ownerCpuShare: number | null;
  earnings: EarningsView;
  /** The node's last report of how it sees this miner (units completed and failed there, latency). */
  reputation: { known: boolean; reason: string; time: number | null };
  /** The node's latest notices to this miner's owner. */
  notices: { time: number; kind: string; message: string }[];
  dservices: { name: string; version: string; state: string; advertised: boolean; workDone: number; digest: string; source: 'hand-started' | 'placed' }[];
  isolationWarnings: string[];
  settings: ControlSettings;
}

export interface ControllerOptions {
  /** The miner, already started. */
  miner: Miner;
  /** Starts a new miner with the same options (the control app's Start). */
  restart: () => Promise<Miner>;
  settingsFile: string;
  /** The machine's CPUs (for the ceiling). */
  cpus: number;
  payoutAddress?: string | undefined;
  /** Where to read the payout address's tokens, stake and claims; null: not shown. */
  chain?: ChainConfig | null;
  /** How often the rules are applied, ms. Default 2000. */
  tickMs?: number;
  /** The idle detector's timing, ms (defaults 10 s busy, 60 s idle). */
  busyAfterMs?: number;
  idleAfterMs?: number;
  /** Injected for tests: wall time, and the CPU readers. */
  now?: () => number;
  readCpu?: () => CpuTimes | null;
  ownCpuMs?: (pids: number[]) => number;
  /**
   * The ring the miner's logger writes to (`teeLogger`), from its first line; without one the
   * controller keeps the lines the miner emits from now on.
   */
  logs?: LogRing;
  /** Called when an action fails in the background (a start that threw). */
  onError?: (err: Error) => void;
}

const HISTORY_POINTS = 300;
const NOTICES = 20;

/** A typed refusal of an action in the current state (-> 409). */
export class ControlActionError extends Error {
  readonly code = 'conflict';
  constructor(message: string) {
    super(message);
    this.name = 'ControlActionError';
  }
}

/** Whichever miner runs now: its status (the last one's while stopped) and its work and notice events. */
export type CurrentMiner = Pick<Miner, 'status' | 'on' | 'minerId'>;

export class MinerController {
  private minerValue: Miner | null;
  private lastMiner: Miner;
  private readonly source = new EventEmitter<MinerEvents>();
  /** For metrics and the console: they follow the miner across Stop and Start. */
  readonly current: CurrentMiner;
  private transition: 'starting' | 'stopping' | null = null;
  private pausedByOwner = false;
  private settingsValue: ControlSettings;
  readonly logs: LogRing;
  private readonly notices: ControlStatus['notices'] = [];
  private readonly history: [number, number][] = [];
  /** Work done by miners stopped earlier in this process. */
  private carried = { total: 0, failures: 0, byDService: {} as Record<string, number> };
  private readonly detector: IdleDetector;
  private lastCpu: CpuTimes | null = null;
  private lastOwn = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastHold: Hold | null = null;
  private lastReason = 'working';
  private readonly now: () => number;
  private readonly earnings: ChainEarnings;
  /** Cycle -> base units the node said it pays this miner. */
  private readonly earned = new Map<string, bigint>();
  private reputation: ControlStatus['reputation'] = { known: false, reason: 'not reported by the node yet', time: null };
  /** Each DService package's declared CPUs per unit and concurrency, by directory. */
  private readonly resources = new Map<string, { cpus: number; concurrency: number }>();

  constructor(private readonly o: ControllerOptions) {
    this.minerValue = o.miner;
    this.lastMiner = o.miner;
    this.logs = o.logs ?? new LogRing(200);
    // Cast: Miner's `on` returns a Miner for chaining, which no reader of `current` does.
    this.current = Object.assign(this.source, { minerId: o.miner.minerId, status: () => (this.minerValue ?? this.lastMiner).status() }) as unknown as CurrentMiner;
    this.settingsValue = loadSettings(o.settingsFile);
    this.now = o.now ?? Date.now;
    this.detector = new IdleDetector({
      thresholdPct: this.settingsValue.idleThresholdPct,
      ...(o.busyAfterMs !== undefined ? { busyAfterMs: o.busyAfterMs } : {}),
      ...(o.idleAfterMs !== undefined ? { idleAfterMs: o.idleAfterMs } : {}),
    });
    this.attach(o.miner);
    this.history.push([this.now(), 0]);
    this.earnings = new ChainEarnings({ chain: o.chain ?? null, address: o.payoutAddress ?? null, now: this.now });
  }

  /** The running miner (null while stopped). */
  get miner(): Miner | null {
    return this.minerValue;
  }

  get settings(): ControlSettings {
    return this.settingsValue;
  }

  /** Starts applying the rules on a tick (and applies them once now). */
  start(): void {
    this.tick();
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.tick(), this.o.tickMs ?? 2000);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private readonly onLog = (e: LogEntry): void => this.logs.push(e);
  private readonly onNotice = (n: { kind: string; message: string }): void => {
    if (n.kind === 'reputation') {
      this.reputation = { known: true, reason: n.message.slice(0, 500), time: this.now() };
      return;
    }
    const e = n.kind === 'earnings' ? parseEarnedNotice(n.message) : null;
    if (e !== null) {
      this.earned.set(e.cycleId, e.baseUnits);
      if (this.earned.size > 200) this.earned.delete(this.earned.keys().next().value!);
      return; // shown in the per-cycle table, not again among the notices
    }
    this.notices.push({ time: this.now(), kind: n.kind.slice(0, 64), message: n.message.slice(0, 500) });
    if (this.notices.length > NOTICES) this.notices.shift();
  };

  private readonly forwardWork = (w: MinerEvents['work-done'][0]): boolean => this.source.emit('work-done', w);
  private readonly forwardNotice = (n: MinerEvents['notice'][0]): boolean => this.source.emit('notice', n);

  private attach(m: Miner): void {
    this.lastMiner = m;
    // With a tee'd logger (`logs`) the ring has every line already.
    if (this.o.logs === undefined) m.on('log', this.onLog);
    m.on('notice', this.onNotice);
    m.on('work-done', this.forwardWork);
    m.on('notice', this.forwardNotice);
  }

  private detach(m: Miner): void {
    m.off('log', this.onLog);
    m.off('notice', this.onNotice);
    m.off('work-done', this.forwardWork);
    m.off('notice', this.forwardNotice);
  }

  // ---- actions ---------------------------------------------------------------------------------

  pause(): void {
    if (this.minerValue === null || this.transition !== null) throw new ControlActionError(`the miner is ${this.state()}; pause needs a running miner`);
    this.pausedByOwner = true;
    this.apply();
  }

  resume(): void {
    if (this.minerValue === null || this.transition !== null) throw new ControlActionError(`the miner is ${this.state()}; start it instead`);
    this.pausedByOwner = false;
    this.apply();
  }

  /** Graceful stop: drains, finishes the work in flight, stops the DServices. Resolves when stopped. */
  stop(): Promise<void> {
    const m = this.minerValue;
    // Refused at once (a throw, not a rejection), so the caller can answer 409.
    if (m === null || this.transition !== null) throw new ControlActionError(`the miner is already ${this.state()}`);
    this.transition = 'stopping';
    return this.doStop(m);
  }

  private async doStop(m: Miner): Promise<void> {
    try {
      await m.stop();
    } finally {
      const st = m.status();
      this.carried = this.totals(st);
      this.detach(m);
      this.minerValue = null;
      this.transition = null;
    }
  }

  /** Starts a new miner with the same options; resolves once it runs (dialling the node). */
  startMiner(): Promise<void> {
    if (this.minerValue !== null || this.transition !== null) throw new ControlActionError(`the miner is already ${this.state()}`);
    this.transition = 'starting';
    return this.doStart();
  }

  private async doStart(): Promise<void> {
    try {
      const m = await this.o.restart();
      this.attach(m);
      this.minerValue = m;
      this.pausedByOwner = false;
    } finally {
      this.transition = null;
    }
    this.apply();
  }

  /** Validates and saves new settings (a partial object is merged over the current ones), then applies them. */
  updateSettings(input: unknown): ControlSettings {
    const next = parseSettings(input, this.settingsValue);
    saveSettings(this.o.settingsFile, next);
    this.settingsValue = next;
    this.detector.setThreshold(next.idleThresholdPct);
    this.apply();
    return next;
  }

  // ---- the rules -------------------------------------------------------------------------------

  /** One tick: measure the owner's CPU use, record the work done, apply the rules. */
  tick(): void {
    this.sampleCpu();
    this.earnings.poke();
    const st = this.minerValue?.status() ?? null;
    const total = this.totals(st).total;
    const last = this.history[this.history.length - 1];
    if (last === undefined || last[1] !== total || this.now() - last[0] >= 10_000) {
      this.history.push([this.now(), total]);
      if (this.history.length > HISTORY_POINTS) this.history.shift();
    }
    this.apply();
  }

  private sampleCpu(): void {
    const cpu = (this.o.readCpu ?? readCpuTimes)();
    if (cpu === null) return;
    const own = this.ownCpu();
    if (this.lastCpu !== null) this.detector.observe(this.now(), ownerBusyShare(this.lastCpu, cpu, own - this.lastOwn));
    this.lastCpu = cpu;
    this.lastOwn = own;
  }

  /**
   * CPU ms of the miner's process and its DServices: a DService's whole cgroup where cgroup v2
   * counts it (the sandbox and everything it spawned), else the pids the miner knows.
   */
  private ownCpu(): number {
    const pids = new Set<number>();
    let grouped = 0;
    for (const d of this.minerValue?.status().dservices ?? []) {
      const inst = d.instance;
      if (inst === null) continue;
      const inGroups = this.o.ownCpuMs === undefined && inst.limits.enforcedBy === 'cgroup-v2' ? cgroupCpuMs(inst.limits.cgroups) : null;
      if (inGroups !== null) {
        grouped += inGroups;
        continue;
      }
      if (inst.pid != null) pids.add(inst.pid);
      if (inst.dservicePid != null) pids.add(inst.dservicePid);
    }
    const self = process.cpuUsage();
    return (self.user + self.system) / 1000 + grouped + (this.o.ownCpuMs ?? processCpuMs)([...pids]);
  }

  /** Pauses or resumes the miner as the rules say, and sets its slots under the ceiling. */
  private apply(): void {
    const m = this.minerValue;
    if (m === null || this.transition !== null) return;
    const d = decide({
      pausedByOwner: this.pausedByOwner,
      settings: this.settingsValue,
      now: new Date(this.now()),
      ownerBusy: this.detector.busy,
      ownerShare: this.detector.share,
    });
    this.lastHold = d.hold;
    this.lastReason = d.reason;
    const st = m.status();
    if (st.state !== 'running') return;
    m.limitSlots(this.slotCap(st));
    if (d.work && st.paused) m.resume();
    else if (!d.work && !st.paused) m.pause(d.reason);
  }

  private slotCap(st: MinerStatus): ReturnType<typeof slotsUnderCeiling> {
    const dservices = st.dservices.flatMap((d) => {
      let r = this.resources.get(d.dir);
      if (r === undefined) {
        try {
          const desc = loadDServicePackage(d.dir).descriptor;
          r = { cpus: desc.resources.cpus, concurrency: desc.concurrency };
        } catch {
          return [];
        }
        this.resources.set(d.dir, r);
      }
      return [{ name: d.name, ...r }];
    });
    return slotsUnderCeiling(this.settingsValue.cpuCeilingPct, { cpus: this.o.cpus, slots: st.slots, dservices });
  }

  // ---- what it shows ---------------------------------------------------------------------------

  private totals(st: MinerStatus | null): { total: number; failures: number; byDService: Record<string, number> } {
    const byDService = { ...this.carried.byDService };
    for (const d of st?.dservices ?? []) byDService[d.name] = (byDService[d.name] ?? 0) + d.workDone;
    return { total: this.carried.total + (st?.workDone ?? 0), failures: this.carried.failures + (st?.failures ?? 0), byDService };
  }

  private state(st: MinerStatus | null = this.minerValue?.status() ?? null): ControlState {
    if (this.transition !== null) return this.transition;
    if (st === null || st.state === 'stopped') return 'stopped';
    if (st.state === 'stopping') return 'stopping';
    if (st.paused) return st.inFlight > 0 ? 'draining' : 'paused';
    return st.connected ? 'connected' : 'connecting';
  }

  status(): ControlStatus {
    const st = this.minerValue?.status() ?? null;
    const cap = st === null ? null : this.slotCap(st);
    const chain = this.earnings.current();
    const state = this.state(st);
    const stopped = state === 'stopped' || state === 'starting' || state === 'stopping';
    return {
      state,
      hold: stopped ? null : this.lastHold,
      reason: stopped ? `the miner is ${state}` : this.lastReason,
      minerId: st?.minerId ?? this.o.miner.minerId,
      nodeUrl: st?.nodeUrl ?? '',
      tier: st?.tier ?? '',
      connected: st?.connected ?? false,
      inFlight: st?.inFlight ?? 0,
      slots: { configured: st?.slots ?? 0, advertised: st === null ? 0 : Math.min(st.slots, cap?.total ?? st.slots) },
      work: this.totals(st),
      history: [...this.history],
      ownerCpuShare: this.detector.share,
      earnings: {
        payoutAddress: this.o.payoutAddress ?? null,
        chain,
        perCycle: [...this.earned].reverse().map(([cycleId, base]) => ({ cycleId, amount: baseUnitsAsCgn(base) })),
        unclaimed: unclaimedText(this.earned, chain, this.o.chain != null),
      },
      reputation: this.reputation,
      notices: [...this.notices],
      dservices: (st?.dservices ?? []).map((d) => ({
        // A paused miner's advertisement stands at the node, but the node sends it nothing.
        name: d.name, version: d.version, state: d.state, advertised: d.advertised && st?.paused !== true, workDone: d.workDone, digest: d.digest,
        source: d.placed ? ('placed' as const) : ('hand-started' as const),
      })),
      isolationWarnings: st?.isolationWarnings ?? [],
      settings: this.settingsValue,
    };
  }

  /** The log lines after `afterSeq`. */
  logLines(afterSeq = 0): LogLine[] {
    return this.logs.since(afterSeq);
  }
}
