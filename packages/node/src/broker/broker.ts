/**
 * The work broker: a queue per (DService, tier) shared fairly among accounts (`fair-queue.ts`), a
 * pool of miners, and the rules that move work between them. Plain logic: it sends frames and
 * closes tunnels through the callbacks it is given, and reads time from an injected clock, so
 * tests drive it without sockets or sleeps.
 *
 * - `submit` assigns a unit at once to the best free miner (see `assign.ts`) or queues it; past
 *   the queue's depth/age threshold it refuses with `queue_full` (the node answers 503). A full
 *   queue still takes work of an account holding less than an equal share of it, and the age
 *   threshold is read from the account's own oldest unit, so one account's flood does not lock
 *   the others out.
 * - A miner that does not ack a unit in time is down (`ack-deadline.ts`: `ackTimeoutMs`, more for a
 *   miner whose measured acks need more or whose tunnel is otherwise alive, never over 4 ×
 *   `ackTimeoutMs`): its tunnel is closed, it leaves the pool and all its work goes back to the
 *   head of its queues.
 * - A miner that fails or disconnects mid-work: same; the DApp never sees the fault, only a delay.
 * - A unit past its deadline completes with `deadline_exceeded` (504); a miner running it is
 *   told to cancel.
 * - With `redundancy` on, `open`-tier units of deterministic DServices are checked on a second
 *   miner with the probability of the miner that would run them (`verification.ts`: 1 for new
 *   miners, falling to a floor for proven ones) and the results compared (`redundancy.ts`); other
 *   tiers never take that path.
 * - An account limited to data regions (`regionsOf`) has its units, replicas included, run only on
 *   miners whose advertised region is in (or under: `eu-west` is in `eu`) one of them; a miner that
 *   advertises no region takes none of them. Each pool indexes its free miners by region too, so a
 *   fenced pick draws from the free miners of its regions only.
 */
import { CgnError, frame, type AdvertiseFrame, type ErrorFrame, type Frame, type OutgoingFrame, type ResultFrame, type Tier } from '@cgn/protocol';
import { EXACT_LIMIT, expectedCompletion, pickMiner, pickSampled, pickSampledIn, xorshift, type AssignCandidate, type SampleView } from './assign.js';
import { ackCeiling, ackDeadline, ackVerdict, newAckRtt, sampleAck, type AckRtt, type AckVerdict } from './ack-deadline.js';
import { FairQueue } from './fair-queue.js';
import { IndexedSet } from './indexed-set.js';
import { Redundancy, type DisputeVerdict, type RedundancyCounters } from './redundancy.js';
import type { VerificationSettings } from './verification.js';
import type { HeldTally, WorkOutcome, WorkRequest, WorkUnit } from './work-unit.js';

export interface BrokerOptions {
  /** Queue length past which new work is refused with 503. Default 1000. */
  maxQueueDepth: number;
  /** Age of the oldest queued unit past which new work is refused with 503, ms. Default 5000. */
  maxQueueAgeMs: number;
  /**
   * Time a miner has to acknowledge a work frame, ms, before its own acks are measured; a miner's
   * deadline adapts from there up to 4× this (`ack-deadline.ts`). Default 2000.
   */
  ackTimeoutMs: number;
  /** Miners a unit may be handed to before it fails with 502. Default 4. */
  maxAttempts: number;
  /** Weight of the newest sample in the latency EWMA. Default 0.2. */
  latencyAlpha: number;
  /**
   * Verification of `open`-tier results on a second miner: the floor (0..1] of a proven miner's
   * probability of being checked (new miners: always; 1: every unit, full duplication). Default 0:
   * off (the node turns it on, 0.05, with the open tier's stake checks).
   */
  redundancy: number;
  /** Factor a miner's verification probability falls by with each verified-clean result. Default 0.8. */
  verificationDecay: number;
}

export const BROKER_DEFAULTS: BrokerOptions = {
  maxQueueDepth: 1000,
  maxQueueAgeMs: 5000,
  ackTimeoutMs: 2000,
  maxAttempts: 4,
  latencyAlpha: 0.2,
  redundancy: 0,
  verificationDecay: 0.8,
};

export interface BrokerDeps {
  now: () => number;
  send: (minerId: string, frame: OutgoingFrame) => void;
  /** Closes a miner's tunnel; the broker has already taken it out of the pool. */
  closeMiner: (minerId: string, reason: string) => void;
  log?: (level: 'debug' | 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
  /** Timers for unit deadlines; injectable for tests. */
  setTimer?: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>;
  clearTimer?: (t: ReturnType<typeof setTimeout>) => void;
  /** Randomness for sampling redundant runs; injectable for tests. Default Math.random. */
  random?: () => number;
  /** Wall clock for evidence timestamps. Default Date.now. */
  wallNow?: () => number;
  /** A redundant run's results disagreed and a third miner ran (the verdict names the cheater, if any). */
  onDispute?: (verdict: DisputeVerdict) => void;
  /**
   * A DService's verification settings (its descriptor's, or the broker's defaults); null when its
   * results are not checked (not deterministic). Default: the broker's defaults for every DService.
   */
  verificationOf?: (dservice: string) => VerificationSettings | null;
  /** An account's weight in the fair queues (its plan or stake); read at each of its turns. Default 1. */
  weightOf?: (account: string) => number;
  /**
   * Memory a DService needs (its descriptor's `resources.memoryMb`): a miner advertising less does
   * not take its work. Default: no requirement.
   */
  memoryOf?: (dservice: string) => number;
  /** Randomness for the assignment rule's draws (`assign.ts`). Default: a fixed-seed xorshift. */
  pickRandom?: () => number;
  /**
   * The data regions an account's work may run in (the same set object for as long as its policy
   * holds); null: anywhere. Read once per unit, at submit. Default: every account anywhere.
   */
  regionsOf?: (account: string) => ReadonlySet<string> | null;
  /**
   * Whether any frame came from the miner within the last `ms` (its tunnel is alive): a miner late
   * with an ack is then kept up to the ack ceiling. Asked only of miners past their deadline.
   * Default: never (late is dead).
   */
  heardWithin?: (minerId: string, ms: number) => boolean;
  /**
   * The largest result body a DService may answer with (its descriptor's `maxBodyBytes`); a miner
   * sending more fails the unit (502 naming the limit) instead of the client getting it. Honest
   * miners refuse such an answer themselves. Default: no limit but the tunnel's frame limit.
   */
  maxResultBytesOf?: (dservice: string) => number | undefined;
}

/** Work held for one (DService, tier) under one fence (`Broker.fencesWaiting`). */
export interface FenceWaiting {
  /** The fence's regions, sorted; null: work that may run anywhere. */
  regions: string[] | null;
  queued: number;
  running: number;
  /** How long the oldest queued unit has waited, ms (0: none queued). */
  oldestMs: number;
}

/** Region keys a miner is known by, at most this many (its region and the parents it is under). */
const MAX_REGION_KEYS = 8;

/**
 * The keys a fence may name a miner's region by: `eu-west-1` is in `eu-west-1`, `eu-west` and `eu`
 * (the scheduler's `regionAllowed`). Capped: a miner with a deeper name is only left out of fences
 * naming its deepest parents, which is safe (out of a fence, never into one).
 */
export function regionKeys(region: string | undefined): string[] {
  if (region === undefined || region === '') return [];
  const keys = [region];
  for (let i = region.indexOf('-', 1); i > 0 && keys.length < MAX_REGION_KEYS; i = region.indexOf('-', i + 1)) keys.push(region.slice(0, i));
  return keys;
}

/** Whether a miner's region is inside a fence. O(keys) ≤ MAX_REGION_KEYS set lookups. */
function inFence(m: MinerState, fence: ReadonlySet<string>): boolean {
  for (const k of m.regionKeys) if (fence.has(k)) return true;
  return false;
}

export interface MinerState {
  id: string;
  tier: Tier;
  dservices: Set<string>;
  slots: number;
  /** Memory it advertised, MB. */
  memoryMb: number;
  /** Data region it advertised (null: none, so outside every fence) and the keys it is found by. */
  region: string | null;
  regionKeys: string[];
  /** Units the miner holds, in the order they were sent (Map keeps insertion order). */
  inFlight: Map<string, WorkUnit>;
  /** Per DService: how many units it takes at once, and how many it holds now. */
  dsSlots: Map<string, number>;
  dsInUse: Map<string, number>;
  latencyMs: number | null;
  /** Its smoothed ack round trip, from which its ack deadline is read (`ack-deadline.ts`). */
  ackRtt: AckRtt;
  active: boolean;
  draining: boolean;
  completed: number;
  failed: number;
  connectedAt: number;
  /** Its candidate view per DService for the assignment rule (refreshed at each pick). */
  candidates: Map<string, PickCandidate>;
  /** Order in which it joined (its place in `miners`), so sweeps drop miners in that order. */
  seq: number;
  /** The pools (queue keys) it is a member of. */
  pools: Pool[];
  /** What placement reads of its last advertisement (`membershipKey`), to tell a change from a repeat. */
  advertKey: string;
  /**
   * Per queue key: the queue's version when a scan found no queued unit this miner may take (all
   * fenced to other regions, or replicas it ran), so it is not scanned again until work is added.
   */
  barren: Map<string, number> | null;
}

/**
 * What of an advertisement placement and the pools read (tier, slots, DServices, resources,
 * region, location, price floor), as one string: an advertisement that repeats it changes nothing.
 */
export function membershipKey(ad: AdvertiseFrame): string {
  const r = ad.resources;
  return JSON.stringify([
    ad.tier, ad.slots, ad.dservices.map((d) => [d.name, d.version, d.digest, d.slots ?? null]),
    r.cpus, r.memoryMb, r.diskMb ?? null, r.gpus ?? null, r.bandwidthMbps ?? null, ad.location ?? null, ad.region ?? null, ad.priceFloor ?? null,
  ]);
}

/** The miners that may take work of one (DService, tier) queue, and the index of those free now. */
interface Pool {
  key: string;
  dservice: string;
  members: IndexedSet<MinerState>;
  /** Members that are active, not draining and have a free slot overall and for `dservice`. */
  free: IndexedSet<MinerState>;
  /**
   * `members` and `free` by region key (a miner in `eu-west` is under `eu-west` and `eu`). A key's
   * free set, empty or not, lives as long as it has members.
   */
  membersIn: Map<string, IndexedSet<MinerState>>;
  freeIn: Map<string, IndexedSet<MinerState>>;
  /** Sum and count of the members' known latencies: an unknown miner is scored with their mean. */
  latencySum: number;
  latencyKnown: number;
}

/** The assignment rule's view of free miners for one pick; the broker keeps one and retargets it. */
class PickView implements SampleView<MinerState> {
  dservice = '';
  fallback = 1;
  avoid: readonly string[] | null = null;
  exclude: Set<string> | null = null;
  regions: ReadonlySet<string> | null = null;
  private readonly c: AssignCandidate = { id: '', slots: 1, inFlight: 0, latencyMs: null, active: true };

  admissible(m: MinerState): boolean {
    return (this.exclude === null || !this.exclude.has(m.id)) && (this.regions === null || inFence(m, this.regions)) && (this.avoid === null || !this.avoid.includes(m.id));
  }

  inFlight(m: MinerState): number {
    return m.dsInUse.get(this.dservice) ?? 0;
  }

  score(m: MinerState): number {
    const c = this.c;
    c.slots = m.dsSlots.get(this.dservice) ?? m.slots;
    c.inFlight = this.inFlight(m);
    c.latencyMs = m.latencyMs;
    return expectedCompletion(c, this.fallback);
  }
}

interface PickCandidate extends AssignCandidate {
  m: MinerState;
}

export interface BrokerCounters {
  submitted: number;
  completed: number;
  refusedQueueFull: number;
  deadlineExceeded: number;
  cancelled: number;
  requeued: number;
  failed: number;
  minersLost: number;
}

const queueKey = (dservice: string, tier: Tier): string => `${dservice}\u0000${tier}`;
const accountOf = (u: WorkUnit): string => u.account;
const isQueued = (u: WorkUnit): boolean => u.state === 'queued';
/** Whether a unit may run on a miner at all (its replica exclusions and its account's regions). */
const admits = (u: WorkUnit, m: MinerState): boolean => (u.exclude === null || !u.exclude.has(m.id)) && (u.regions === null || inFence(m, u.regions));

/**
 * Adds or deletes `m` in the set under `key`, creating it on demand; an emptied set is dropped
 * unless `keep` (free sets empty and refill with every busy miner: kept, nothing is allocated
 * per dispatch; they go with the last member under their key).
 */
function setIn(by: Map<string, IndexedSet<MinerState>>, key: string, m: MinerState, member: boolean, keep = false): void {
  const set = by.get(key);
  if (set !== undefined) {
    set.set(m, member);
    if (set.size === 0 && !keep) by.delete(key);
  } else if (member) {
    const fresh = new IndexedSet<MinerState>();
    fresh.add(m);
    by.set(key, fresh);
  }
}

export class Broker {
  readonly options: BrokerOptions;
  readonly counters: BrokerCounters = {
    submitted: 0, completed: 0, refusedQueueFull: 0, deadlineExceeded: 0, cancelled: 0, requeued: 0, failed: 0, minersLost: 0,
  };
  private readonly queues = new Map<string, FairQueue<WorkUnit>>();
  private readonly miners = new Map<string, MinerState>();
  private minerSeq = 0;
  /**
   * Miners sent work since `sweep` last found them with nothing unacked: the only ones it visits.
   * Holds miners, never units, so a finished request is garbage at once (a heap of sends held each
   * unit, and with it its HTTP exchange, for the whole ack timeout: every young-generation GC under
   * load copied seconds' worth of requests).
   */
  private readonly unacked = new IndexedSet<MinerState>();
  /** Every miner's acks smoothed together: where a joining miner's own estimate starts (`ack-deadline.ts`). */
  private readonly nodeAckRtt: AckRtt = newAckRtt();
  /** Miners by queue key: who may take work from that queue, and who is free to now. */
  private readonly pools = new Map<string, Pool>();
  private readonly view = new PickView();
  private readonly random: () => number;
  /**
   * The miner a redundancy draw was made for (`submit`): the unit's first replica goes to it, so
   * the check probability drawn is that of the miner that runs it.
   */
  private hint: MinerState | null = null;
  private readonly units = new Map<string, WorkUnit>();
  /** Per queue key: units held (queued or running), without regions and per fence, for `fencesWaiting`. */
  private readonly heldBy = new Map<string, HeldTally>();
  /** The tally `hold` used last (most traffic is of a few queues: saves the lookup). */
  private lastHeld: { key: string; tally: HeldTally | null } = { key: '', tally: null };
  private readonly scratch: PickCandidate[] = [];
  /** The free sets one pick draws from (the pool's, or those of a fence's regions); reused. */
  private readonly drawSets: IndexedSet<MinerState>[] = [];
  /** Member `i` of the concatenated `drawSets` (bound once: the sampled pick's accessor). */
  private readonly drawAt = (i: number): MinerState => {
    const sets = this.drawSets;
    for (let k = 0; k < sets.length - 1; k++) {
      const n = sets[k]!.size;
      if (i < n) return sets[k]!.items[i]!;
      i -= n;
    }
    return sets[sets.length - 1]!.items[i]!;
  };
  private readonly regionsOf: (account: string) => ReadonlySet<string> | null;
  private readonly setTimer: NonNullable<BrokerDeps['setTimer']>;
  private readonly clearTimer: NonNullable<BrokerDeps['clearTimer']>;
  /** Redundant execution of open-tier work; null when off. */
  private readonly redundancy: Redundancy | null;
  private readonly weightOf: (account: string) => number;

  constructor(private readonly deps: BrokerDeps, options: Partial<BrokerOptions> = {}) {
    this.options = { ...BROKER_DEFAULTS, ...options };
    this.weightOf = deps.weightOf ?? (() => 1);
    this.regionsOf = deps.regionsOf ?? (() => null);
    this.random = deps.pickRandom ?? xorshift();
    this.setTimer = deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = deps.clearTimer ?? ((t) => clearTimeout(t));
    this.redundancy =
      this.options.redundancy > 0
        ? new Redundancy(
            {
              now: () => this.deps.now(),
              submitReplica: (req, exclude, onDone) => this.submit(req, onDone, exclude),
              cancelReplica: (id) => this.cancel(id),
              dropMiner: (id, reason) => {
                this.removeMiner(id, reason);
                this.deps.closeMiner(id, reason);
              },
            },
            { defaults: { floor: this.options.redundancy, decay: this.options.verificationDecay } },
            {
              ...(deps.random ? { random: deps.random } : {}), ...(deps.wallNow ? { wallNow: deps.wallNow } : {}), ...(deps.onDispute ? { onDispute: deps.onDispute } : {}), ...(deps.log ? { log: deps.log } : {}),
              ...(deps.verificationOf ? { settingsOf: deps.verificationOf } : {}),
            },
          )
        : null;
  }

  /** Units the broker owns (queued or running). */
  get pending(): number {
    return this.units.size;
  }

  // ---- work -------------------------------------------------------------------------------

  /**
   * Takes a request. Throws `queue_full` when it can neither run now nor be queued.
   * `onDone` is called exactly once with the result or the error.
   */
  submit(req: WorkRequest, onDone: (outcome: WorkOutcome) => void, exclude: Set<string> | null = null): WorkUnit {
    const key = queueKey(req.dservice, req.tier);
    const regions = this.regionsOf(req.account);
    if (exclude === null && this.redundancy !== null && req.tier === 'open') {
      const settings = this.redundancy.settingsOf(req.dservice);
      if (settings !== null) {
        // Checked or not is drawn for the miner that runs it now. A unit that will wait in the
        // queue may go to any miner (a new one too), so it is drawn as for a new miner: checked.
        const queue = this.queues.get(key);
        const next = queue !== undefined && this.liveHead(queue) !== undefined ? null : this.pick(key, null, null, regions);
        this.hint = next;
        try {
          return this.redundancy.run(req, onDone, this.redundancy.shouldCheck(next?.id ?? null, settings));
        } finally {
          this.hint = null;
        }
      }
    }
    const now = this.deps.now();
    // Field by field (not a spread): keeps one fast object shape for every unit.
    const unit: WorkUnit = {
      id: req.id,
      account: req.account,
      dservice: req.dservice,
      tier: req.tier,
      method: req.method,
      path: req.path,
      headers: req.headers,
      body: req.body,
      timeoutMs: req.timeoutMs,
      receivedAt: now,
      deadline: now + req.timeoutMs,
      sentAt: 0,
      queuedMs: 0,
      enqueuedAt: now,
      attempts: 0,
      acked: false,
      state: 'queued',
      minerId: null,
      failedOn: null,
      exclude,
      regions,
      held: null,
      timer: null,
      onDone,
    };
    const queue = this.queues.get(key);
    const head = queue === undefined ? undefined : this.liveHead(queue);
    // Behind a head only some miners may take (a replica, or fenced to regions), free miners may be
    // left that no queued unit may use (fill and pump leave none that one could): the new unit is
    // tried on them at once rather than queued behind work that cannot go there.
    const miner = head === undefined || head.exclude !== null || head.regions !== null ? this.pick(key, null, exclude, regions) : null;
    if (miner === null) {
      const q = queue ?? this.queueFor(key);
      const mine = q.depthOf(req.account);
      const oldest = q.oldestOf(req.account, isQueued);
      const full = q.length >= this.options.maxQueueDepth && mine >= Math.max(1, Math.floor(this.options.maxQueueDepth / (q.accountsWaiting + (mine === 0 ? 1 : 0))));
      if (full || (oldest !== undefined && now - oldest.enqueuedAt > this.options.maxQueueAgeMs)) {
        this.counters.refusedQueueFull++;
        throw new CgnError('queue_full', `the queue for ${req.dservice} (${req.tier}) is full; try again shortly`, {
          retryable: true,
          details: { depth: q.length, accountDepth: mine, oldestMs: oldest === undefined ? 0 : now - oldest.enqueuedAt },
        });
      }
      this.counters.submitted++;
      this.units.set(unit.id, unit);
      this.hold(unit, key);
      unit.timer = this.setTimer(() => this.expire(unit), req.timeoutMs);
      q.push(unit);
      return unit;
    }
    this.counters.submitted++;
    this.units.set(unit.id, unit);
    this.hold(unit, key);
    unit.timer = this.setTimer(() => this.expire(unit), req.timeoutMs);
    this.dispatch(unit, miner, now);
    return unit;
  }

  /** The DApp went away: stop the work, tell the miner, complete with `cancelled`. */
  cancel(workId: string): void {
    const unit = this.units.get(workId);
    if (unit === undefined) {
      this.redundancy?.cancel(workId);
      return;
    }
    if (unit.state === 'done') return;
    this.counters.cancelled++;
    this.abandon(unit, new CgnError('cancelled', 'the client closed the request'));
  }

  // ---- miners -----------------------------------------------------------------------------

  /** A miner authenticated and advertised (or re-advertised) what it runs. */
  /**
   * Bumped whenever a miner joins, advertises something new, drains, resumes or leaves: a reader
   * that saw the same value knows the pool's membership is as it was (placement skips its idle
   * rounds on it). An advertisement that only repeats the last one does not bump it: a miner
   * re-advertising in a loop would otherwise force a full placement round (O(miners)) each time.
   */
  membershipVersion = 0;

  /** Work units the broker holds now, queued or running. */
  get unitsHeld(): number {
    return this.units.size;
  }

  addMiner(id: string, ad: AdvertiseFrame): void {
    const existing = this.miners.get(id);
    const advertKey = membershipKey(ad);
    if (existing === undefined || existing.draining || existing.advertKey !== advertKey) this.membershipVersion++;
    if (existing !== undefined) this.leavePools(existing);
    const m: MinerState = existing ?? {
      id,
      tier: ad.tier,
      dservices: new Set(),
      slots: ad.slots,
      memoryMb: ad.resources.memoryMb,
      region: null,
      regionKeys: [],
      inFlight: new Map(),
      dsSlots: new Map(),
      dsInUse: new Map(),
      latencyMs: null,
      ackRtt: { ...this.nodeAckRtt },
      active: true,
      draining: false,
      completed: 0,
      failed: 0,
      connectedAt: this.deps.now(),
      candidates: new Map(),
      seq: this.minerSeq++,
      pools: [],
      advertKey,
      barren: null,
    };
    m.advertKey = advertKey;
    // A drained miner that advertises again wants work again (its owner resumed it).
    m.draining = false;
    m.tier = ad.tier;
    m.slots = ad.slots;
    m.memoryMb = ad.resources.memoryMb;
    m.region = ad.region ?? null;
    m.barren = null; // what it may take may have changed
    m.regionKeys = regionKeys(ad.region);
    m.dservices = new Set(ad.dservices.map((d) => d.name));
    m.dsSlots = new Map(ad.dservices.map((d) => [d.name, Math.min(d.slots ?? ad.slots, ad.slots)]));
    for (const name of m.dsInUse.keys()) if (!m.dservices.has(name)) m.dsInUse.delete(name);
    this.miners.set(id, m);
    for (const name of m.dservices) {
      if (!this.fits(m, name)) continue;
      const key = queueKey(name, m.tier);
      let pool = this.pools.get(key);
      if (pool === undefined) this.pools.set(key, (pool = { key, dservice: name, members: new IndexedSet(), free: new IndexedSet(), membersIn: new Map(), freeIn: new Map(), latencySum: 0, latencyKnown: 0 }));
      pool.members.add(m);
      for (const k of m.regionKeys) setIn(pool.membersIn, k, m, true);
      m.pools.push(pool);
      if (m.latencyMs !== null) {
        pool.latencySum += m.latencyMs;
        pool.latencyKnown++;
      }
    }
    this.refreshFree(m);
    this.deps.log?.('debug', 'miner joined the pool', { miner: id, tier: m.tier, slots: m.slots, dservices: [...m.dservices] });
    this.fill(m);
  }

  /** The miner asked to drain: no new work, in-flight work finishes. */
  drainMiner(id: string): void {
    const m = this.miners.get(id);
    if (m === undefined) return;
    this.membershipVersion++;
    m.draining = true;
    this.refreshFree(m);
  }

  /**
   * The miner is gone (tunnel closed, ack timeout, heartbeat lost, bad frame). Its work goes
   * back to the head of the queues and runs elsewhere.
   */
  removeMiner(id: string, reason: string): void {
    const m = this.miners.get(id);
    if (m === undefined) return;
    this.membershipVersion++;
    this.miners.delete(id);
    this.unacked.delete(m);
    this.leavePools(m);
    m.active = false;
    this.counters.minersLost++;
    const units = [...m.inFlight.values()].sort((a, b) => a.sentAt - b.sentAt);
    m.inFlight.clear();
    m.dsInUse.clear();
    if (units.length > 0) this.deps.log?.('warn', 'miner lost with work in flight; requeueing', { miner: id, reason, units: units.length });
    const now = this.deps.now();
    // Reverse order so that after the unshifts the oldest unit is at the head.
    for (let i = units.length - 1; i >= 0; i--) this.requeue(units[i]!, id, now);
    for (const u of units) if (u.state === 'queued') this.pump(queueKey(u.dservice, u.tier));
  }

  /** A frame from an authenticated, advertised miner. */
  onAck(minerId: string, workId: string): void {
    const m = this.miners.get(minerId);
    const unit = m?.inFlight.get(workId);
    if (unit === undefined || unit.acked) return;
    unit.acked = true;
    this.sampleAck(m!, unit);
  }

  onResult(minerId: string, result: ResultFrame): void {
    const m = this.miners.get(minerId);
    const unit = m?.inFlight.get(result.id);
    if (m === undefined || unit === undefined) return; // late result of cancelled/expired work
    // A result that comes before the ack is the first sign the unit arrived.
    if (!unit.acked) this.sampleAck(m, unit);
    this.release(m, unit);
    unit.acked = true;
    const limit = this.deps.maxResultBytesOf?.(unit.dservice);
    if (limit !== undefined && result.body.length > limit) {
      m.failed++;
      this.counters.failed++;
      this.deps.log?.('warn', 'miner sent a result larger than its DService allows', { miner: minerId, work: unit.id, bytes: result.body.length, limit });
      this.finish(unit, {
        kind: 'error',
        error: new CgnError('miner_failed', `the miner's result (${result.body.length} bytes) is larger than ${unit.dservice} may answer with (maxBodyBytes ${limit})`, { details: { limit, bytes: result.body.length } }),
      });
      this.fill(m);
      return;
    }
    const now = this.deps.now();
    const latency = Math.max(0, now - unit.sentAt);
    const before = m.latencyMs;
    m.latencyMs = before === null ? latency : before + this.options.latencyAlpha * (latency - before);
    for (const p of m.pools) {
      p.latencySum += m.latencyMs - (before ?? 0);
      if (before === null) p.latencyKnown++;
    }
    m.completed++;
    this.counters.completed++;
    this.finish(unit, { kind: 'result', result, minerId, nodeExecUs: Math.round(latency * 1000) });
    this.fill(m);
  }

  /** The miner could not run a unit (its DService failed): run it elsewhere if retryable. */
  onWorkError(minerId: string, err: ErrorFrame & { id: string }): void {
    const m = this.miners.get(minerId);
    const unit = m?.inFlight.get(err.id);
    if (m === undefined || unit === undefined) return;
    this.release(m, unit);
    m.failed++;
    if (err.retryable === true) {
      this.requeue(unit, minerId, this.deps.now());
      if (unit.state === 'queued') this.pump(queueKey(unit.dservice, unit.tier));
    } else {
      this.counters.failed++;
      this.finish(unit, { kind: 'error', error: new CgnError('miner_failed', `the DService could not run this request: ${err.message}`) });
    }
    this.fill(m);
  }

  /** Checks ack deadlines (`ack-deadline.ts`); call periodically (the node does every ackTimeoutMs / 4). */
  sweep(): void {
    const now = this.deps.now();
    // Visits only miners that were sent work (not every miner); one found with nothing unacked
    // leaves the set until its next dispatch. Backwards: a deletion swaps in an entry already seen.
    let down: MinerState[] | null = null;
    const watched = this.unacked.items;
    for (let i = watched.length - 1; i >= 0; i--) {
      const m = watched[i]!;
      const head = this.miners.get(m.id) === m ? this.oldestUnacked(m) : undefined;
      if (head === undefined) this.unacked.delete(m);
      else if (this.ackVerdictOf(m, now - head.sentAt) === 'drop') (down ??= []).push(m);
    }
    if (down === null) return;
    for (const m of (down as MinerState[]).sort((a, b) => a.seq - b.seq)) {
      if (this.miners.get(m.id) !== m) continue;
      const head = this.oldestUnacked(m);
      if (head === undefined || this.ackVerdictOf(m, now - head.sentAt) !== 'drop') continue;
      const waited = Math.round(now - head.sentAt);
      const reason = `no ack for work ${head.id} within ${waited} ms (this miner's ack deadline: ${Math.round(this.ackDeadlineOf(m))} ms)`;
      this.deps.log?.('warn', 'miner down: ack timeout', { miner: m.id, work: head.id, waitedMs: waited, deadlineMs: Math.round(this.ackDeadlineOf(m)) });
      this.removeMiner(m.id, reason);
      this.deps.closeMiner(m.id, reason);
    }
  }

  /** Folds the unit's round trip into the miner's ack estimate and the node's. */
  private sampleAck(m: MinerState, unit: WorkUnit): void {
    const rtt = this.deps.now() - unit.sentAt;
    sampleAck(m.ackRtt, rtt);
    sampleAck(this.nodeAckRtt, rtt);
  }

  /** The miner's ack deadline now, ms (`ack-deadline.ts`). */
  ackDeadlineOf(m: MinerState): number {
    return ackDeadline(m.ackRtt, this.options.ackTimeoutMs);
  }

  /** The ack rule for a miner whose oldest unacked unit is `ageMs` old; asks `heardWithin` only past its deadline. */
  private ackVerdictOf(m: MinerState, ageMs: number): AckVerdict {
    const base = this.options.ackTimeoutMs;
    const asks = ageMs > this.ackDeadlineOf(m) && !(ageMs > ackCeiling(base));
    return ackVerdict(ageMs, m.ackRtt, base, asks && this.deps.heardWithin?.(m.id, base) === true);
  }

  /**
   * Whether a connected miner could ever take work of this DService and tier (busy or not): one
   * that runs it in the tier, has the memory and is not draining. O(1) unless all are draining.
   */
  servable(dservice: string, tier: Tier, regions: ReadonlySet<string> | null = null): boolean {
    const pool = this.pools.get(queueKey(dservice, tier));
    if (pool === undefined) return false;
    if (regions === null) {
      if (pool.free.size > 0) return true;
      for (const m of pool.members.items) if (!m.draining) return true;
      return false;
    }
    for (const r of regions) if ((pool.freeIn.get(r)?.size ?? 0) > 0) return true;
    for (const r of regions) for (const m of pool.membersIn.get(r)?.items ?? []) if (!m.draining) return true;
    return false;
  }

  /** Units of (dservice, tier) sent to miners and not finished: O(units held), not O(miners), no allocation. */
  runningOf(dservice: string, tier: Tier): number {
    let n = 0;
    for (const u of this.units.values()) if (u.state === 'sent' && u.dservice === dservice && u.tier === tier) n++;
    return n;
  }

  /** Every connected miner that advertises `dservice` (for diagnoses; allocates). */
  minersOf(dservice: string): { id: string; tier: Tier; memoryMb: number; slots: number; inUse: number; draining: boolean; region: string | null }[] {
    const out = [];
    for (const m of this.miners.values()) {
      if (m.dservices.has(dservice)) out.push({ id: m.id, tier: m.tier, memoryMb: m.memoryMb, slots: m.dsSlots.get(dservice) ?? m.slots, inUse: m.dsInUse.get(dservice) ?? 0, draining: m.draining, region: m.region });
    }
    return out;
  }

  /**
   * The work the broker holds for one (DService, tier), queued or running, by fence, for placement
   * (it starts instances per fence): one entry per distinct set of regions, with the units queued,
   * running, and how long the oldest queued one has waited. Null when none of it is fenced (the
   * queue's own figures, `queueOf` and `runningOf`, are then the whole story). O(units held) when
   * some work is fenced, else O(1); as many entries as distinct fences (accounts with the same
   * regions are one), which placement bounds.
   */
  fencesWaiting(dservice: string, tier: Tier): FenceWaiting[] | null {
    const tally = this.heldBy.get(queueKey(dservice, tier));
    if (tally === undefined || tally.fences.size === 0) return null;
    const now = this.deps.now();
    const bySet = new Map<ReadonlySet<string> | null, FenceWaiting>();
    for (const u of this.units.values()) {
      if (u.held !== tally || u.state === 'done') continue;
      let f = bySet.get(u.regions);
      if (f === undefined) bySet.set(u.regions, (f = { regions: u.regions === null ? null : [...u.regions].sort(), queued: 0, running: 0, oldestMs: 0 }));
      if (u.state === 'sent') f.running++;
      else {
        f.queued++;
        f.oldestMs = Math.max(f.oldestMs, now - u.enqueuedAt);
      }
    }
    // Accounts with the same regions hold different sets: one entry per fence.
    const byKey = new Map<string, FenceWaiting>();
    for (const f of bySet.values()) {
      const key = f.regions === null ? '' : f.regions.join(',');
      const same = byKey.get(key);
      if (same === undefined) byKey.set(key, f);
      else (same.queued += f.queued), (same.running += f.running), (same.oldestMs = Math.max(same.oldestMs, f.oldestMs));
    }
    return [...byKey.values()];
  }

  /** Queue state of one (DService, tier): depth, accounts waiting, the next unit's wait. */
  queueOf(dservice: string, tier: Tier, account: string | null = null): { depth: number; accounts: number; oldestMs: number; accountDepth: number | null } {
    const q = this.queues.get(queueKey(dservice, tier));
    if (q === undefined) return { depth: 0, accounts: 0, oldestMs: 0, accountDepth: account === null ? null : 0 };
    const head = this.liveHead(q);
    return { depth: q.length, accounts: q.accountsWaiting, oldestMs: head === undefined ? 0 : this.deps.now() - head.enqueuedAt, accountDepth: account === null ? null : q.depthOf(account) };
  }

  // ---- status -----------------------------------------------------------------------------

  snapshot(): {
    miners: { id: string; tier: Tier; region: string | null; dservices: string[]; slots: number; inUse: number; latencyMs: number | null; draining: boolean; completed: number; failed: number }[];
    queues: { dservice: string; tier: Tier; depth: number; accounts: number; oldestMs: number }[];
    counters: BrokerCounters;
    pending: number;
    redundancy?: RedundancyCounters & { floor: number; decay: number; active: number };
  } {
    const now = this.deps.now();
    return {
      miners: [...this.miners.values()].map((m) => ({
        id: m.id, tier: m.tier, region: m.region, dservices: [...m.dservices], slots: m.slots, inUse: m.inFlight.size,
        latencyMs: m.latencyMs === null ? null : Math.round(m.latencyMs * 1000) / 1000, draining: m.draining, completed: m.completed, failed: m.failed,
      })),
      queues: [...this.queues.entries()].map(([key, q]) => {
        const [dservice, tier] = key.split('\u0000') as [string, Tier];
        const head = this.liveHead(q);
        return { dservice, tier, depth: q.length, accounts: q.accountsWaiting, oldestMs: head === undefined ? 0 : now - head.enqueuedAt };
      }),
      counters: { ...this.counters },
      pending: this.units.size,
      ...(this.redundancy === null ? {} : { redundancy: { ...this.redundancy.counters, floor: this.redundancy.options.defaults.floor, decay: this.redundancy.options.defaults.decay, active: this.redundancy.active } }),
    };
  }

  // ---- internals --------------------------------------------------------------------------

  private queueFor(key: string): FairQueue<WorkUnit> {
    let q = this.queues.get(key);
    if (q === undefined) this.queues.set(key, (q = new FairQueue<WorkUnit>(accountOf, this.weightOf)));
    return q;
  }

  /** The oldest queued unit `m` may take (used when the head may not run on it). */
  private firstAllowed(q: FairQueue<WorkUnit>, m: MinerState): WorkUnit | undefined {
    for (const u of q) if (u.state === 'queued' && admits(u, m)) return u;
    return undefined;
  }

  /** Drops completed units from the head (they are removed lazily) and returns the live head. */
  private liveHead(q: FairQueue<WorkUnit>): WorkUnit | undefined {
    let head = q.peek();
    while (head !== undefined && head.state !== 'queued') {
      q.dropHead();
      head = q.peek();
    }
    return head;
  }

  private pick(key: string, avoid: string[] | null, exclude: Set<string> | null = null, regions: ReadonlySet<string> | null = null): MinerState | null {
    const pool = this.pools.get(key);
    if (pool === undefined || pool.free.size === 0) return null;
    // Draw from the pool's free set, or for a fenced unit from the free sets of its regions only,
    // so a unit of a small region is not left to chance among a large pool's other miners.
    const sets = this.drawSets;
    sets.length = 0;
    let n = pool.free.size;
    if (regions !== null) {
      n = 0;
      for (const r of regions) {
        const s = pool.freeIn.get(r);
        if (s === undefined || s.size === 0) continue;
        sets.push(s);
        n += s.size;
      }
      if (n === 0) return null;
    }
    const hint = this.hint;
    if (hint !== null) {
      this.hint = null;
      if (pool.free.has(hint) && (exclude === null || !exclude.has(hint.id)) && (regions === null || inFence(hint, regions)) && (avoid === null || !avoid.includes(hint.id))) {
        sets.length = 0;
        return hint;
      }
    }
    if (n > EXACT_LIMIT) {
      const v = this.view;
      v.dservice = pool.dservice;
      v.fallback = pool.latencyKnown > 0 ? pool.latencySum / pool.latencyKnown : 1;
      v.avoid = avoid;
      v.exclude = exclude;
      v.regions = regions;
      const m = regions === null ? pickSampled(pool.free.items, this.random, v) : pickSampledIn(n, this.drawAt, this.random, v);
      v.avoid = null;
      v.exclude = null;
      v.regions = null;
      if (m !== null) {
        sets.length = 0;
        return m;
      }
    }
    // The exact rule over the free set(s). Each miner's candidate view is kept and refreshed in
    // place, and the list reused (pickMiner keeps no reference). A miner under two of a fence's
    // regions (`eu`, `eu-west`) is listed twice, which changes nothing.
    const dservice = pool.dservice;
    const list = this.scratch;
    list.length = 0;
    if (regions === null) this.listCandidates(list, pool.free.items, dservice, exclude);
    else for (const s of sets) this.listCandidates(list, s.items, dservice, exclude);
    sets.length = 0;
    const best = pickMiner(list, avoid);
    list.length = 0;
    return best?.m ?? null;
  }

  private listCandidates(list: PickCandidate[], miners: readonly MinerState[], dservice: string, exclude: Set<string> | null): void {
    for (const m of miners) {
      let c = m.candidates.get(dservice);
      if (c === undefined) m.candidates.set(dservice, (c = { id: m.id, slots: 0, inFlight: 0, latencyMs: null, active: false, m }));
      c.slots = m.dsSlots.get(dservice) ?? m.slots;
      c.inFlight = m.dsInUse.get(dservice) ?? 0;
      c.latencyMs = m.latencyMs;
      c.active = exclude === null || !exclude.has(m.id);
      list.push(c);
    }
  }

  /** Units enter `inFlight` in send order, so the first unacked one is the oldest. */
  private oldestUnacked(m: MinerState): WorkUnit | undefined {
    for (const u of m.inFlight.values()) if (!u.acked) return u;
    return undefined;
  }

  /** Puts the miner in or out of the free index of each of its pools after its slots changed. */
  private refreshFree(m: MinerState): void {
    const open = m.active && !m.draining && m.inFlight.size < m.slots;
    for (const p of m.pools) {
      const free = open && (m.dsInUse.get(p.dservice) ?? 0) < (m.dsSlots.get(p.dservice) ?? m.slots);
      p.free.set(m, free);
      for (const k of m.regionKeys) setIn(p.freeIn, k, m, free, true);
    }
  }

  /** The miner no longer holds the unit: its slot (and its DService's) is free. */
  private release(m: MinerState, unit: WorkUnit): void {
    if (!m.inFlight.delete(unit.id)) return;
    const n = (m.dsInUse.get(unit.dservice) ?? 1) - 1;
    if (n > 0) m.dsInUse.set(unit.dservice, n);
    else m.dsInUse.delete(unit.dservice);
    this.refreshFree(m);
  }

  private dispatch(unit: WorkUnit, m: MinerState, now: number): void {
    unit.state = 'sent';
    unit.minerId = m.id;
    unit.sentAt = now;
    unit.acked = false;
    unit.attempts++;
    if (unit.exclude !== null) unit.exclude.add(m.id);
    m.inFlight.set(unit.id, unit);
    this.unacked.add(m);
    m.dsInUse.set(unit.dservice, (m.dsInUse.get(unit.dservice) ?? 0) + 1);
    this.refreshFree(m);
    const remaining = Math.max(1, Math.ceil(unit.deadline - now));
    this.deps.send(
      m.id,
      frame({ t: 'work', id: unit.id, dservice: unit.dservice, method: unit.method, path: unit.path, headers: unit.headers, body: unit.body, timeoutMs: remaining }),
    );
  }

  /** Hands queued work to the free slots of a miner: oldest live head among its queues first. */
  private fill(m: MinerState): void {
    if (!m.active || m.draining) return;
    while (m.inFlight.size < m.slots) {
      let best: FairQueue<WorkUnit> | null = null;
      let bestHead: WorkUnit | undefined;
      for (const p of m.pools) {
        const name = p.dservice;
        if ((m.dsInUse.get(name) ?? 0) >= (m.dsSlots.get(name) ?? m.slots) || !this.fits(m, name)) continue;
        const q = this.queues.get(p.key);
        if (q === undefined) continue;
        let head = this.liveHead(q);
        if (head !== undefined && !admits(head, m)) {
          // O(queue) to find one it may take; a scan that found none holds until work is added,
          // so free miners outside a waiting fence do not rescan it at every result.
          if (m.barren?.get(p.key) === q.version) head = undefined;
          else if ((head = this.firstAllowed(q, m)) === undefined) (m.barren ??= new Map()).set(p.key, q.version);
        }
        if (head !== undefined && (bestHead === undefined || head.enqueuedAt < bestHead.enqueuedAt)) {
          best = q;
          bestHead = head;
        }
      }
      if (best === null || bestHead === undefined) return;
      if (best.peek() === bestHead) best.shift();
      else best.remove(bestHead);
      const now = this.deps.now();
      bestHead.queuedMs += now - bestHead.enqueuedAt;
      this.dispatch(bestHead, m, now);
    }
  }

  /** Assigns queued units of one queue to free miners. */
  private pump(key: string): void {
    const q = this.queues.get(key);
    if (q === undefined) return;
    for (;;) {
      const head = this.liveHead(q);
      if (head === undefined) return;
      const m = this.pick(key, head.failedOn, head.exclude, head.regions);
      if (m === null) {
        // The head is a replica, or fenced to regions, and no free miner may take it: free miners
        // take what is behind it. Backwards: a miner that fill() takes out of the free set is
        // swapped with one already seen.
        const free = this.pools.get(key)?.free.items;
        if ((head.exclude !== null || head.regions !== null) && free !== undefined) for (let i = free.length - 1; i >= 0; i--) if (free[i] !== undefined) this.fill(free[i]!);
        return;
      }
      q.shift();
      const now = this.deps.now();
      head.queuedMs += now - head.enqueuedAt;
      this.dispatch(head, m, now);
    }
  }

  private requeue(unit: WorkUnit, failedMiner: string, now: number): void {
    (unit.failedOn ??= []).push(failedMiner);
    unit.minerId = null;
    if (unit.attempts >= this.options.maxAttempts) {
      this.counters.failed++;
      this.finish(unit, {
        kind: 'error',
        error: new CgnError('miner_failed', `the work failed on ${unit.attempts} miners; giving up`, { details: { attempts: unit.attempts } }),
      });
      return;
    }
    this.counters.requeued++;
    unit.state = 'queued';
    unit.enqueuedAt = now;
    this.queueFor(queueKey(unit.dservice, unit.tier)).unshift(unit);
  }

  private expire(unit: WorkUnit): void {
    unit.timer = null;
    if (unit.state === 'done') return;
    this.counters.deadlineExceeded++;
    this.abandon(
      unit,
      new CgnError('deadline_exceeded', `no result within the deadline of ${unit.timeoutMs} ms`, {
        retryable: true,
        details: { timeoutMs: unit.timeoutMs, attempts: unit.attempts },
      }),
    );
  }

  /** Ends a unit that did not get its result (deadline, cancel); frees the miner's slot. */
  private abandon(unit: WorkUnit, error: CgnError): void {
    const m = unit.minerId === null ? undefined : this.miners.get(unit.minerId);
    if (unit.state === 'sent' && m !== undefined) {
      this.release(m, unit);
      this.deps.send(m.id, frame({ t: 'cancel', id: unit.id }));
    }
    this.finish(unit, { kind: 'error', error });
    if (m !== undefined) this.fill(m);
  }

  private finish(unit: WorkUnit, outcome: WorkOutcome): void {
    if (unit.state === 'done') return;
    if (unit.state === 'queued') unit.queuedMs += this.deps.now() - unit.enqueuedAt;
    unit.state = 'done';
    if (unit.timer !== null) {
      this.clearTimer(unit.timer);
      unit.timer = null;
    }
    this.units.delete(unit.id);
    const tally = unit.held;
    if (tally !== null) {
      unit.held = null;
      if (unit.regions === null) tally.anywhere--;
      else {
        const n = (tally.fences.get(unit.regions) ?? 1) - 1;
        if (n > 0) tally.fences.set(unit.regions, n);
        else tally.fences.delete(unit.regions);
      }
    }
    unit.onDone(outcome);
  }

  /** Counts a unit the broker now holds under its queue's fences (see `fencesWaiting`). */
  private hold(unit: WorkUnit, key: string): void {
    const last = this.lastHeld;
    let tally = last.key === key ? last.tally : this.heldBy.get(key);
    if (tally === undefined || tally === null) this.heldBy.set(key, (tally = { anywhere: 0, fences: new Map() }));
    last.key = key;
    last.tally = tally;
    if (unit.regions === null) tally.anywhere++;
    else tally.fences.set(unit.regions, (tally.fences.get(unit.regions) ?? 0) + 1);
    unit.held = tally;
  }

  private fits(m: MinerState, dservice: string): boolean {
    return this.deps.memoryOf === undefined || m.memoryMb >= this.deps.memoryOf(dservice);
  }

  private leavePools(m: MinerState): void {
    for (const p of m.pools) {
      p.members.delete(m);
      p.free.delete(m);
      for (const k of m.regionKeys) {
        setIn(p.freeIn, k, m, false, true);
        setIn(p.membersIn, k, m, false);
        if (!p.membersIn.has(k)) p.freeIn.delete(k);
      }
      if (m.latencyMs !== null) {
        p.latencySum -= m.latencyMs;
        if (--p.latencyKnown === 0) p.latencySum = 0;
      }
      if (p.members.size === 0 && this.pools.get(p.key) === p) this.pools.delete(p.key);
    }
    m.pools.length = 0;
  }
}
