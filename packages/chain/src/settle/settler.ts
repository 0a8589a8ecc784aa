/**
 * The settler: the one process that moves a ledger's money on chain. Each tick, in order:
 *
 * 1. **deposits**: confirmed escrow deposits are credited to the accounts that own the addresses
 *    (`DepositBridge`, exactly once per event);
 * 2. **close**: the open billing cycle is closed when it is `closeEveryMs` old or holds
 *    `closeAtRecords` records (and is not empty); a cycle a crash left unsealed is sealed;
 * 3. **anchor**: every sealed cycle not yet marked anchored is anchored, in id order, one
 *    transaction per cycle (`anchorPending`: retries, and a cycle found already anchored with the
 *    same root is marked done, never sent twice). Each cycle is paid out of the escrow of the
 *    accounts that spent in it (`debits.ts`); one that they cannot cover is held (`Overdrawn`). A failure (chain down, a refusal) leaves the
 *    cycle pending; the next tick tries again;
 * 4. **withdrawals**: withdrawals the ledger debited are posted as allowances for the latest
 *    anchored cycle (`grantWithdrawable`, at most once per address and cycle: a grant found on
 *    chain, or refused as `StaleCycle`, is marked posted, never paid twice);
 * 5. **relay**: beneficiaries of anchored cycles whose address holds no ETH for gas get their
 *    claims submitted for them (`relay.ts`, `claimFor`; a claim already made is skipped), unless
 *    `relay: false`.
 *
 * A step's failure is reported and does not stop the later steps (the ledger keeps closing cycles
 * while the chain is down). One settler per ledger: run it next to the node (`cgn settle`), or
 * one for a PostgreSQL ledger that several node instances share.
 */
import { getAddress, type Address, type Hash } from 'viem';
import { hostname } from 'node:os';
import { closeRequested, closerGone, cycleIsEmpty, describeCloser, processAlive, escrowDebit, payableTokens, releasableTokens, type BillingLedgerStore, type CloserClaim, type CycleSummary, type SourcedRate, type Withdrawal } from '@cgn/ledger';
import { AnchorRefusedError, anchorPending, type AnchorOptions, type AnchorOutcome, type ClosedCycle, type PendingResult } from '../anchor.js';
import { explainChainError } from '../chain-errors.js';
import { revertReason, type CgnContracts } from '../contracts.js';
import type { WatcherStore } from '../watcher.js';
import { allocateDebits, describeShortfall } from './debits.js';
import { DepositBridge } from './deposits.js';
import { ClaimRelay, type RelayOptions, type Relayed } from './relay.js';

export type SettleLog = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface SettlerOptions {
  store: BillingLedgerStore;
  /** Bound to a key holding the settlement contract's ANCHOR_ROLE. */
  contracts: CgnContracts;
  watcherStore: WatcherStore;
  /** Blocks on top of a deposit before it is credited (default 2). */
  confirmations?: number;
  /** Close the open cycle once it is this old (ms) and holds records; null: only when asked. */
  closeEveryMs?: number | null;
  /** Close the open cycle once it holds this many records; null: no threshold. */
  closeAtRecords?: number | null;
  /** Records per sealed batch. */
  batchSize?: number;
  /** Tick period for `start()` (default 2000 ms). */
  intervalMs?: number;
  /** Retries within one tick (default 3 attempts; the next tick retries anyway). */
  anchor?: AnchorOptions;
  log?: SettleLog;
  /** Anchor cycles that closed with no records too (default false: they have nothing to pay or prove). */
  anchorEmpty?: boolean;
  /**
   * The lease this settler holds on closing the ledger's cycles (`CycleCloser`): default
   * "cgn settle", this process, this host. A manual `cgn ledger close-cycle` asks the holder to
   * close, and a second settler on the same ledger leaves closing to the first.
   */
  closer?: Partial<CloserClaim>;
  now?: () => number;
  /** Gasless claims for beneficiaries without ETH (default on, no fee); false turns it off. */
  relay?: RelayOptions | false;
  /**
   * The next cycle's token rate, read each time a cycle closes (`rate-source.ts`: a file, a URL,
   * or a fixed override); recorded on that cycle with its source and time. Absent: the rate carries
   * over. When it fails, the cycle stays open and the close is retried at the next pass.
   */
  rate?: () => Promise<SourcedRate>;
}

export interface Grant {
  address: Address;
  cycle: number;
  amount: bigint;
  /** null when the grant was found already on chain. */
  tx: Hash | null;
  gasUsed?: bigint;
}

export interface TickReport {
  deposits: number;
  closed: CycleSummary | null;
  anchored: AnchorOutcome[];
  granted: Grant[];
  /** Claims submitted for beneficiaries without gas. */
  relayed: Relayed[];
  /** Steps that failed this tick (retried on the next, unless the contract refused them: then held). */
  errors: { step: SettleStep; error: unknown }[];
  /** Steps on hold: the contract refused them, and they wait for an operator (see `Settler.retryHeld`). */
  held: Held[];
}

export type SettleStep = 'deposits' | 'close' | 'anchor' | 'withdrawals' | 'relay';

/** A step the contract refused: retrying would fail the same way until something changes on chain. */
export interface Held {
  step: SettleStep;
  /** The contract's error name (e.g. `Overdrawn`). */
  reason: string;
  message: string;
  since: number;
}

/** A cycle close refused: accounts spent more than they deposited (retried every pass, logged once). */
export class OverdrawnError extends Error {
  constructor(readonly accounts: string) {
    super(`the cycle stays open until these accounts are funded: ${accounts}`);
    this.name = 'OverdrawnError';
  }
}

/** The contract's refusal behind `err`, if it is one (a revert is decided by chain state, not by luck). */
function refusalOf(err: unknown): string | undefined {
  if (err instanceof AnchorRefusedError) return err.reason;
  const cause = (err as { cause?: unknown })?.cause;
  if (cause instanceof AnchorRefusedError) return cause.reason;
  return revertReason(err) ?? (cause === undefined ? undefined : revertReason(cause));
}

const noLog: SettleLog = () => {};

/** What went wrong, as a sentence that says what to do (the contract's error name included). */
function message(err: unknown): string {
  return explainChainError(err).message;
}

export class Settler {
  readonly deposits: DepositBridge;
  private readonly relay: ClaimRelay | null;
  private readonly log: SettleLog;
  private running: Promise<TickReport> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private readonly warnedDerived = new Set<number>();
  private readonly held = new Map<SettleStep, Held>();
  /** The pid of another cycle closer last reported (said once). */
  private closerSaid: number | null = null;
  /** The overdrawn accounts last reported (so a waiting close is logged once, not every pass). */
  private overdrawnSaid: string | null = null;

  constructor(readonly opts: SettlerOptions) {
    this.log = opts.log ?? noLog;
    this.relay = opts.relay === false ? null : new ClaimRelay(opts.store, opts.contracts, opts.relay ?? {});
    this.deposits = new DepositBridge(opts.contracts, {
      store: opts.store,
      watcherStore: opts.watcherStore,
      confirmations: opts.confirmations ?? 2,
      onDeposit: (e, outcome) => {
        const { account, amount } = e.args as { account: Address; amount: bigint };
        if (outcome.status === 'credited') this.log('info', 'deposit credited', { account: outcome.account, address: account, amount: amount.toString(), available: outcome.balance.available.toString(), ref: e.id });
        else if (outcome.status === 'unlinked') this.log('warn', 'deposit for an address no account is linked to: held until it is linked (cgn ledger link-address)', { address: account, amount: amount.toString(), ref: e.id });
        else this.log('info', 'deposit was credited before: replay ignored', { address: account, ref: e.id });
      },
    });
  }

  /** One pass of every step (concurrent calls share one pass). `close: true` closes the open cycle now (if not empty). */
  tick(force: { close?: boolean } = {}): Promise<TickReport> {
    this.running ??= this.tickOnce(force).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Steps on hold because the contract refused them. */
  heldSteps(): Held[] {
    return [...this.held.values()];
  }

  /** An operator fixed the cause (funded the escrow, granted a role): try the held steps again. */
  retryHeld(): Held[] {
    const was = this.heldSteps();
    this.held.clear();
    for (const h of was) this.log('info', `${h.step}: retrying after an operator's go-ahead`, { reason: h.reason });
    return was;
  }

  private async tickOnce(force: { close?: boolean }): Promise<TickReport> {
    const report: TickReport = { deposits: 0, closed: null, anchored: [], granted: [], relayed: [], errors: [], held: [] };
    const step = async (name: SettleStep, fn: () => Promise<void>): Promise<void> => {
      if (this.held.has(name)) return;
      try {
        await fn();
      } catch (error) {
        report.errors.push({ step: name, error });
        if (error instanceof OverdrawnError) return; // said once, where it was found
        const reason = refusalOf(error);
        if (reason === undefined) {
          this.log('error', `${name} failed (retried next tick): ${message(error)}`);
          return;
        }
        // A refusal is not retried: the same transaction would revert the same way, every tick.
        this.held.set(name, { step: name, reason, message: message(error), since: (this.opts.now ?? Date.now)() });
        this.log('error', `${name} is on hold: the contract refused it (${reason}); it is not retried until an operator fixes the cause and sends SIGHUP to cgn settle (or restarts it)`, {
          step: name, reason, detail: message(error),
        });
      }
    };
    await step('deposits', async () => {
      report.deposits = await this.deposits.poll();
    });
    await step('close', async () => {
      report.closed = await this.maybeClose(force.close === true);
    });
    await step('anchor', async () => {
      const { done, failed } = await this.anchor();
      report.anchored = done;
      if (failed) throw new Error(`cycle ${failed.cycleId} is not anchored (it and later cycles stay pending): ${message(failed.error)}`, { cause: failed.error });
    });
    await step('withdrawals', async () => {
      report.granted = await this.postWithdrawals();
    });
    if (this.relay) {
      const relay = this.relay;
      await step('relay', async () => {
        const { relayed, error } = await relay.pass();
        report.relayed = relayed;
        for (const r of relayed) {
          this.log('info', 'claim relayed: the beneficiary has no ETH for gas, its tokens were sent to it', {
            address: r.address, cycles: r.cycles, amount: r.amount.toString(), fee: r.fee.toString(), tx: r.tx, gas: r.gasUsed.toString(),
          });
        }
        if (error !== undefined) throw error;
      });
    }
    report.held = this.heldSteps();
    return report;
  }

  /** Records in the open cycle: all records minus those of closed cycles. */
  private async openRecords(): Promise<number> {
    const cycles = await this.opts.store.cycles();
    const closed = cycles.reduce((n, c) => n + ('records' in c ? c.records : 0), 0);
    return (await this.opts.store.count()) - closed;
  }

  /** The cycle-closer lease this settler claims. */
  private closerClaim(): CloserClaim {
    const every = this.opts.closeEveryMs ?? null;
    return {
      holder: 'cgn settle', pid: process.pid, host: hostname(), everyMs: every,
      ttlMs: Math.max(30_000, 3 * (this.opts.intervalMs ?? 2000)), ...this.opts.closer,
    };
  }

  private async maybeClose(force: boolean): Promise<CycleSummary | null> {
    const { store } = this.opts;
    for (const s of await store.sealPending({ ...(this.opts.batchSize ? { batchSize: this.opts.batchSize } : {}) })) this.log('info', 'sealed a cycle a crash left closed', { cycle: s.id });
    // One schedule closes this ledger's cycles; a manual close-cycle asks it (a close request).
    // A holder of this host that is gone (a settler killed before us) is taken over at once.
    const claim = this.closerClaim();
    const cur = await store.cycleCloser();
    if (cur !== null && closerGone(cur, claim.host, processAlive)) await store.releaseCycleCloser(cur);
    const lease = await store.holdCycleCloser(claim, (this.opts.now ?? Date.now)());
    if (!lease.held) {
      if (this.closerSaid !== lease.closer.pid) this.log('warn', `another schedule closes this ledger's cycles: ${describeCloser(lease.closer, (this.opts.now ?? Date.now)())}; this settler does not close any`);
      this.closerSaid = lease.closer.pid;
      return null;
    }
    this.closerSaid = null;
    if (closeRequested(lease.closer, (await store.currentCycle()).openedAt)) {
      this.log('info', 'closing the open cycle now: cgn ledger close-cycle asked for it');
      force = true;
    }
    const every = this.opts.closeEveryMs ?? null;
    const atRecords = this.opts.closeAtRecords ?? null;
    const byAge = every !== null && (this.opts.now ?? Date.now)() - (await store.currentCycle()).openedAt >= every;
    if (!force && !byAge && atRecords === null) return null;
    const records = await this.openRecords();
    // An open cycle without records still closes when it would pay what was held for beneficiaries who have since given an address.
    if (records === 0 && (await releasableTokens(store)) === 0n) return null;
    if (!(force || byAge || (atRecords !== null && records >= atRecords))) return null;
    // A cycle whose debits an account cannot pay would pay its beneficiaries from other accounts'
    // escrow: it stays open (records keep joining it) until the account is funded.
    const overdrawn = (await store.balances()).filter((b) => b.spent > b.deposited);
    if (overdrawn.length > 0) {
      const list = overdrawn.map((b) => `${b.account} (spent ${b.spent}, deposited ${b.deposited})`).join(', ');
      if (this.overdrawnSaid !== list) {
        this.overdrawnSaid = list;
        this.log('error', `the cycle stays open: ${overdrawn.length === 1 ? 'an account has' : 'accounts have'} spent more than deposited; fund ${overdrawn.length === 1 ? 'it' : 'them'} (cgn wallet deposit) and the cycle closes at the next pass`, {
          accounts: overdrawn.map((b) => ({ account: b.account, spent: b.spent.toString(), deposited: b.deposited.toString() })),
        });
      }
      throw new OverdrawnError(list);
    }
    this.overdrawnSaid = null;
    const next = this.opts.rate === undefined ? null : await this.opts.rate();
    const s = await store.closeCycle({
      ...(this.opts.batchSize ? { batchSize: this.opts.batchSize } : {}),
      ...(next === null ? {} : { nextRate: next.rate, nextRateSource: { source: next.source, fetchedAt: next.fetchedAt } }),
    });
    if (next !== null) this.log('info', 'next cycle rate', { cycle: s.id + 1, rate: `${next.rate.num}/${next.rate.den}`, source: next.source, fetchedAt: next.fetchedAt });
    this.log('info', 'cycle closed', { cycle: s.id, records: s.records, tokens: s.tokens.toString(), batches: s.batches, payoutRoot: s.payoutRoot });
    return s;
  }

  private async anchor(): Promise<PendingResult> {
    const { store, contracts } = this.opts;
    const marked = new Set((await store.anchors()).map((a) => a.cycle));
    // A cycle that closed empty pays nothing and proves nothing: not anchored unless asked (anchorEmpty).
    const sealed = (await store.cycles()).filter((c): c is CycleSummary => c.sealedAt !== null && 'records' in c && !marked.has(c.id) && (!cycleIsEmpty(c) || this.opts.anchorEmpty === true));
    if (sealed.length === 0) return { done: [] };
    const closed: ClosedCycle[] = [];
    let refused: { cycleId: bigint; error: unknown } | undefined;
    const free = await this.freeEscrow();
    const links = new Map<string, string[]>();
    for (const l of await store.links()) links.set(l.account, [...(links.get(l.account) ?? []), l.address]);
    for (const c of sealed) {
      // Held credits stay in their payers' escrow until released, so escrow pays what the tree pays.
      const who = allocateDebits((await store.debits(c.id)).map((d) => ({ account: d.account, tokens: escrowDebit(d) })), (account) => links.get(account) ?? [], free);
      if (!who.ok) {
        // Anchoring it would pay its beneficiaries out of escrow nobody in it deposited.
        refused = { cycleId: BigInt(c.id), error: new AnchorRefusedError(BigInt(c.id), 'Overdrawn', { detail: `${describeShortfall(who.short)}; deposit for them (cgn wallet deposit), then send SIGHUP to cgn settle` }) };
        break;
      }
      closed.push({ cycleId: c.id, payoutRoot: c.payoutRoot, batchRoots: (await store.sealedBatches(c.id)).map((b) => b.root), total: payableTokens(c), debits: who.debits });
      await this.warnHeld(c.id);
    }
    const res = closed.length === 0 ? { done: [] } : await anchorPending(contracts, closed, {
      attempts: 3,
      onRetry: (err, attempt) => this.log('warn', `anchoring: attempt ${attempt} failed, retrying: ${message(err)}`),
      ...this.opts.anchor,
    });
    for (const d of res.done) {
      await store.markAnchored(Number(d.cycleId), d.status === 'anchored' ? d.tx.hash : null);
      if (d.status === 'anchored') this.log('info', 'cycle anchored', { cycle: Number(d.cycleId), tx: d.tx.hash, block: d.tx.blockNumber.toString(), gas: d.tx.gasUsed.toString(), payers: closed.find((c) => BigInt(c.cycleId) === d.cycleId)?.debits.length });
      else this.log('info', 'cycle was already anchored with the same root: marked done', { cycle: Number(d.cycleId) });
    }
    return res.failed || !refused ? res : { done: res.done, failed: refused };
  }

  /**
   * Free escrow per linked address: held on chain, minus promised back (allowance), minus
   * withdrawals the ledger debited that are not posted yet (they will be promised back).
   */
  private async freeEscrow(): Promise<Map<string, bigint>> {
    const { store, contracts } = this.opts;
    const unposted = new Map<string, bigint>();
    for (const w of await store.withdrawals({ pending: true })) unposted.set(w.address, (unposted.get(w.address) ?? 0n) + w.amount);
    const free = new Map<string, bigint>();
    for (const l of await store.links()) {
      const a = getAddress(l.address);
      const [escrow, promised] = await Promise.all([contracts.escrowOf(a), contracts.withdrawableOf(a)]);
      free.set(l.address, escrow - promised - (unposted.get(l.address) ?? 0n));
    }
    return free;
  }

  /** Credits of beneficiaries without an address are held (paid once they register one): say so, once per cycle. */
  private async warnHeld(cycle: number): Promise<void> {
    if (this.warnedDerived.has(cycle)) return;
    this.warnedDerived.add(cycle);
    const held = (await this.opts.store.credits(cycle)).filter((c) => c.held > 0n);
    if (held.length > 0) {
      this.log('warn', 'some beneficiaries have no payout address: their credits are held (not lost) and paid in the first cycle after they register one (miner --payout-address, cgn account payout-address, node --operator-address/--charity-address/--developer-address, cgn ledger register-address)', {
        cycle,
        beneficiaries: held.map((c) => `${c.role}:${c.beneficiary}`),
        tokens: held.reduce((a, c) => a + c.held, 0n).toString(),
      });
    }
  }

  private async postWithdrawals(): Promise<Grant[]> {
    const { store, contracts } = this.opts;
    const pending = await store.withdrawals({ pending: true });
    if (pending.length === 0) return [];
    const anchors = await store.anchors();
    const latest = anchors.length === 0 ? null : Math.max(...anchors.map((a) => a.cycle));
    // New requests join the latest anchored cycle, for addresses with nothing assigned and unposted
    // and no grant for that cycle on chain yet (one grant per address and cycle).
    if (latest !== null) {
      const busy = new Set(pending.filter((w) => w.cycle !== null).map((w) => w.address));
      const fresh = new Map<string, Withdrawal[]>();
      for (const w of pending) if (w.cycle === null && !busy.has(w.address)) fresh.set(w.address, [...(fresh.get(w.address) ?? []), w]);
      for (const [address, ws] of fresh) {
        const last = await contracts.withdrawableCycleOf(address as Address);
        if (last >= BigInt(latest)) {
          this.log('debug', 'withdrawal waits for the next anchored cycle', { address, cycle: latest });
          continue;
        }
        await store.assignWithdrawals(ws.map((w) => w.id), latest);
        for (const w of ws) w.cycle = latest;
      }
    }
    const groups = new Map<string, Withdrawal[]>();
    for (const w of pending) if (w.cycle !== null) groups.set(`${w.address}\u0000${w.cycle}`, [...(groups.get(`${w.address}\u0000${w.cycle}`) ?? []), w]);
    const granted: Grant[] = [];
    const ordered = [...groups.values()].sort((a, b) => a[0]!.cycle! - b[0]!.cycle!);
    for (const ws of ordered) {
      const address = getAddress(ws[0]!.address);
      const cycle = ws[0]!.cycle!;
      const amount = ws.reduce((a, w) => a + w.amount, 0n);
      const ids = ws.map((w) => w.id);
      let grant: Grant;
      if ((await contracts.withdrawableCycleOf(address)) >= BigInt(cycle)) {
        grant = { address, cycle, amount, tx: null };
      } else {
        try {
          const tx = await contracts.grantWithdrawable(address, cycle, amount);
          grant = { address, cycle, amount, tx: tx.hash, gasUsed: tx.gasUsed };
        } catch (err) {
          if (revertReason(err) !== 'StaleCycle') throw err;
          grant = { address, cycle, amount, tx: null }; // an earlier send landed meanwhile
        }
      }
      await store.markWithdrawalsPosted(ids, grant.tx);
      this.log('info', grant.tx ? 'withdrawal posted: the address may withdraw it now' : 'withdrawal was already posted on chain: marked done', {
        address, cycle, amount: amount.toString(), accounts: [...new Set(ws.map((w) => w.account))], ...(grant.tx ? { tx: grant.tx } : {}),
      });
      granted.push(grant);
    }
    return granted;
  }

  /** Ticks every `intervalMs` until `stop()`. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const loop = async (): Promise<void> => {
      await this.tick().catch((err: unknown) => this.log('error', `tick failed: ${message(err)}`));
      if (!this.stopped) this.timer = setTimeout(() => void loop(), this.opts.intervalMs ?? 2000);
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running) await this.running.catch(() => undefined);
    // A manual close-cycle may close cycles itself again.
    await Promise.resolve(this.opts.store.releaseCycleCloser(this.closerClaim())).catch(() => undefined);
  }
}
