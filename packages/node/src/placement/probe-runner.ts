/**
 * Runs the capability probe on miners as they join (one probe per miner at a time, a few miners
 * at once), through the tunnel: sends `probe` frames, times the `probed` answers, verifies them
 * (`probe-check.ts`) and keeps the result beside what the miner claimed. A probe that times out,
 * errs, is refused, does not verify or is implausibly fast fails, with the reason logged and
 * kept (placement then counts the miner as the least it could be).
 *
 * Nobody can hold everyone's probes up for long: a probe has a deadline for all its phases
 * (`deadlineMs`), a refusal ends it at once, and the queue is bounded (`maxQueue`) and fair:
 * one FIFO per group (the miner's tier), taken in turn, so a flood of joining open-tier miners
 * does not delay the others' probes. A miner that finds the queue full fails at once (`queue
 * full`) and is probed when there is room.
 */
import { frame, type OutgoingFrame, type ProbedFrame } from '@cgn/protocol';
import type { Resources } from '@cgn/scheduler';
import { implausible, measure, measuredResources, probeRequest, verifyProbed, PROBE_DEFAULTS, type Measurement, type ProbeOptions, type ProbePhase, type ProbeRequest, type ProbeTimings } from './probe-check.js';

export type ProbeResult =
  | { ok: true; at: number; measured: Resources; measurement: Measurement; selfReported: readonly ['memoryMb', 'diskMb', 'gpus'] }
  | { ok: false; at: number; reason: string };

export interface ProbeRunnerDeps {
  send: (minerId: string, f: OutgoingFrame) => void;
  /** Monotonic milliseconds (performance.now) for the timings. */
  now: () => number;
  log: (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;
  setTimer?: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>;
  clearTimer?: (t: ReturnType<typeof setTimeout>) => void;
  random?: () => number;
}

interface Waiting {
  req: ProbeRequest;
  sentAt: number;
  resolve: (answer: { ans: Omit<ProbedFrame, 't' | 'v'>; ms: number } | string) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class ProbeRunner {
  readonly options: ProbeOptions;
  private readonly results = new Map<string, ProbeResult>();
  /** Per miner, its probe now (identity tells a reconnected miner's probe from the old one's). */
  private readonly running = new Map<string, { waiting: Waiting | null }>();
  /**
   * Miners waiting for a probe: per group, oldest first (Maps: 10,000 joining miners made a list's
   * scans quadratic). The group taken from goes last, so groups take turns.
   */
  private readonly queues = new Map<string, Map<string, number>>();
  private readonly groupOf = new Map<string, string>();
  /** Miners that found the queue full, oldest first: probed when there is room. */
  private readonly overflow = new Map<string, { claimedCpus: number; group: string }>();
  private seq = 0;
  private active = 0;
  private stopped = false;
  readonly counters = { probes: 0, measured: 0, failed: 0, implausible: 0, queueFull: 0 };
  private recorded = 0;

  constructor(private readonly deps: ProbeRunnerDeps, options: Partial<ProbeOptions> = {}, private readonly concurrency = 4) {
    this.options = { ...PROBE_DEFAULTS, ...options };
  }

  /** The probe's result for a miner; undefined while it has not finished (or never ran). */
  resultOf(minerId: string): ProbeResult | undefined {
    return this.results.get(minerId);
  }

  /** Grows with every probe that finishes: what placement believes of a miner may have changed. */
  get version(): number {
    return this.recorded;
  }

  /** Miners waiting for a probe (the queue and its overflow), for status and tests. */
  get waiting(): { queued: number; overflow: number } {
    return { queued: this.groupOf.size, overflow: this.overflow.size };
  }

  /** Probes a miner unless it was probed (or is being probed) since it joined; `group`: its turn-taking group (tier). */
  probe(minerId: string, claimedCpus: number, group = ''): void {
    if (this.stopped || this.results.has(minerId) || this.running.has(minerId) || this.groupOf.has(minerId)) return;
    if (this.groupOf.size >= this.options.maxQueue) {
      this.overflow.set(minerId, { claimedCpus, group });
      this.counters.queueFull++;
      // Until it is probed it counts as a failed probe would: believed least, not as it claims.
      this.results.set(minerId, { ok: false, at: Date.now(), reason: `the probe queue is full (${this.options.maxQueue} miners wait); probed when there is room` });
      return;
    }
    this.enqueue(minerId, claimedCpus, group);
    this.pump();
  }

  /** The miner left: forget it (a new connection is probed again). */
  forget(minerId: string): void {
    this.results.delete(minerId);
    const run = this.running.get(minerId);
    this.running.delete(minerId);
    run?.waiting?.resolve('the miner disconnected');
    const group = this.groupOf.get(minerId);
    if (group !== undefined) {
      this.groupOf.delete(minerId);
      const q = this.queues.get(group);
      q?.delete(minerId);
      if (q?.size === 0) this.queues.delete(group);
    }
    this.overflow.delete(minerId);
    // Its place in the queue is free: a miner that found it full may take it.
    this.pump();
  }

  private enqueue(minerId: string, claimedCpus: number, group: string): void {
    let q = this.queues.get(group);
    if (q === undefined) this.queues.set(group, (q = new Map()));
    q.set(minerId, claimedCpus);
    this.groupOf.set(minerId, group);
  }

  /** The next miner to probe: the oldest of the group whose turn it is; that group goes last. */
  private dequeue(): { minerId: string; claimedCpus: number } | null {
    const first = this.queues.entries().next();
    if (first.done === true) return null;
    const [group, q] = first.value;
    const [minerId, claimedCpus] = q.entries().next().value!;
    q.delete(minerId);
    this.groupOf.delete(minerId);
    this.queues.delete(group);
    if (q.size > 0) this.queues.set(group, q);
    return { minerId, claimedCpus };
  }

  /** A `probed` frame from a miner. An answer nobody asked for is ignored (and says so). */
  onProbed(minerId: string, f: ProbedFrame): void {
    const w = this.running.get(minerId)?.waiting;
    if (!w || w.req.id !== f.id) {
      this.deps.log('warn', 'probe answer nobody asked for; ignored', { miner: minerId.slice(0, 16), id: f.id.slice(0, 64) });
      return;
    }
    w.resolve({ ans: f, ms: this.deps.now() - w.sentAt });
  }

  /**
   * The miner answered probe `probeId` with an error frame (it cannot or will not run it): the
   * probe ends now instead of at its timeout. False: no such probe is waiting (not a probe's error).
   */
  onRefused(minerId: string, probeId: string, message: string): boolean {
    const w = this.running.get(minerId)?.waiting;
    if (w === undefined || w === null || w.req.id !== probeId) return false;
    w.resolve(`the miner refused the probe: ${message.slice(0, 200)}`);
    return true;
  }

  stop(): void {
    this.stopped = true;
    this.queues.clear();
    this.groupOf.clear();
    this.overflow.clear();
    for (const run of this.running.values()) run.waiting?.resolve('the node is stopping');
  }

  private pump(): void {
    // Room in the queue: the miners that found it full come back, oldest first.
    for (const [minerId, o] of this.overflow) {
      if (this.stopped || this.groupOf.size >= this.options.maxQueue) break;
      this.overflow.delete(minerId);
      this.enqueue(minerId, o.claimedCpus, o.group);
    }
    while (!this.stopped && this.active < this.concurrency) {
      const next = this.dequeue();
      if (next === null) break;
      const { minerId, claimedCpus } = next;
      this.active++;
      const run: { waiting: Waiting | null } = { waiting: null };
      this.running.set(minerId, run);
      this.counters.probes++;
      void this.run(minerId, claimedCpus, run).then((r) => {
        this.active--;
        if (this.running.get(minerId) === run) {
          this.running.delete(minerId);
          if (!this.stopped) this.record(minerId, r);
        }
        this.pump();
      });
    }
  }

  private record(minerId: string, r: ProbeResult): void {
    this.results.set(minerId, r);
    this.recorded++;
    if (r.ok) {
      this.counters.measured++;
      this.deps.log('info', 'miner measured by the capability probe', { miner: minerId.slice(0, 16), ...r.measurement, memoryMb: r.measured.memoryMb, diskMb: r.measured.diskMb, gpus: r.measured.gpus, selfReported: r.selfReported });
    } else {
      this.counters.failed++;
      this.deps.log('warn', 'capability probe failed; the miner stays unmeasured', { miner: minerId.slice(0, 16), reason: r.reason });
    }
  }

  private phase(minerId: string, run: { waiting: Waiting | null }, phase: ProbePhase, chains: number, timeoutMs: number): Promise<{ req: ProbeRequest; ans: Omit<ProbedFrame, 't' | 'v'>; ms: number } | string> {
    const req = probeRequest(`p${++this.seq}`, phase, chains, this.options);
    const setTimer = this.deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    const clearTimer = this.deps.clearTimer ?? clearTimeout;
    return new Promise((done) => {
      const w: Waiting = {
        req,
        sentAt: this.deps.now(),
        timer: setTimer(
          () => w.resolve(timeoutMs < this.options.timeoutMs ? `the probe took longer than ${this.options.deadlineMs} ms in all (at the ${phase} phase)` : `no answer to the ${phase} probe within ${timeoutMs} ms`),
          timeoutMs,
        ),
        resolve: (a) => {
          clearTimer(w.timer);
          if (run.waiting === w) run.waiting = null;
          done(typeof a === 'string' ? a : { req, ...a });
        },
      };
      run.waiting = w;
      this.deps.send(minerId, frame({ t: 'probe', ...req }));
    });
  }

  private async run(minerId: string, claimedCpus: number, run: { waiting: Waiting | null }): Promise<ProbeResult> {
    const o = this.options;
    // Never more chains (so never more CPUs credited) than claimed, nor than the probe runs.
    const chains = Math.max(1, Math.min(o.maxChains, Math.floor(claimedCpus)));
    // The fastest round of each timed phase counts (a miner can delay an answer, never hasten it).
    const ms: Partial<Record<ProbePhase, number>> = {};
    let self: { memoryMb: number; diskMb: number; gpus: number } | null = null;
    const phases: [ProbePhase, number][] = [];
    for (let i = 0; i < o.rounds; i++) phases.push(['rtt', 0]);
    phases.push(['bandwidth', 0]);
    for (let i = 0; i < o.rounds; i++) phases.push(['one', 1]);
    if (chains > 1) for (let i = 0; i < o.rounds; i++) phases.push(['parallel', chains]);
    const startedAt = this.deps.now();
    for (const [phase, k] of phases) {
      if (this.running.get(minerId) !== run || this.stopped) return { ok: false, at: Date.now(), reason: 'the miner disconnected' };
      const left = o.deadlineMs - (this.deps.now() - startedAt);
      if (left <= 0) return { ok: false, at: Date.now(), reason: `the probe took longer than ${o.deadlineMs} ms in all (at the ${phase} phase)` };
      const r = await this.phase(minerId, run, phase, k, Math.min(o.timeoutMs, left));
      if (typeof r === 'string') return { ok: false, at: Date.now(), reason: r };
      const wrong = verifyProbed(r.req, r.ans, o.segments, this.deps.random);
      if (wrong !== null) return { ok: false, at: Date.now(), reason: `the ${phase} probe answer does not verify: ${wrong}` };
      ms[phase] = Math.min(ms[phase] ?? Infinity, r.ms);
      self = { memoryMb: r.ans.memoryMb, diskMb: r.ans.diskMb, gpus: r.ans.gpus };
    }
    const timings: ProbeTimings = {
      rttMs: ms.rtt!, bandwidthMs: ms.bandwidth!, payloadBytes: o.payloadBytes, oneMs: ms.one!,
      ...(ms.parallel !== undefined ? { parallelMs: ms.parallel } : {}), chains, steps: o.steps - (o.steps % o.checkpoints),
    };
    const tooFast = implausible(timings, o.maxHashesPerSecPerCore);
    if (tooFast !== null) {
      this.counters.implausible++;
      return { ok: false, at: Date.now(), reason: `implausible probe: ${tooFast}` };
    }
    const measurement = measure(timings);
    return { ok: true, at: Date.now(), measured: measuredResources(measurement, self!), measurement, selfReported: ['memoryMb', 'diskMb', 'gpus'] };
  }
}
