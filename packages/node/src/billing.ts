/**
 * What the node charges and how it protects the ledger on the request path:
 *
 * - the price of a work unit: the DService's schedule (per request, per CPU-second, per MB in
 *   and out; fiat micro-units) applied to the miner's metering, split by the agreement among
 *   miner, developer, operator and charity (the ledger converts to tokens and splits exactly);
 * - admission: with `enforceBalance`, a reservation of the most the unit could cost is taken from
 *   the account's prepaid balance in memory (`BalanceGuard`); no cover -> 402;
 * - `Idempotency-Key`: a repeated request within 24 h gets the stored response, not a second run
 *   or charge; the same key with a different request is refused.
 */
import {
  BalanceGuard, DEFAULT_SPLIT, IdempotencyGate, PriceBook, maxPriceOf, priceOf,
  type BillingLedgerStore, type PriceSchedule, type Pricing, type SplitBps,
} from '@cgn/ledger';
import { TIERS, type DServiceDescriptor, type LinkPrice, type LinkPriceSchedule, type Tier } from '@cgn/protocol';

export interface BillingOptions {
  /** Default price of every DService and tier (fiat micro-units). Default 100 / request, 1000 / CPU-s, 10 / MB. */
  price: { perRequest: number; perCpuSecond: number; perMb: number };
  /** Refuse work with 402 when the account's prepaid balance cannot cover it. Default false. */
  enforceBalance: boolean;
  /** The agreement's split in basis points (sum 10,000). */
  split: SplitBps;
  /** Beneficiary ids of the node operator and the charity. */
  operator: string;
  charity: string;
}

export const BILLING_DEFAULTS: BillingOptions = {
  price: { perRequest: 100, perCpuSecond: 1000, perMb: 10 },
  enforceBalance: false,
  split: DEFAULT_SPLIT,
  operator: 'operator:node-local-1',
  charity: 'charity:cgn',
};

function defaultBook(options: BillingOptions): PriceBook {
  const p = options.price;
  return new PriceBook({ perRequest: BigInt(p.perRequest), perCpuSecond: BigInt(p.perCpuSecond), perMb: BigInt(p.perMb) });
}

function schedule(s: LinkPriceSchedule): PriceSchedule {
  return { perRequest: BigInt(s.perRequestMicros), perCpuSecond: BigInt(s.perCpuSecondMicros), perMb: BigInt(s.perMbMicros) };
}

export class NodeBilling {
  /** Replaced whole when central's approved prices change, so a request sees one consistent book. */
  prices: PriceBook;
  readonly idempotency: IdempotencyGate;

  private constructor(
    readonly options: BillingOptions,
    readonly guard: BalanceGuard | null,
    store: BillingLedgerStore,
  ) {
    this.prices = defaultBook(options);
    this.idempotency = new IdempotencyGate(store);
  }

  static async open(store: BillingLedgerStore, options: BillingOptions): Promise<NodeBilling> {
    const guard = options.enforceBalance ? await BalanceGuard.load(store) : null;
    guard?.start();
    return new NodeBilling(options, guard, store);
  }

  /**
   * Prices every DService in `approved` that has prices at central with them (per tier, else its
   * base schedule); every other DService keeps this node's default.
   */
  applyApproved(approved: readonly { name: string; price: LinkPrice | null }[]): void {
    const book = defaultBook(this.options);
    for (const d of approved) {
      if (d.price === null) continue;
      for (const tier of TIERS) book.set(d.name, tier, schedule(d.price.tiers?.[tier] ?? d.price));
    }
    this.prices = book;
  }

  schedule(dservice: string, tier: Tier): PriceSchedule {
    return this.prices.get(dservice, tier)!;
  }

  /** The most a unit can cost: its body, the DService's largest answer and its whole deadline of CPU. */
  maxPrice(d: DServiceDescriptor, tier: Tier, bytesIn: number, timeoutMs: number): bigint {
    return maxPriceOf(this.schedule(d.name, tier), bytesIn, timeoutMs * 1000 * d.resources.cpus, d.maxBodyBytes);
  }

  pricing(d: DServiceDescriptor, tier: Tier, usage: { cpuUs: number; bytesIn: number; bytesOut: number }): Pricing {
    return {
      priceMicros: priceOf(this.schedule(d.name, tier), usage),
      split: this.options.split,
      developer: d.developer,
      operator: this.options.operator,
      charity: this.options.charity,
    };
  }

  stop(): void {
    this.guard?.stop();
  }
}
