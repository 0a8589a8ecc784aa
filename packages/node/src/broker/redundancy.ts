/**
 * Redundant execution for the `open` tier: results of miners nobody vouches for are checked by
 * running the same request on a second, distinct miner and comparing what came back.
 *
 * Which requests are checked (`verification.ts`): each miner has a verification probability, 1
 * while it is new, falling with its verified-clean results to a floor; the broker draws it for the
 * miner that would run the unit. Every open-tier unit travels as a replica (`<work id>~1`), checked
 * or not, so a miner cannot tell a checked unit from an ordinary one.
 *
 * The rule (`decide`):
 * - A checked open-tier request runs as two replicas on two distinct miners, at the same time; an
 *   unchecked one as one replica, answered as it comes.
 *   Each result is hashed by the node itself: sha256 of the status (u16 big-endian) and the body,
 *   the same function a miner uses for its `resultHash`; the hash a miner claims is not trusted.
 * - Equal hashes: the DApp gets that result.
 * - Different hashes: a third replica runs on a third distinct miner. Two equal hashes out of
 *   three win; the DApp gets the majority result and the odd one out is a proven cheater: the
 *   broker drops it at once and `onDispute` hands the verdict to the node (evidence, slashing).
 * - Three different hashes (or a dispute that no third miner settles before the deadline): the
 *   DApp gets 502 `result_unconfirmed`; nobody is blamed. A result that another miner contradicted
 *   is never answered.
 * - Only two results agreeing count: if the second replica cannot finish before the deadline the
 *   DApp gets 504, never a single unchecked result. So a redundant open tier needs at least two
 *   miners per DService (three to settle disputes).
 *
 * Billing: the DApp is metered once, for the answered result (the first majority replica: its
 * miner, CPU time and hash). The extra executions are the operator's cost; they are counted in
 * `counters.extraExecutions` / `extraCpuUs` (node status) and are not billed to anybody.
 *
 * Replicas are ordinary broker units (`<work id>~1`, `~2`, `~3`: a miner cannot tell a replica
 * from any other unit) with a shared `exclude` set, so every rule of the broker applies to each:
 * ack timeouts, requeue on a lost miner, the deadline, cancellation.
 */
import { createHash } from 'node:crypto';
import { CgnError, updateHashWithBody, type Body, type ResultFrame } from '@cgn/protocol';
import type { WorkOutcome, WorkRequest, WorkUnit } from './work-unit.js';
import { VerificationPolicy, verificationSettingsProblem, type VerificationSettings } from './verification.js';

export interface RedundancyOptions {
  /** Verification settings of DServices whose descriptor does not set its own. */
  defaults: VerificationSettings;
}

/** What the redundancy logic needs from the broker. */
export interface ReplicaHost {
  now(): number;
  /** Submits one replica that never runs on a miner in `exclude` (the broker adds the miner it picks). */
  submitReplica(req: WorkRequest, exclude: Set<string>, onDone: (outcome: WorkOutcome) => void): WorkUnit;
  cancelReplica(id: string): void;
  /** Takes a proven cheater out of the pool and closes its tunnel. */
  dropMiner(minerId: string, reason: string): void;
}

export interface ReplicaRecord {
  minerId: string;
  /** sha256(status u16be || body), hex, computed by the node. */
  resultHash: string;
  /** The hash the miner claimed in its result frame, hex. */
  claimedHash: string;
  status: number;
  bodyBytes: number;
  /** Wall-clock ms when the node received this result. */
  receivedAt: number;
}

/** A disagreement the third miner settled (cheater set) or could not settle (cheater null). */
export interface DisputeVerdict {
  workId: string;
  account: string;
  dservice: string;
  /** sha256 hex over method, path and body, NUL-separated: which request was run. */
  requestHash: string;
  /** Wall-clock ms when the node received the request. */
  receivedAt: number;
  /** In the order the results arrived. */
  replicas: ReplicaRecord[];
  /** The hash two of three miners agreed on; null when all three differ. */
  majorityHash: string | null;
  /** The miner whose result the majority contradicted; null when there is no majority. */
  cheater: string | null;
}

export interface RedundancyCounters {
  /** Requests run redundantly. */
  runs: number;
  /** Two replicas agreed at once. */
  agreed: number;
  /** First two disagreed; a third replica ran. */
  disputes: number;
  /** Disputes a majority settled (a cheater was proven). */
  cheatersProven: number;
  /** Disputes without a majority, or not settled before the deadline (502 to the DApp). */
  unconfirmed: number;
  /** Open-tier requests answered without a check (the miner's probability did not draw one). */
  unchecked: number;
  /** Executions beyond the one the DApp is metered for (operator cost). */
  extraExecutions: number;
  /** CPU time of those executions, µs. */
  extraCpuUs: number;
}

export type Decision =
  | { kind: 'agree'; hash: string }
  | { kind: 'need-third' }
  | { kind: 'majority'; hash: string; cheaters: string[] }
  | { kind: 'split' };

/** The redundancy rule over the results so far (2 or 3 of them, from distinct miners). */
export function decide(results: readonly { minerId: string; resultHash: string }[]): Decision {
  if (results.length < 2) throw new Error('decide needs at least two results');
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.resultHash, (counts.get(r.resultHash) ?? 0) + 1);
  if (results.length === 2) return counts.size === 1 ? { kind: 'agree', hash: results[0]!.resultHash } : { kind: 'need-third' };
  for (const [hash, n] of counts) {
    if (n * 2 > results.length) return { kind: 'majority', hash, cheaters: results.filter((r) => r.resultHash !== hash).map((r) => r.minerId) };
  }
  return { kind: 'split' };
}

const statusBytes = Buffer.alloc(2);

/** sha256 hex of status (u16 big-endian) and body: the miner's `resultHash`, computed here. */
export function resultHashHex(status: number, body: Uint8Array): string {
  statusBytes.writeUInt16BE(status, 0);
  return createHash('sha256').update(statusBytes).update(body).digest('hex');
}

export function requestHashHex(method: string, path: string, body: Body): string {
  return updateHashWithBody(createHash('sha256').update(method).update('\0').update(path).update('\0'), body).digest('hex');
}

interface Replica {
  unit: WorkUnit;
  done: boolean;
}

interface Arrived {
  rec: ReplicaRecord;
  result: ResultFrame;
  unit: WorkUnit;
  nodeExecUs: number;
}

/** One redundant request: its replicas, their results, and the DApp's `onDone`. */
class RedundantRun {
  readonly replicas: Replica[] = [];
  readonly results: Arrived[] = [];
  readonly exclude = new Set<string>();
  done = false;
  expected = 2;

  constructor(
    readonly req: WorkRequest,
    readonly group: WorkUnit,
    readonly receivedAtWall: number,
  ) {}
}

export class Redundancy {
  readonly counters: RedundancyCounters = { runs: 0, agreed: 0, disputes: 0, cheatersProven: 0, unconfirmed: 0, unchecked: 0, extraExecutions: 0, extraCpuUs: 0 };
  private readonly runs = new Map<string, RedundantRun>();
  readonly policy: VerificationPolicy;

  constructor(
    private readonly host: ReplicaHost,
    readonly options: RedundancyOptions,
    private readonly deps: {
      random?: () => number;
      wallNow?: () => number;
      onDispute?: (verdict: DisputeVerdict) => void;
      log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
      /** A DService's verification settings; null when it is not checked (not deterministic). Default: `options.defaults` for all. */
      settingsOf?: (dservice: string) => VerificationSettings | null;
    } = {},
  ) {
    const problem = verificationSettingsProblem(options.defaults);
    if (problem !== null) throw new RangeError(`redundancy defaults: ${problem}`);
    this.policy = new VerificationPolicy(deps.random ?? Math.random);
  }

  /** How a DService's results are checked; null: they are not. */
  settingsOf(dservice: string): VerificationSettings | null {
    return this.deps.settingsOf === undefined ? this.options.defaults : this.deps.settingsOf(dservice);
  }

  /** Whether a unit that `minerId` would run is checked (draws the miner's probability). */
  shouldCheck(minerId: string | null, settings: VerificationSettings): boolean {
    return this.policy.shouldCheck(minerId, settings);
  }

  /** Redundant runs in progress. */
  get active(): number {
    return this.runs.size;
  }

  /**
   * Starts a redundant run. Returns the unit the caller sees (its `queuedMs` and `attempts` are
   * filled before `onDone`). Throws `queue_full` like `Broker.submit` when the replicas cannot be queued.
   */
  run(req: WorkRequest, onDone: (outcome: WorkOutcome) => void, checked = true): WorkUnit {
    const now = this.host.now();
    const group: WorkUnit = {
      ...req,
      receivedAt: now, deadline: now + req.timeoutMs, sentAt: 0, queuedMs: 0, enqueuedAt: now, attempts: 0, acked: false,
      state: 'sent', minerId: null, failedOn: null, exclude: null, regions: null, held: null, timer: null, onDone, // replicas get their fence in submit
    };
    const run = new RedundantRun(req, group, (this.deps.wallNow ?? Date.now)());
    run.expected = checked ? 2 : 1;
    this.runs.set(req.id, run);
    try {
      for (let i = 0; i < run.expected; i++) this.addReplica(run, req.timeoutMs);
    } catch (err) {
      this.runs.delete(req.id);
      run.done = true;
      for (const r of run.replicas) if (!r.done) this.host.cancelReplica(r.unit.id);
      throw err;
    }
    if (checked) this.counters.runs++;
    else this.counters.unchecked++;
    return group;
  }

  /** The DApp went away. Returns false when `workId` is not a redundant run. */
  cancel(workId: string): boolean {
    const run = this.runs.get(workId);
    if (run === undefined) return false;
    this.finish(run, { kind: 'error', error: new CgnError('cancelled', 'the client closed the request') });
    return true;
  }

  private addReplica(run: RedundantRun, timeoutMs: number): void {
    const n = run.replicas.length + 1;
    const req: WorkRequest = { ...run.req, id: `${run.req.id}~${n}`, timeoutMs };
    const replica: Replica = { unit: null as unknown as WorkUnit, done: false };
    run.replicas.push(replica);
    replica.unit = this.host.submitReplica(req, run.exclude, (o) => {
      replica.done = true;
      this.onReplica(run, replica, o);
    });
  }

  private onReplica(run: RedundantRun, replica: Replica, o: WorkOutcome): void {
    if (run.done) return;
    if (o.kind === 'error') {
      // A replica that cannot finish leaves the run without the agreement it needs.
      const error =
        run.results.length >= 2
          ? this.unconfirmed(run, `the results of two miners disagreed and the third execution failed: ${o.error.message}`)
          : o.error.code === 'deadline_exceeded'
            ? new CgnError('deadline_exceeded', `no two miners agreed on a result within the deadline of ${run.req.timeoutMs} ms (open tier: every result is checked on a second miner)`, {
                retryable: true,
                details: { timeoutMs: run.req.timeoutMs, results: run.results.length },
              })
            : o.error;
      return this.finish(run, { kind: 'error', error });
    }
    const rec: ReplicaRecord = {
      minerId: o.minerId,
      resultHash: resultHashHex(o.result.status, o.result.body),
      claimedHash: Buffer.from(o.result.resultHash).toString('hex'),
      status: o.result.status,
      bodyBytes: o.result.body.length,
      receivedAt: (this.deps.wallNow ?? Date.now)(),
    };
    run.results.push({ rec, result: o.result, unit: replica.unit, nodeExecUs: o.nodeExecUs });
    if (run.results.length < run.expected) return;
    // Unchecked: answered as it came.
    if (run.expected === 1) return this.answer(run, rec.resultHash);
    const d = decide(run.results.map((r) => r.rec));
    const settings = this.settingsOf(run.req.dservice) ?? this.options.defaults;
    switch (d.kind) {
      case 'agree':
        this.counters.agreed++;
        for (const r of run.results) this.policy.verifiedClean(r.rec.minerId, settings);
        return this.answer(run, d.hash);
      case 'need-third': {
        this.counters.disputes++;
        run.expected = 3;
        for (const r of run.results) this.policy.mismatch(r.rec.minerId);
        this.deps.log?.('warn', 'redundant results disagree; running a third replica', {
          work: run.req.id, dservice: run.req.dservice, miners: run.results.map((r) => r.rec.minerId.slice(0, 16)),
        });
        const remaining = Math.max(1, Math.ceil(run.group.deadline - this.host.now()));
        try {
          this.addReplica(run, remaining);
        } catch (err) {
          this.finish(run, { kind: 'error', error: this.unconfirmed(run, `the results of two miners disagreed and no third miner could take the work: ${(err as Error).message}`) });
        }
        return;
      }
      case 'majority': {
        this.counters.cheatersProven += d.cheaters.length;
        const verdict = this.verdict(run, d.hash, d.cheaters[0] ?? null);
        for (const r of run.results) if (r.rec.resultHash === d.hash) this.policy.verifiedClean(r.rec.minerId, settings);
        for (const cheater of d.cheaters) {
          this.policy.forget(cheater);
          this.deps.log?.('warn', 'miner proven to return a wrong result; dropping it', { miner: cheater, work: run.req.id, dservice: run.req.dservice });
          this.host.dropMiner(cheater, `proven wrong result for work ${run.req.id}: two other miners agreed on a different result`);
        }
        this.answer(run, d.hash);
        this.deps.onDispute?.(verdict);
        return;
      }
      case 'split': {
        const verdict = this.verdict(run, null, null);
        this.finish(run, { kind: 'error', error: this.unconfirmed(run, 'three miners returned three different results (is the DService deterministic?)') });
        this.deps.onDispute?.(verdict);
        return;
      }
    }
  }

  private unconfirmed(run: RedundantRun, message: string): CgnError {
    this.counters.unconfirmed++;
    return new CgnError('result_unconfirmed', message, { retryable: true, details: { results: run.results.map((r) => r.rec.resultHash) } });
  }

  private verdict(run: RedundantRun, majorityHash: string | null, cheater: string | null): DisputeVerdict {
    return {
      workId: run.req.id,
      account: run.req.account,
      dservice: run.req.dservice,
      requestHash: requestHashHex(run.req.method, run.req.path, run.req.body),
      receivedAt: run.receivedAtWall,
      replicas: run.results.map((r) => r.rec),
      majorityHash,
      cheater,
    };
  }

  /** Answers with the first result that has `hash`; the other executions are the operator's cost. */
  private answer(run: RedundantRun, hash: string): void {
    const winner = run.results.find((r) => r.rec.resultHash === hash)!;
    for (const r of run.results) {
      if (r === winner) continue;
      this.counters.extraExecutions++;
      this.counters.extraCpuUs += r.result.metering.cpuUs;
    }
    run.group.queuedMs = winner.unit.queuedMs;
    run.group.sentAt = winner.unit.sentAt;
    run.group.minerId = winner.rec.minerId;
    this.finish(run, { kind: 'result', result: winner.result, minerId: winner.rec.minerId, nodeExecUs: winner.nodeExecUs });
  }

  private finish(run: RedundantRun, outcome: WorkOutcome): void {
    if (run.done) return;
    run.done = true;
    this.runs.delete(run.req.id);
    for (const r of run.replicas) {
      run.group.attempts += r.unit.attempts;
      if (!r.done) {
        r.done = true;
        this.host.cancelReplica(r.unit.id);
      }
    }
    if (outcome.kind === 'error' && run.group.queuedMs === 0) run.group.queuedMs = Math.min(...run.replicas.map((r) => r.unit.queuedMs));
    run.group.state = 'done';
    run.group.onDone(outcome);
  }
}
