/**
 * Runs the capability probe on miners as they join (one probe per miner at a time, a few miners
 * at once), through the tunnel: sends `probe` frames, times the `probed` answers, verifies them
 * (`probe-check.ts`) and keeps the result beside what the miner claimed. A probe that times out,
 * errs or does not verify leaves the miner unmeasured, with the reason logged and kept.
 */
import { frame, type OutgoingFrame, type ProbedFrame } from '@cgn/protocol';
import type { Resources } from '@cgn/scheduler';
import { measure, measuredResources, probeRequest, verifyProbed, PROBE_DEFAULTS, type Measurement, type ProbeOptions, type ProbePhase, type ProbeRequest } from './probe-check.js';

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
  private readonly queue: { minerId: string; claimedCpus: number }[] = [];
  private seq = 0;
  private active = 0;
  private stopped = false;
  readonly counters = { probes: 0, measured: 0, failed: 0 };

  constructor(private readonly deps: ProbeRunnerDeps, options: Partial<ProbeOptions> = {}, private readonly concurrency = 4) {
    this.options = { ...PROBE_DEFAULTS, ...options };
  }

  /** The probe's result for a miner; undefined while it has not finished (or never ran). */
  resultOf(minerId: string): ProbeResult | undefined {
    return this.results.get(minerId);
  }

  /** Probes a miner unless it was probed (or is being probed) since it joined. */
  probe(minerId: string, claimedCpus: number): void {
    if (this.stopped || this.results.has(minerId) || this.running.has(minerId) || this.queue.some((q) => q.minerId === minerId)) return;
    this.queue.push({ minerId, claimedCpus });
    this.pump();
  }

  /** The miner left: forget it (a new connection is probed again). */
  forget(minerId: string): void {
    this.results.delete(minerId);
    const run = this.running.get(minerId);
    this.running.delete(minerId);
    run?.waiting?.resolve('the miner disconnected');
    const i = this.queue.findIndex((q) => q.minerId === minerId);
    if (i >= 0) this.queue.splice(i, 1);
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

  /** The miner answered a probe with an error frame (it cannot or will not run it). */
  onRefused(minerId: string, message: string): void {
    this.running.get(minerId)?.waiting?.resolve(`the miner refused the probe: ${message.slice(0, 200)}`);
  }

  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    for (const run of this.running.values()) run.waiting?.resolve('the node is stopping');
  }

  private pump(): void {
    while (!this.stopped && this.active < this.concurrency && this.queue.length > 0) {
      const { minerId, claimedCpus } = this.queue.shift()!;
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
    if (r.ok) {
      this.counters.measured++;
      this.deps.log('info', 'miner measured by the capability probe', { miner: minerId.slice(0, 16), ...r.measurement, memoryMb: r.measured.memoryMb, diskMb: r.measured.diskMb, gpus: r.measured.gpus, selfReported: r.selfReported });
    } else {
      this.counters.failed++;
      this.deps.log('warn', 'capability probe failed; the miner stays unmeasured', { miner: minerId.slice(0, 16), reason: r.reason });
    }
  }

  private phase(minerId: string, run: { waiting: Waiting | null }, phase: ProbePhase, chains: number): Promise<{ req: ProbeRequest; ans: Omit<ProbedFrame, 't' | 'v'>; ms: number } | string> {
    const req = probeRequest(`p${++this.seq}`, phase, chains, this.options);
    const setTimer = this.deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    const clearTimer = this.deps.clearTimer ?? clearTimeout;
    return new Promise((done) => {
      const w: Waiting = {
        req,
        sentAt: this.deps.now(),
        timer: setTimer(() => w.resolve(`no answer to the ${phase} probe within ${this.options.timeoutMs} ms`), this.options.timeoutMs),
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
    const chains = Math.max(1, Math.min(this.options.maxChains, Math.floor(claimedCpus)));
    const ms: Partial<Record<ProbePhase, number>> = {};
    let self: { memoryMb: number; diskMb: number; gpus: number } | null = null;
    const phases: [ProbePhase, number][] = [['rtt', 0], ['bandwidth', 0], ['one', 1]];
    if (chains > 1) phases.push(['parallel', chains]);
    for (const [phase, k] of phases) {
      if (this.running.get(minerId) !== run || this.stopped) return { ok: false, at: Date.now(), reason: 'the miner disconnected' };
      const r = await this.phase(minerId, run, phase, k);
      if (typeof r === 'string') return { ok: false, at: Date.now(), reason: r };
      const wrong = verifyProbed(r.req, r.ans, this.options.segments, this.deps.random);
      if (wrong !== null) return { ok: false, at: Date.now(), reason: `the ${phase} probe answer does not verify: ${wrong}` };
      ms[phase] = r.ms;
      self = { memoryMb: r.ans.memoryMb, diskMb: r.ans.diskMb, gpus: r.ans.gpus };
    }
    const measurement = measure({
      rttMs: ms.rtt!, bandwidthMs: ms.bandwidth!, payloadBytes: this.options.payloadBytes, oneMs: ms.one!,
      ...(ms.parallel !== undefined ? { parallelMs: ms.parallel } : {}), chains, steps: this.options.steps - (this.options.steps % this.options.checkpoints),
    });
    return { ok: true, at: Date.now(), measured: measuredResources(measurement, self!), measurement, selfReported: ['memoryMb', 'diskMb', 'gpus'] };
  }
}
