/**
 * Tells miners, over their tunnel, when a billing cycle closed with earnings held for them (they
 * gave no payout address): the miner prints it on its own console, so no one earns for nothing
 * without knowing. Cycles are closed by whoever runs the schedule (`cgn settle`, `cgn ledger
 * close-cycle`), often another process on the same ledger, so the node watches the ledger for
 * newly sealed cycles instead of being told.
 *
 * `heldNotices` is the rule (pure); `PayoutNotifier` the timer and the I/O around it.
 */
import { formatCgn } from '@cgn/protocol';
import type { BillingLedgerStore, Credit, HeldCredit } from '@cgn/ledger';

export interface PayoutNotice {
  minerId: string;
  kind: 'earnings_held' | 'earnings';
  message: string;
}

/**
 * One notice per connected miner paid in `cycle` (it has a payout address): what it is paid and
 * where. The miner prints it, and its control app keeps it as its earnings per cycle (it reads the
 * amount back from formatCgn's "(N base units)").
 */
export function earnedNotices(cycle: number, credits: readonly Credit[], connected: (minerId: string) => boolean): PayoutNotice[] {
  const out: PayoutNotice[] = [];
  for (const c of credits) {
    if (c.role !== 'miner' || !connected(c.beneficiary)) continue;
    const paid = c.tokens - c.held + c.released;
    if (paid <= 0n) continue;
    out.push({
      minerId: c.beneficiary,
      kind: 'earnings',
      message:
        `billing cycle ${cycle} closed: this miner is paid ${formatCgn(paid)} to ${c.address}` +
        `${c.released > 0n ? ` (${formatCgn(c.released)} of it held from earlier cycles)` : ''}; ` +
        'claimable once the cycle is anchored (cgn wallet claim)',
    });
  }
  return out;
}

/**
 * One notice per connected miner that earned in `cycle` and had no address: what it earned there
 * and what is held for it in all.
 */
export function heldNotices(cycle: number, credits: readonly Credit[], pending: readonly HeldCredit[], connected: (minerId: string) => boolean): PayoutNotice[] {
  const out: PayoutNotice[] = [];
  for (const c of credits) {
    if (c.role !== 'miner' || c.held <= 0n || !connected(c.beneficiary)) continue;
    const total = pending.filter((h) => h.role === 'miner' && h.beneficiary === c.beneficiary).reduce((a, h) => a + h.tokens, 0n);
    out.push({
      minerId: c.beneficiary,
      kind: 'earnings_held',
      message:
        `billing cycle ${cycle} closed: this miner earned ${formatCgn(c.held)}, held because it has no payout address ` +
        `(${formatCgn(total > c.held ? total : c.held)} held for it in all). Restart it with --payout-address 0xYOURADDRESS ` +
        '(or --payout-address new) and what is held is paid in the next cycle.',
    });
  }
  return out;
}

export interface PayoutNotifierOptions {
  store: Pick<BillingLedgerStore, 'cycles' | 'credits' | 'heldCredits'>;
  send: (notice: PayoutNotice) => void;
  connected: (minerId: string) => boolean;
  /** How often the ledger is looked at (default 5 s). */
  intervalMs?: number;
  log?: (msg: string, fields: Record<string, unknown>) => void;
}

export class PayoutNotifier {
  /** The last sealed cycle looked at; cycles sealed before the node started are not announced. */
  private seen: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly opts: PayoutNotifierOptions) {}

  /** Looks for newly sealed cycles and sends their notices; returns how many were sent. */
  async check(): Promise<number> {
    if (this.busy) return 0;
    this.busy = true;
    try {
      const sealed = (await this.opts.store.cycles()).filter((c) => c.sealedAt !== null).map((c) => c.id);
      const last = sealed.length === 0 ? 0 : Math.max(...sealed);
      if (this.seen === null) {
        this.seen = last;
        return 0;
      }
      let sent = 0;
      for (const id of sealed.filter((x) => x > this.seen!).sort((a, b) => a - b)) {
        const credits = await this.opts.store.credits(id);
        for (const n of earnedNotices(id, credits, this.opts.connected)) {
          this.opts.send(n);
          sent++;
        }
        if (!credits.some((c) => c.role === 'miner' && c.held > 0n)) continue;
        const pending = await this.opts.store.heldCredits({ pending: true, role: 'miner' });
        for (const n of heldNotices(id, credits, pending, this.opts.connected)) {
          this.opts.send(n);
          this.opts.log?.('told a miner its earnings are held (no payout address)', { miner: n.minerId.slice(0, 16), cycle: id });
          sent++;
        }
      }
      this.seen = Math.max(this.seen, last);
      return sent;
    } finally {
      this.busy = false;
    }
  }

  start(): void {
    if (this.timer !== null) return;
    const tick = (): void => {
      this.check().catch((err: unknown) => this.opts.log?.('could not look for closed cycles', { err: (err as Error).message }));
    };
    tick();
    this.timer = setInterval(tick, this.opts.intervalMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
