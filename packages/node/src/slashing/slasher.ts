/**
 * The slasher: sends `Staking.slash(cheater, evidenceHash)` for each stored evidence, one at a
 * time (one signing key, no nonce races), with retries.
 *
 * Idempotent: before every attempt it asks the chain whether the evidence hash is already used
 * (`evidenceUsed`), so evidence is never slashed twice, across retries and restarts alike (the
 * contract refuses a second use anyway). Transient failures (RPC down, timeouts) back off
 * exponentially and go on until the slasher stops; on the next start the store still lists the
 * evidence as pending. Permanent refusals (no SLASHER_ROLE) and "nothing left to slash" are
 * recorded as outcomes and logged.
 */
import { parseEventLogs, type Address, type Hash } from 'viem';
import { revertReason, stakingAbi, type CgnContracts } from '@cgn/chain';
import type { Logger } from '../log.js';
import type { Evidence, EvidenceStore, SlashOutcome } from './evidence.js';

export interface SlasherOptions {
  /** First retry delay, ms (default 500), doubled per failure up to `maxBackoffMs` (default 30 s). */
  backoffMs: number;
  maxBackoffMs: number;
}

export class Slasher {
  private readonly queue: Hash[] = [];
  private running: Promise<void> | null = null;
  private readonly abort = new AbortController();
  readonly counters = { slashed: 0, alreadySlashed: 0, refused: 0, retries: 0 };

  constructor(
    private readonly contracts: CgnContracts,
    private readonly store: EvidenceStore,
    private readonly log: Logger,
    private readonly options: SlasherOptions = { backoffMs: 500, maxBackoffMs: 30_000 },
  ) {}

  /** Queues evidence already in the store (call after `store.add`, and once at start for `store.pending()`). */
  enqueue(hash: Hash): void {
    if (this.abort.signal.aborted || this.queue.includes(hash) || this.store.outcome(hash) !== undefined) return;
    this.queue.push(hash);
    this.running ??= this.drain().finally(() => (this.running = null));
  }

  /** Resolves when every queued evidence has an outcome (or the slasher was stopped). */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error('slasher stopped'));
    await this.running?.catch(() => undefined);
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.abort.signal.aborted) {
      const hash = this.queue[0]!;
      const e = this.store.get(hash);
      if (e !== undefined && this.store.outcome(hash) === undefined) {
        const outcome = await this.slashWithRetries(e);
        if (outcome === null) return; // stopped
        this.store.setOutcome(hash, outcome);
      }
      this.queue.shift();
    }
  }

  private async slashWithRetries(e: Evidence): Promise<SlashOutcome | null> {
    const staker = e.record.cheater.address;
    if (staker === null) {
      this.log.warn({ evidence: e.hash, miner: e.record.cheater.minerId.slice(0, 16) }, 'proven cheater has no staking address: banned at this node, nothing to slash');
      return { status: 'no-stake' };
    }
    let backoff = this.options.backoffMs;
    for (let attempt = 1; ; attempt++) {
      if (this.abort.signal.aborted) return null;
      try {
        return await this.slashOnce(staker, e.hash, e.record.workId);
      } catch (err) {
        if (this.abort.signal.aborted) return null;
        this.counters.retries++;
        this.log.warn({ evidence: e.hash, staker, attempt, err: (err as Error).message.split('\n')[0], retryInMs: backoff }, 'slash failed; retrying');
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, backoff);
          this.abort.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
      }
    }
  }

  /** One attempt. Throws on transient failures; returns the outcome otherwise. */
  private async slashOnce(staker: Address, hash: Hash, workId: string): Promise<SlashOutcome> {
    const { staking } = this.contracts.addresses;
    const pub = this.contracts.clients.public;
    if (await pub.readContract({ address: staking, abi: stakingAbi, functionName: 'evidenceUsed', args: [hash] })) {
      this.counters.alreadySlashed++;
      this.log.info({ evidence: hash, staker }, 'evidence already used on chain; not slashing again');
      return { status: 'already-slashed' };
    }
    let tx;
    try {
      tx = await this.contracts.slash(staker, hash);
    } catch (err) {
      const reason = revertReason(err);
      if (reason === 'EvidenceUsed') {
        this.counters.alreadySlashed++;
        return { status: 'already-slashed' };
      }
      if (reason === 'NothingToSlash') {
        this.log.info({ evidence: hash, staker }, 'staker already slashed to zero and banned; nothing to slash');
        return { status: 'nothing-to-slash' };
      }
      if (reason !== undefined) {
        this.counters.refused++;
        this.log.error({ evidence: hash, staker, reason }, 'the staking contract refused the slash (does the node key hold SLASHER_ROLE?)');
        return { status: 'refused', reason };
      }
      throw err;
    }
    const receipt = await pub.getTransactionReceipt({ hash: tx.hash });
    const [ev] = parseEventLogs({ abi: stakingAbi, logs: receipt.logs, eventName: 'Slashed' });
    const amount = ev?.args.amount ?? 0n;
    this.counters.slashed++;
    this.log.warn({ evidence: hash, staker, work: workId, tx: tx.hash, amount: amount.toString(), gasUsed: tx.gasUsed.toString() }, 'slashed a proven cheater on chain');
    return { status: 'slashed', tx: tx.hash, block: tx.blockNumber.toString(), gasUsed: tx.gasUsed.toString(), amount: amount.toString() };
  }
}
