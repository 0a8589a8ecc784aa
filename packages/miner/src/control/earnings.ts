/**
 * What the chain says about the miner's payout address, for the control app: its tokens, its
 * stake (and whether it is banned), and its claims per billing cycle (what it was paid). Read
 * with `@cgn/chain`'s wallet view when the miner was given a chain RPC and the contracts file
 * (`--chain-rpc`, `--contracts`); loaded only then, so a miner without a chain never loads viem.
 *
 * Reads run in the background at most every `refreshMs`; the app shows the last answer and when
 * it was read, or why there is none.
 */
import { baseUnitsAsCgn } from '@cgn/protocol';
import type { CgnContracts } from '@cgn/chain';

export interface ChainConfig {
  rpcUrl: string;
  /** The contracts file a deployment wrote (`cgn dev`: .cgn/contracts.json). */
  contractsFile: string;
}

export interface ChainFigures {
  known: true;
  /** Block the figures were read at, and when (ms since the epoch). */
  asOfBlock: string;
  readAt: number;
  /** Amounts in CGN, as decimal text. */
  tokens: string;
  stake: string;
  unbonding: string;
  banned: boolean;
  openTierEligible: boolean;
  claimedTotal: string;
  slashedTotal: string;
  /** Claims per cycle, newest first. */
  perCycle: { cycleId: string; amount: string; txHash: string }[];
}

export type ChainView = ChainFigures | { known: false; reason: string };

export const NO_CHAIN = 'unknown: no chain configured (start the miner with --chain-rpc URL --contracts FILE)';

export interface ChainEarningsOptions {
  chain: ChainConfig | null;
  /** The payout address; without one there is nothing to read. */
  address: string | null;
  /** Default 15 s. */
  refreshMs?: number;
  now?: () => number;
}

const RETRY_MS = 3000;

export class ChainEarnings {
  private view: ChainView;
  private lastTry = -Infinity;
  private inFlight: Promise<void> | null = null;
  private readonly refreshMs: number;
  private readonly now: () => number;
  private contracts: Promise<CgnContracts> | null = null;

  constructor(private readonly o: ChainEarningsOptions) {
    this.refreshMs = o.refreshMs ?? 15_000;
    this.now = o.now ?? Date.now;
    this.view = o.chain === null
      ? { known: false, reason: NO_CHAIN }
      : o.address === null
        ? { known: false, reason: 'unknown: the miner has no payout address (--payout-address), so nothing is paid on chain yet' }
        : { known: false, reason: 'reading the chain…' };
  }

  current(): ChainView {
    return this.view;
  }

  /** Starts a read if the last is older than refreshMs (never two at once). */
  poke(): void {
    if (this.o.chain === null || this.o.address === null || this.inFlight !== null) return;
    if (this.now() - this.lastTry < this.refreshMs) return;
    this.lastTry = this.now();
    this.inFlight = this.read(this.o.chain, this.o.address).finally(() => (this.inFlight = null));
  }

  /** Reads now; resolves when done (tests, and the first read). */
  async refresh(): Promise<ChainView> {
    if (this.inFlight !== null) await this.inFlight;
    this.lastTry = -Infinity;
    this.poke();
    if (this.inFlight !== null) await this.inFlight;
    return this.view;
  }

  private async read(cfg: ChainConfig, address: string): Promise<void> {
    try {
      const chain = await import('@cgn/chain');
      this.contracts ??= chain.openContracts({ rpcUrl: cfg.rpcUrl, contractsFile: cfg.contractsFile });
      const contracts = await this.contracts.catch((err: unknown) => {
        this.contracts = null;
        throw err;
      });
      const v = await chain.walletView(contracts.clients.public, contracts.addresses, address as `0x${string}`);
      this.view = {
        known: true,
        asOfBlock: v.asOf.toString(),
        readAt: this.now(),
        tokens: baseUnitsAsCgn(v.balances.tokens),
        stake: baseUnitsAsCgn(v.balances.stake),
        unbonding: baseUnitsAsCgn(v.balances.unbonding),
        banned: v.balances.banned,
        openTierEligible: v.balances.openTierEligible,
        claimedTotal: baseUnitsAsCgn(v.totals.claimed),
        slashedTotal: baseUnitsAsCgn(v.totals.slashed),
        perCycle: [...v.claims].reverse().slice(0, 50).map((c) => ({ cycleId: c.cycleId.toString(), amount: baseUnitsAsCgn(c.amount), txHash: c.txHash })),
      };
    } catch (err) {
      const msg = (err as Error).message.split('\n')[0]!.slice(0, 300);
      // A failed read is tried again soon, not a whole refresh interval later.
      this.lastTry = this.now() - this.refreshMs + Math.min(this.refreshMs, RETRY_MS);
      // Keep showing the last figures read, saying they are stale, rather than nothing.
      this.view = this.view.known ? this.view : { known: false, reason: `unknown: cannot read the chain at ${cfg.rpcUrl} (${msg})` };
    }
  }
}

/**
 * A node's `earnings` notice ("billing cycle N closed: this miner is paid X CGN (B base units) to
 * 0x…"): its cycle and amount, or null for any other text. The amount is formatCgn's base units.
 */
export function parseEarnedNotice(message: string): { cycleId: string; baseUnits: bigint } | null {
  const m = /^billing cycle (\d{1,18}) closed: this miner is paid [^(]*\((\d{1,78}) base units\)/.exec(message);
  return m === null ? null : { cycleId: m[1]!, baseUnits: BigInt(m[2]!) };
}

/**
 * What is earned and not claimed yet: the cycles the node said pay this miner, less those the
 * chain shows claimed. Known only with both (and only for the cycles announced since this
 * process started).
 */
export function unclaimedText(earned: ReadonlyMap<string, bigint>, chain: ChainView, chainConfigured: boolean): string {
  if (!chainConfigured) return NO_CHAIN;
  if (!chain.known) return chain.reason;
  const claimed = new Set(chain.perCycle.map((c) => c.cycleId));
  let sum = 0n;
  let cycles = 0;
  for (const [cycle, base] of earned) {
    if (claimed.has(cycle)) continue;
    sum += base;
    cycles++;
  }
  if (earned.size === 0) return 'none announced yet: the node tells the miner what each closed billing cycle pays it';
  return `${baseUnitsAsCgn(sum)} CGN in ${cycles} cycle${cycles === 1 ? '' : 's'} (of those the node announced since this miner started; claim with cgn wallet claim)`;
}
