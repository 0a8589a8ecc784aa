/**
 * The epoch scheduler: once per epoch, bring each validator candidate's service level on chain up
 * to date (ORACLE_ROLE, `setServiceLevel`) and draw the epoch's validator set (ELECTOR_ROLE,
 * `electEpoch(epoch, seed)`), the seed derived from a block hash.
 *
 * * Epochs are numbered from 1 on a clock: `blocks` (epoch = 1 + (block - origin) / length, the
 *   chain's own clock) or `seconds` (epoch = 1 + (now - origin) / length, this host's clock, for
 *   chains that only make blocks on demand, like anvil in automine mode). The origin defaults to
 *   the contracts' deployment block (its timestamp for `seconds`).
 * * Seed: keccak256(abi.encode(blockHash, epoch)). With a `blocks` clock the block is the epoch's
 *   first block, so anyone can recompute the seed; with `seconds` it is the newest block at the
 *   time of election (reported in the outcome). The seed is stored on chain (`seedOf`) either
 *   way. A block hash is only as unbiased as its producer; a beacon or commit-reveal among the
 *   validators is the stronger choice where the operator also produces blocks.
 * * Service levels come from `serviceLevels(epoch)` (address -> basis points; in the network,
 *   the ledger's reputation: `ledgerServiceLevels` + `levelsByAddress` from @cgn/ledger). Only
 *   registered candidates are written, and only when the value on chain differs; a candidate
 *   missing from the map gets 0 (no service, no election), a banned (slashed) one 0.
 * * Idempotent and restart-safe without local state: the chain is the record. An epoch already
 *   elected (by this process before a restart, or by another elector) is left alone; levels
 *   already on chain are not written again. Only the current epoch is elected: epochs missed
 *   while the scheduler was down stay empty, and so does an epoch that began with no eligible
 *   candidate (`start()` tries again at the next epoch; `runOnce()` can be called any time).
 * * Transient chain errors (RPC down, timeouts) are retried with exponential backoff; contract
 *   refusals are permanent (`EpochRefusedError`), as is a missing role (`MissingRoleError`,
 *   checked before any transaction).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { encodeAbiParameters, keccak256, type Address, type Hex } from 'viem';
import { requireWallet } from './clients.js';
import { revertReason, type CgnContracts } from './contracts.js';
import { ROLES } from './deploy.js';
import { stakingAbi, validatorElectionAbi } from './generated/index.js';

export type EpochClock =
  | { unit: 'blocks'; length: bigint | number; origin?: bigint | number }
  | { unit: 'seconds'; length: number; origin?: number };

/** Service levels by address (any case), basis points 0..10,000. */
export type ServiceLevelSource = (epoch: bigint) => Promise<ReadonlyMap<string, number>> | ReadonlyMap<string, number>;

export interface EpochSchedulerOptions {
  /** Bound to a key with ORACLE_ROLE and ELECTOR_ROLE on the election contract. */
  contracts: CgnContracts;
  clock: EpochClock;
  serviceLevels: ServiceLevelSource;
  /** How often `start()` checks for a new epoch (default: a quarter epoch, 250 ms .. 10 s). */
  pollMs?: number;
  /** Attempts per chain step before giving up (default 5). */
  attempts?: number;
  /** First backoff (default 250 ms), doubled per attempt up to `maxBackoffMs` (default 10 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Called after each epoch the loop handled (elected, already elected, no candidates). */
  onEpoch?: (outcome: EpochOutcome) => void;
  /** Called when a tick failed (the loop keeps going). */
  onError?: (err: unknown) => void;
  /** Called before each retry of a transient failure. */
  onRetry?: (err: unknown, attempt: number, step: string) => void;
}

export interface LevelChange {
  candidate: Address;
  from: number;
  to: number;
  gasUsed: bigint;
}

export type EpochOutcome =
  | { status: 'not-started'; epoch: 0n }
  | { status: 'already-elected'; epoch: bigint; validators: readonly Address[] }
  | { status: 'no-candidates'; epoch: bigint; levels: LevelChange[] }
  | {
      status: 'elected';
      epoch: bigint;
      seed: Hex;
      /** The block whose hash made the seed. */
      seedBlock: bigint;
      validators: readonly Address[];
      levels: LevelChange[];
      electGas: bigint;
    };

export class MissingRoleError extends Error {
  constructor(
    readonly account: Address,
    readonly role: 'ORACLE_ROLE' | 'ELECTOR_ROLE',
    readonly election: Address,
  ) {
    super(`${account} lacks ${role} on the election contract ${election}: an admin grants it with grantRole(keccak256("${role}"), ${account})`);
    this.name = 'MissingRoleError';
  }
}

export class EpochRefusedError extends Error {
  constructor(
    readonly epoch: bigint,
    readonly step: string,
    readonly reason: string,
    options?: { cause: unknown },
  ) {
    super(`epoch ${epoch}: ${step} refused by the contract: ${reason}`, options);
    this.name = 'EpochRefusedError';
  }
}

/** The seed of an epoch from a block hash: keccak256(abi.encode(bytes32 blockHash, uint64 epoch)). */
export function epochSeed(blockHash: Hex, epoch: bigint): Hex {
  return keccak256(encodeAbiParameters([{ type: 'bytes32' }, { type: 'uint64' }], [blockHash, epoch]));
}

function clampLevel(v: number | undefined): number {
  if (v === undefined || !Number.isFinite(v)) return 0;
  return Math.min(10_000, Math.max(0, Math.round(v)));
}

export class EpochScheduler {
  private readonly c: CgnContracts;
  private readonly election: { address: Address; abi: typeof validatorElectionAbi };
  private rolesChecked = false;
  /** The last epoch this process handled (memory only: the chain is the record). */
  private handled = 0n;
  private timer: { stop: AbortController; done: Promise<void> } | null = null;
  private origin: { blocks: bigint; seconds: number } | null = null;

  constructor(readonly opts: EpochSchedulerOptions) {
    this.c = opts.contracts;
    this.election = { address: opts.contracts.addresses.election, abi: validatorElectionAbi };
    const len = opts.clock.length;
    if (opts.clock.unit === 'blocks' ? BigInt(len) <= 0n : !(Number(len) > 0)) throw new RangeError(`epoch length must be positive, got ${String(len)}`);
  }

  private async originOf(): Promise<{ blocks: bigint; seconds: number }> {
    if (this.origin) return this.origin;
    const clock = this.opts.clock;
    const blocks = clock.unit === 'blocks' && clock.origin !== undefined ? BigInt(clock.origin) : this.c.addresses.deployBlock;
    let seconds = 0;
    if (clock.unit === 'seconds') {
      seconds = clock.origin ?? Number((await this.c.clients.public.getBlock({ blockNumber: this.c.addresses.deployBlock })).timestamp);
    }
    return (this.origin = { blocks, seconds });
  }

  /** The current epoch (0 before the origin). */
  async currentEpoch(): Promise<bigint> {
    const o = await this.originOf();
    const clock = this.opts.clock;
    if (clock.unit === 'blocks') {
      const b = await this.c.clients.public.getBlockNumber({ cacheTime: 0 });
      return b < o.blocks ? 0n : 1n + (b - o.blocks) / BigInt(clock.length);
    }
    const now = Date.now() / 1000;
    return now < o.seconds ? 0n : 1n + BigInt(Math.floor((now - o.seconds) / clock.length));
  }

  private async retry<T>(step: string, epoch: bigint, fn: () => Promise<T>): Promise<T> {
    const attempts = this.opts.attempts ?? 5;
    let backoff = this.opts.backoffMs ?? 250;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof MissingRoleError || err instanceof EpochRefusedError) throw err;
        const reason = revertReason(err);
        if (reason !== undefined) throw new EpochRefusedError(epoch, step, reason, { cause: err });
        if (attempt >= attempts) {
          throw new Error(`epoch ${epoch}: ${step} failed after ${attempts} attempts: ${((err as Error).message ?? String(err)).split('\n')[0]}`, { cause: err });
        }
        this.opts.onRetry?.(err, attempt, step);
        await delay(backoff);
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 10_000);
      }
    }
  }

  private async checkRoles(): Promise<void> {
    if (this.rolesChecked) return;
    const me = requireWallet(this.c.clients).account.address;
    for (const [role, hash] of [['ORACLE_ROLE', ROLES.oracle], ['ELECTOR_ROLE', ROLES.elector]] as const) {
      const has = await this.c.clients.public.readContract({ ...this.election, functionName: 'hasRole', args: [hash, me] });
      if (!has) throw new MissingRoleError(me, role, this.election.address);
    }
    this.rolesChecked = true;
  }

  /**
   * Writes the candidates' service levels for `epoch` where they differ from the chain's: the
   * source's value, 0 for a candidate it does not know or one that is banned.
   */
  async pushServiceLevels(epoch: bigint): Promise<LevelChange[]> {
    await this.retry('checking roles', epoch, () => this.checkRoles());
    const pub = this.c.clients.public;
    const source = await this.opts.serviceLevels(epoch);
    const wanted = new Map<string, number>();
    for (const [a, v] of source) wanted.set(a.toLowerCase(), clampLevel(v));
    const candidates = await this.retry('reading candidates', epoch, () => pub.readContract({ ...this.election, functionName: 'candidates' }));
    const changes: LevelChange[] = [];
    for (const cand of candidates) {
      const step = `setServiceLevel(${cand})`;
      const [current, banned] = await this.retry(step, epoch, () =>
        Promise.all([
          pub.readContract({ ...this.election, functionName: 'serviceLevelOf', args: [cand] }),
          pub.readContract({ address: this.c.addresses.staking, abi: stakingAbi, functionName: 'bannedOf', args: [cand] }),
        ]),
      );
      const target = banned ? 0 : (wanted.get(cand.toLowerCase()) ?? 0);
      if (current === target) continue;
      // Re-read before each attempt: a write that landed before a timeout is not written twice.
      const tx = await this.retry(step, epoch, async () => {
        const now = await pub.readContract({ ...this.election, functionName: 'serviceLevelOf', args: [cand] });
        return now === target ? null : this.c.setServiceLevel(cand, target);
      });
      changes.push({ candidate: cand, from: current, to: target, gasUsed: tx?.gasUsed ?? 0n });
    }
    return changes;
  }

  private async seedFor(epoch: bigint): Promise<{ seed: Hex; seedBlock: bigint }> {
    const pub = this.c.clients.public;
    const clock = this.opts.clock;
    const block =
      clock.unit === 'blocks'
        ? await pub.getBlock({ blockNumber: (await this.originOf()).blocks + (epoch - 1n) * BigInt(clock.length) })
        : await pub.getBlock({ blockTag: 'latest' });
    return { seed: epochSeed(block.hash, epoch), seedBlock: block.number };
  }

  /**
   * Handles the current epoch once: nothing when it is already elected, otherwise levels then the
   * election. Safe to call any number of times, from several processes.
   */
  async runOnce(): Promise<EpochOutcome> {
    const epoch = await this.retry('reading the clock', 0n, () => this.currentEpoch());
    if (epoch === 0n) return { status: 'not-started', epoch: 0n };
    const pub = this.c.clients.public;
    const isElected = () => this.retry('reading the election', epoch, () => pub.readContract({ ...this.election, functionName: 'elected', args: [epoch] }));
    const already = async (): Promise<EpochOutcome> => ({
      status: 'already-elected',
      epoch,
      validators: await this.retry('reading the set', epoch, () => this.c.validatorsOf(epoch)),
    });
    if (await isElected()) return already();
    const levels = await this.pushServiceLevels(epoch);
    const { seed, seedBlock } = await this.retry('reading the seed block', epoch, () => this.seedFor(epoch));
    let tx;
    try {
      tx = await this.retry('electEpoch', epoch, async () => ((await isElected()) ? null : this.c.electEpoch(epoch, seed)));
    } catch (err) {
      if (err instanceof EpochRefusedError && err.reason === 'AlreadyElected') return already();
      if (err instanceof EpochRefusedError && err.reason === 'NoEligibleCandidates') return { status: 'no-candidates', epoch, levels };
      throw err;
    }
    if (tx === null) return already();
    const validators = await this.retry('reading the set', epoch, () => this.c.validatorsOf(epoch));
    return { status: 'elected', epoch, seed, seedBlock, validators, levels, electGas: tx.gasUsed };
  }

  /** Checks for a new epoch every `pollMs` until `stop()`. Errors go to `onError`; the loop continues. */
  start(): void {
    if (this.timer) return;
    const stop = new AbortController();
    const clock = this.opts.clock;
    const quarter = clock.unit === 'seconds' ? (clock.length * 1000) / 4 : 1000;
    const pollMs = this.opts.pollMs ?? Math.min(10_000, Math.max(250, quarter));
    const loop = async () => {
      while (!stop.signal.aborted) {
        try {
          const epoch = await this.currentEpoch();
          if (epoch > this.handled) {
            const outcome = await this.runOnce();
            if (outcome.status !== 'not-started') {
              this.handled = outcome.epoch;
              this.opts.onEpoch?.(outcome);
            }
          }
        } catch (err) {
          this.opts.onError?.(err);
        }
        await delay(pollMs, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    };
    this.timer = { stop, done: loop() };
  }

  /** Stops the loop; resolves once the tick in progress (if any) has finished. */
  async stop(): Promise<void> {
    const t = this.timer;
    if (!t) return;
    this.timer = null;
    t.stop.abort();
    await t.done;
  }
}
