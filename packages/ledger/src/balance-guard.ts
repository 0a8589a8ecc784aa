/**
 * `BalanceGuard`: the node's in-memory prepaid-balance check, so a `402 Payment Required` is
 * decided without a database query per request.
 *
 * It holds, per account, the available balance read from the store (deposited - spent) at the
 * last refresh, minus what this process settled since, minus what is reserved by requests in
 * flight. Hot path, all synchronous and O(1):
 *
 * ```ts
 * const guard = await BalanceGuard.load(store);      // reads balances + the open cycle's rate
 * guard.start();                                     // refresh every 2 s (deposits, other nodes)
 * const r = guard.reserve(account, maxPriceMicros);  // before running the work
 * if (!r.ok) return reply402(r);                     // insufficient
 * ... run; on failure before charging: guard.release(r.reservation)
 * await writer.record({ ...tx, pricing });           // committed (store adds to `spent`)
 * guard.settle(r.reservation, pricing.priceMicros);  // after the commit: reservation -> spent
 * ```
 *
 * Rounding: reservations convert fiat to tokens rounding up, settlements round down like the
 * store does, at the rate of the cycle open at the last refresh.
 *
 * Consistency: the store stays the truth; the guard only decides admission. A refresh replaces
 * the stored part; settlements that land while an asynchronous (PostgreSQL) refresh is in flight
 * are counted again until the next refresh, so the guard errs on the side of refusing. Work is
 * never refused after it ran: a settlement above the reservation still counts in full and may
 * drive the balance below zero, which refuses the account's next requests.
 */
import type { TokenRate } from './pricing/price.js';
import { toTokens, toTokensCeil } from './pricing/price.js';
import type { BillingLedgerStore } from './store.js';

export interface Reservation {
  readonly account: string;
  /** Tokens held. */
  readonly tokens: bigint;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation }
  /** Answer 402: `available` tokens (after other reservations) do not cover `needed`. */
  | { ok: false; reason: 'insufficient'; account: string; available: bigint; needed: bigint };

interface AccountState {
  base: bigint;
  settled: bigint;
  reserved: bigint;
}

export interface BalanceGuardOptions {
  /** Refresh period for `start()`, ms. Default 2000. */
  refreshMs?: number;
}

export class BalanceGuard {
  private readonly accounts = new Map<string, AccountState>();
  private readonly live = new WeakSet<Reservation>();
  private rate: TokenRate = { num: 1n, den: 1n };
  private timer: ReturnType<typeof setInterval> | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly refreshMs: number;

  constructor(
    private readonly store: BillingLedgerStore,
    options: BalanceGuardOptions = {},
  ) {
    this.refreshMs = options.refreshMs ?? 2000;
  }

  /** A guard with the store's balances and rate loaded. */
  static async load(store: BillingLedgerStore, options: BalanceGuardOptions = {}): Promise<BalanceGuard> {
    const g = new BalanceGuard(store, options);
    await g.refresh();
    return g;
  }

  /** Holds `ceil(maxPriceMicros * rate)` tokens of the account if its balance covers them. */
  reserve(account: string, maxPriceMicros: bigint): ReserveResult {
    const needed = toTokensCeil(maxPriceMicros, this.rate);
    const s = this.state(account);
    const available = s.base - s.settled - s.reserved;
    if (available < needed) return { ok: false, reason: 'insufficient', account, available, needed };
    s.reserved += needed;
    const reservation: Reservation = Object.freeze({ account, tokens: needed });
    this.live.add(reservation);
    return { ok: true, reservation };
  }

  /**
   * The work was recorded at `actualPriceMicros`: drops the hold and counts the charge
   * (`floor(actual * rate)` tokens, as the store charged). Returns the tokens charged. A
   * reservation settles or releases once; later calls do nothing and return 0n.
   */
  settle(reservation: Reservation, actualPriceMicros: bigint): bigint {
    if (!this.live.delete(reservation)) return 0n;
    const s = this.state(reservation.account);
    s.reserved -= reservation.tokens;
    const charged = toTokens(actualPriceMicros, this.rate);
    s.settled += charged;
    return charged;
  }

  /** The work will not be charged (failed, refused, replayed): drops the hold. */
  release(reservation: Reservation): void {
    if (!this.live.delete(reservation)) return;
    this.state(reservation.account).reserved -= reservation.tokens;
  }

  /** Tokens the account could reserve now. */
  available(account: string): bigint {
    const s = this.accounts.get(account);
    return s === undefined ? 0n : s.base - s.settled - s.reserved;
  }

  /** The rate reservations and settlements use (the open cycle's, at the last refresh). */
  get tokenRate(): TokenRate {
    return this.rate;
  }

  /** Reloads balances (deposits, other nodes' spending) and the open cycle's rate from the store. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const before = new Map([...this.accounts].map(([a, s]) => [a, s.settled]));
        const [balances, cycle] = [await this.store.balances(), await this.store.currentCycle()];
        this.rate = cycle.rate;
        const seen = new Set<string>();
        for (const b of balances) {
          seen.add(b.account);
          const s = this.state(b.account);
          s.base = b.available;
          s.settled -= before.get(b.account) ?? 0n;
        }
        for (const [account, s] of this.accounts) {
          if (seen.has(account)) continue;
          s.base = 0n;
          s.settled -= before.get(account) ?? 0n;
        }
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** Refreshes every `refreshMs` (timer does not keep the process alive). */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      this.refresh().catch(() => {});
    }, this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private state(account: string): AccountState {
    let s = this.accounts.get(account);
    if (s === undefined) this.accounts.set(account, (s = { base: 0n, settled: 0n, reserved: 0n }));
    return s;
  }
}
