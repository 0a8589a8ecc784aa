/**
 * Group commit: many concurrent `record()` calls share one store transaction, and each call
 * resolves only once its record is committed.
 *
 * Records are buffered; the buffer is committed on the next event-loop turn (`setImmediate`, the
 * default), or after `windowMs` if set, or at once when it reaches `maxBatchSize`. Everything
 * that arrives while the event loop works through one turn (for the node: every request that
 * completed in that turn) lands in one transaction, so the cost of a commit is spread over the
 * batch and a lone record waits no longer than one turn. While a commit of an asynchronous store
 * is in flight, new records collect for the next one; commits never overlap, so each node's
 * hash chain grows in order.
 *
 * If a commit fails, every record of that batch is rejected (retryable `internal` CgnError);
 * nothing is dropped silently. A record whose work id is already in the ledger resolves (the work
 * is recorded, once) and is counted and reported to `onDuplicate`.
 */
import { CgnError } from '@cgn/protocol';
import { VALIDATED_BATCHES, copyMicrotransaction, microtransactionProblem, type Microtransaction } from './record.js';
import type { AppendResult, LedgerStore } from './store.js';

export interface GroupCommitWriterOptions {
  /**
   * Refuse records whose charge would take their account's spending past its funds: their
   * `record()` rejects with `payment_required` and nothing of them is written (the rest of the
   * batch is). Default false. A node that enforces prepaid balances turns it on.
   */
  refuseOverdraft?: boolean;
  /** Commit at once when this many records are buffered. Default 4096. */
  maxBatchSize?: number;
  /**
   * How long the first buffered record may wait for company, ms. Default 0: commit on the next
   * event-loop turn (`setImmediate`), which batches everything that arrived in this turn.
   */
  windowMs?: number;
  /**
   * With `windowMs` 0: while every event-loop turn brings more records (load), keep waiting up to
   * this long after the oldest so that batches grow and commits get fewer; a turn that brings
   * none commits at once, so light load pays no wait. 0 turns it off. Default 1 ms.
   */
  growWindowMs?: number;
  /**
   * Commit a record at once, inside `record()`, when no commit ended within this many ms and
   * nothing else waits: at light load there is no company to wait for, and the next turn came
   * 100 µs or more later on a VM. Under load commits come more often, and records batch as before.
   * Default 0: never (always wait for the turn).
   */
  commitAtOnceWhenQuietMs?: number;
  /** Clock for `commitAtOnceWhenQuietMs`, ms (tests). Default performance.now. */
  now?: () => number;
  /** Close the store at the end of `stop()`. Default false (the store belongs to whoever opened it). */
  closeStoreOnStop?: boolean;
  /** Told the work ids that were already in the ledger and were ignored (not billed twice). */
  onDuplicate?: (workIds: readonly string[]) => void;
  /** Told each committed transaction's size and duration (metrics); called once per batch, not per record. */
  onCommit?: (batchSize: number, commitUs: number) => void;
}

/** For the node's status page. A snapshot: read `writer.counters` again for fresh numbers. */
export interface GroupCommitCounters {
  /** Records acknowledged: their `record()` resolved (inserted + duplicates). */
  records: number;
  /** Records written as new rows. */
  inserted: number;
  /** Records ignored because their work id was already in the ledger. */
  duplicates: number;
  /** Transactions committed. */
  batches: number;
  /** Records in the last committed transaction. */
  lastBatchSize: number;
  /** Largest transaction so far, records. */
  maxBatchSize: number;
  /** How long the last commit took, µs. */
  lastCommitUs: number;
  /** Commits that failed, and the records they rejected. */
  failedBatches: number;
  failedRecords: number;
  /** `record()` calls refused up front: malformed record, or writer not running. */
  refused: number;
  /** Records the ledger would not write because their account could not pay (`refuseOverdraft`). */
  overdraftRefused: number;
  /** Records buffered or being committed right now. */
  pending: number;
}

const REFUSE_OVERDRAFT = Object.freeze({ refuseOverdraft: true });

const DEFAULTS = { maxBatchSize: 4096, windowMs: 0, growWindowMs: 1, commitAtOnceWhenQuietMs: 0, closeStoreOnStop: false } as const;

interface ResolvedOptions {
  maxBatchSize: number;
  windowMs: number;
  growWindowMs: number;
  quietMs: number;
  now: () => number;
  closeStoreOnStop: boolean;
  onDuplicate: ((workIds: readonly string[]) => void) | undefined;
  onCommit: ((batchSize: number, commitUs: number) => void) | undefined;
  refuseOverdraft: boolean;
}

function resolveOptions(o: GroupCommitWriterOptions): ResolvedOptions {
  const maxBatchSize = o.maxBatchSize ?? DEFAULTS.maxBatchSize;
  const windowMs = o.windowMs ?? DEFAULTS.windowMs;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1 || maxBatchSize > 1_000_000) {
    throw new TypeError(`GroupCommitWriter option maxBatchSize: must be an integer from 1 to 1000000, not ${String(maxBatchSize)}`);
  }
  if (typeof windowMs !== 'number' || !(windowMs >= 0 && windowMs <= 1000)) {
    throw new TypeError(`GroupCommitWriter option windowMs: must be a number of ms from 0 to 1000, not ${String(windowMs)}`);
  }
  const growWindowMs = o.growWindowMs ?? DEFAULTS.growWindowMs;
  if (typeof growWindowMs !== 'number' || !(growWindowMs >= 0 && growWindowMs <= 1000)) {
    throw new TypeError(`GroupCommitWriter option growWindowMs: must be a number of ms from 0 to 1000, not ${String(growWindowMs)}`);
  }
  const quietMs = o.commitAtOnceWhenQuietMs ?? DEFAULTS.commitAtOnceWhenQuietMs;
  if (typeof quietMs !== 'number' || !(quietMs >= 0 && quietMs <= 60_000)) {
    throw new TypeError(`GroupCommitWriter option commitAtOnceWhenQuietMs: must be a number of ms from 0 to 60000, not ${String(quietMs)}`);
  }
  return { maxBatchSize, windowMs, growWindowMs, quietMs, now: o.now ?? (() => performance.now()), closeStoreOnStop: o.closeStoreOnStop ?? DEFAULTS.closeStoreOnStop, onDuplicate: o.onDuplicate, onCommit: o.onCommit, refuseOverdraft: o.refuseOverdraft === true };
}

type State = 'new' | 'running' | 'stopping' | 'stopped';
type Resolve = () => void;
type Reject = (err: unknown) => void;

/**
 * Records waiting for one transaction (at most maxBatchSize; only the last pending batch is
 * still filling). Their callers wait on one shared promise: a batch commits or fails as a whole,
 * so every record of it has the same outcome (a duplicate resolves too). Only with
 * `refuseOverdraft` can one record's outcome differ from its batch's; then each record has its
 * own promise (`resolves`, `rejects`).
 */
interface Pending {
  records: Microtransaction[];
  resolves: Resolve[] | null;
  rejects: Reject[] | null;
  promise: Promise<void> | null;
  resolve: Resolve;
  reject: Reject;
}

const NOOP = (): void => {};

export class GroupCommitWriter {
  private readonly options: ResolvedOptions;
  private state: State = 'new';
  /** Batches waiting to commit, oldest first; all but the last are full. */
  private readonly queue: Pending[] = [];
  /** Records in `queue`. */
  private buffered = 0;
  private immediate: ReturnType<typeof setImmediate> | null = null;
  private timeout: ReturnType<typeof setTimeout> | null = null;
  private inFlight: Promise<void> | null = null;
  private inFlightSize = 0;
  private stopped: Promise<void> | null = null;
  private readonly c: Omit<GroupCommitCounters, 'pending'> = {
    records: 0, inserted: 0, duplicates: 0, batches: 0, lastBatchSize: 0, maxBatchSize: 0, lastCommitUs: 0,
    failedBatches: 0, failedRecords: 0, refused: 0, overdraftRefused: 0,
  };
  /** Buffer size at the last turn's check, and when the oldest buffered record arrived. */
  private sizeAtLastTurn = 0;
  private oldestAt = 0;
  /** When the last commit ended (performance.now()). */
  private lastCommitAt = -Infinity;
  private readonly commitSoon = (): void => {
    this.immediate = null;
    this.timeout = null;
    // Adaptive window: while records keep arriving turn after turn (load), wait for more, up to
    // growWindowMs after the oldest; when a turn brings nothing new (light load) commit at once.
    const n = this.buffered;
    if (this.options.growWindowMs > 0 && n > this.sizeAtLastTurn && n < this.options.maxBatchSize && performance.now() - this.oldestAt < this.options.growWindowMs) {
      this.sizeAtLastTurn = n;
      this.immediate = setImmediate(this.commitSoon);
      return;
    }
    this.sizeAtLastTurn = 0;
    this.commit();
  };

  constructor(
    private readonly store: LedgerStore,
    options: GroupCommitWriterOptions = {},
  ) {
    this.options = resolveOptions(options);
  }

  start(): void {
    if (this.state === 'running') return;
    if (this.state !== 'new') throw new CgnError('internal', 'a stopped GroupCommitWriter cannot be started again; make a new one');
    this.state = 'running';
  }

  /**
   * Records one microtransaction; resolves once it is committed (or was already in the ledger),
   * rejects if it is malformed (`bad_request`), the writer is not running (`draining`), or its
   * commit failed (`internal`, retryable). The record is copied: later changes to `tx` do not
   * reach the ledger. Records of one batch may get the same promise object (they share their
   * outcome), so a handler attached to one sees the whole batch's outcome, never another's.
   *
   * ```ts
   * await writer.record({ workId: 'w_1', account: 'acme', endUser: null, dservice: 'echo', tier: 'open',
   *   miner: 'ab12', node: 'eu-1', receivedAt: Date.now(), queueUs: 120, execUs: 950, cpuUs: 800,
   *   bytesIn: 12, bytesOut: 12, status: 200, resultHash: null, attempts: 1 });
   * ```
   */
  record(tx: Microtransaction): Promise<void> {
    if (this.state !== 'running') {
      this.c.refused++;
      const why = this.state === 'new' ? 'has not been started' : 'is stopping';
      return Promise.reject(new CgnError('draining', `the ledger writer ${why}; the work was not recorded`, { retryable: true }));
    }
    const problem = microtransactionProblem(tx);
    if (problem !== null) {
      this.c.refused++;
      const workId = typeof tx?.workId === 'string' ? tx.workId : null;
      return Promise.reject(new CgnError('bad_request', `invalid microtransaction${workId === null ? '' : ` ${workId}`}: ${problem}`, { details: { workId } }));
    }
    if (this.buffered === 0) this.oldestAt = performance.now();
    let p = this.queue[this.queue.length - 1];
    if (p === undefined || p.records.length >= this.options.maxBatchSize) this.queue.push((p = this.pending()));
    p.records.push(copyMicrotransaction(tx));
    this.buffered++;
    let promise: Promise<void>;
    if (p.resolves === null) {
      promise = p.promise ??= new Promise<void>((resolve, reject) => {
        p.resolve = resolve;
        p.reject = reject;
      });
    } else {
      const resolves = p.resolves;
      const rejects = p.rejects!;
      promise = new Promise<void>((resolve, reject) => {
        resolves.push(resolve);
        rejects.push(reject);
      });
    }
    if (this.buffered >= this.options.maxBatchSize) this.commit();
    else if (this.quiet()) this.commit();
    else this.schedule();
    return promise;
  }

  private pending(): Pending {
    const own = this.options.refuseOverdraft;
    return { records: [], resolves: own ? [] : null, rejects: own ? [] : null, promise: null, resolve: NOOP, reject: NOOP };
  }

  /** Commits everything buffered now; resolves when it is done (failures reject the records, not this). */
  async flush(): Promise<void> {
    this.unschedule();
    while (this.inFlight !== null || this.buffered > 0) {
      if (this.inFlight !== null) await this.inFlight;
      else this.commit();
    }
  }

  /** Refuses new records, commits everything pending, then (with `closeStoreOnStop`) closes the store. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.state = 'stopping';
      await this.flush();
      this.state = 'stopped';
      if (this.options.closeStoreOnStop) await this.store.close();
    })();
    return this.stopped;
  }

  get counters(): GroupCommitCounters {
    return { ...this.c, pending: this.buffered + this.inFlightSize };
  }

  /** Light load: this record is alone, nothing is in flight or scheduled, and commits have been rare. */
  private quiet(): boolean {
    return (
      this.options.quietMs > 0 && this.buffered === 1 && this.inFlight === null && this.immediate === null && this.timeout === null &&
      this.options.now() - this.lastCommitAt >= this.options.quietMs
    );
  }

  private schedule(): void {
    if (this.immediate !== null || this.timeout !== null || this.inFlight !== null) return;
    if (this.options.windowMs > 0) this.timeout = setTimeout(this.commitSoon, this.options.windowMs);
    else this.immediate = setImmediate(this.commitSoon);
  }

  private unschedule(): void {
    if (this.immediate !== null) clearImmediate(this.immediate);
    if (this.timeout !== null) clearTimeout(this.timeout);
    this.immediate = null;
    this.timeout = null;
  }

  /** Commits up to maxBatchSize buffered records, unless a commit is in flight. */
  private commit(): void {
    this.unschedule();
    if (this.inFlight !== null || this.buffered === 0) return;
    const p = this.queue.shift()!;
    const batch = p.records;
    this.buffered -= batch.length;
    const started = performance.now();
    let result: AppendResult | Promise<AppendResult>;
    try {
      VALIDATED_BATCHES.add(batch);
      result = this.options.refuseOverdraft ? this.store.appendBatch(batch, REFUSE_OVERDRAFT) : this.store.appendBatch(batch);
    } catch (err) {
      this.failed(p, err);
      this.afterCommit();
      return;
    }
    if (isPromiseLike(result)) {
      this.inFlightSize = batch.length;
      this.inFlight = Promise.resolve(result)
        .then(
          (r) => this.committed(p, r, started),
          (err: unknown) => this.failed(p, err),
        )
        .finally(() => {
          this.inFlight = null;
          this.inFlightSize = 0;
          this.afterCommit();
        });
    } else {
      this.committed(p, result, started);
      this.afterCommit();
    }
  }

  private afterCommit(): void {
    this.lastCommitAt = this.options.now();
    if (this.buffered === 0) return;
    // A synchronous store never leaves more than one batch behind; after an asynchronous commit,
    // what collected meanwhile goes next (at once if it is a full batch or we are stopping).
    if (this.buffered >= this.options.maxBatchSize || this.state === 'stopping') this.commit();
    else this.schedule();
  }

  private committed(p: Pending, result: AppendResult, started: number): void {
    const batch = p.records;
    const c = this.c;
    c.lastCommitUs = Math.round((performance.now() - started) * 1000);
    c.batches++;
    c.lastBatchSize = batch.length;
    if (batch.length > c.maxBatchSize) c.maxBatchSize = batch.length;
    c.records += batch.length;
    c.inserted += result.inserted;
    c.duplicates += result.duplicates.length;
    const refused = result.refused;
    const resolves = p.resolves;
    const rejects = p.rejects;
    if (resolves === null || rejects === null) {
      // Without refuseOverdraft the store refuses nothing: the whole batch is committed.
      p.resolve();
    } else if (refused === undefined || refused.length === 0) {
      for (const resolve of resolves) resolve();
    } else {
      const byId = new Map(refused.map((x) => [x.workId, x]));
      c.overdraftRefused += refused.length;
      c.records -= refused.length;
      for (let i = 0; i < batch.length; i++) {
        const x = byId.get(batch[i]!.workId);
        if (x === undefined) resolves[i]!();
        else {
          rejects[i]!(new CgnError('payment_required', `the ledger refused work ${x.workId}: its charge of ${x.tokens} tokens would take account ${x.account} past its funds (${x.available} left); it was not recorded`, {
            details: { workId: x.workId, account: x.account, tokens: String(x.tokens), available: String(x.available) },
          }));
        }
      }
    }
    if (this.options.onCommit !== undefined) {
      try {
        this.options.onCommit(batch.length, c.lastCommitUs);
      } catch {
        // A reporting hook must not undo a commit.
      }
    }
    if (result.duplicates.length > 0 && this.options.onDuplicate !== undefined) {
      try {
        this.options.onDuplicate(result.duplicates);
      } catch {
        // A reporting hook must not undo a commit.
      }
    }
  }

  private failed(p: Pending, cause: unknown): void {
    const batch = p.records;
    this.c.failedBatches++;
    this.c.failedRecords += batch.length;
    const reason = cause instanceof Error ? cause.message : String(cause);
    const err = new CgnError('internal', `the ledger could not commit a batch of ${batch.length} records (${reason}); they were not recorded`, {
      cause,
      retryable: true,
      details: { batchSize: batch.length },
    });
    if (p.rejects === null) p.reject(err);
    else for (const reject of p.rejects) reject(err);
  }
}

function isPromiseLike<T>(x: T | PromiseLike<T>): x is PromiseLike<T> {
  return typeof (x as { then?: unknown }).then === 'function';
}
