/**
 * Follows settlement and staking events (deposits, withdrawals, claims, anchors, stakes, slashes)
 * and calls back once per event.
 *
 * * Confirmations: only blocks at least `confirmations` deep are read, so a shallow reorg never
 *   reaches the callback.
 * * Reorg safety beyond that: the cursor stores the hash of the last processed block; if the chain
 *   no longer has that block, the watcher rewinds `rewindBlocks`, re-reads, and reports `onReorg`.
 * * Idempotent on replay: each event is identified by `txHash:logIndex`; an id in the store is never
 *   delivered again, so restarting from an old cursor (or re-reading after a rewind) does not
 *   double-credit. An id is marked after its callback resolves: a crash in between redelivers that
 *   one event on restart (at-least-once), so the consumer's own write should be keyed by `event.id`
 *   too (the ledger's idempotency) for exactly-once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AbiEvent, Address, Hash, Hex } from 'viem';
import type { CgnContracts } from './contracts.js';
import { settlementAbi, stakingAbi } from './generated/index.js';

export const SETTLEMENT_EVENTS = ['Deposited', 'Withdrawn', 'WithdrawableSet', 'CycleAnchored', 'Claimed'] as const;
export const STAKING_EVENTS = ['Staked', 'UnbondRequested', 'Unbonded', 'Slashed', 'Banned', 'Unbanned'] as const;
export type WatchedEventName = (typeof SETTLEMENT_EVENTS)[number] | (typeof STAKING_EVENTS)[number];

export interface ChainEvent {
  /** `txHash:logIndex`, unique per event on the canonical chain. */
  id: string;
  name: WatchedEventName;
  contract: Address;
  blockNumber: bigint;
  blockHash: Hash;
  txHash: Hash;
  logIndex: number;
  /** Decoded arguments (amounts are bigint, addresses checksummed). */
  args: Record<string, unknown>;
}

export interface WatcherCursor {
  block: bigint;
  hash: Hex;
}

/** Where the watcher keeps its progress. */
export interface WatcherStore {
  getCursor(): Promise<WatcherCursor | null>;
  setCursor(cursor: WatcherCursor): Promise<void>;
  isProcessed(id: string): Promise<boolean>;
  markProcessed(id: string, block: bigint): Promise<void>;
  /** Forgets processed ids of blocks below `block` (never re-read). */
  prune(block: bigint): Promise<void>;
}

export class MemoryWatcherStore implements WatcherStore {
  protected cursor: WatcherCursor | null = null;
  protected readonly processed = new Map<string, bigint>();
  async getCursor(): Promise<WatcherCursor | null> {
    return this.cursor;
  }
  async setCursor(cursor: WatcherCursor): Promise<void> {
    this.cursor = cursor;
  }
  async isProcessed(id: string): Promise<boolean> {
    return this.processed.has(id);
  }
  async markProcessed(id: string, block: bigint): Promise<void> {
    this.processed.set(id, block);
  }
  async prune(block: bigint): Promise<void> {
    for (const [id, b] of this.processed) if (b < block) this.processed.delete(id);
  }
  get size(): number {
    return this.processed.size;
  }
}

/** A JSON file, rewritten atomically (temp file + rename) on every change. */
export class JsonFileWatcherStore extends MemoryWatcherStore {
  constructor(readonly file: string) {
    super();
    let text: string | null = null;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== null) {
      const o = JSON.parse(text) as { cursor: { block: string; hash: Hex } | null; processed: Record<string, string> };
      this.cursor = o.cursor ? { block: BigInt(o.cursor.block), hash: o.cursor.hash } : null;
      for (const [id, b] of Object.entries(o.processed ?? {})) this.processed.set(id, BigInt(b));
    }
  }
  private save(): void {
    const o = {
      cursor: this.cursor ? { block: this.cursor.block.toString(), hash: this.cursor.hash } : null,
      processed: Object.fromEntries([...this.processed].map(([id, b]) => [id, b.toString()])),
    };
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(o));
    fs.renameSync(tmp, this.file);
  }
  override async setCursor(cursor: WatcherCursor): Promise<void> {
    await super.setCursor(cursor);
    this.save();
  }
  override async markProcessed(id: string, block: bigint): Promise<void> {
    await super.markProcessed(id, block);
    this.save();
  }
  override async prune(block: bigint): Promise<void> {
    const before = this.size;
    await super.prune(block);
    if (this.size !== before) this.save();
  }
}

export interface WatcherOptions {
  store: WatcherStore;
  onEvent: (event: ChainEvent) => void | Promise<void>;
  /** Which events (default: all). */
  events?: readonly WatchedEventName[];
  /** Blocks on top of an event's block before it is delivered (default 2). */
  confirmations?: number;
  /** First block when the store has no cursor (default: the deployment block). */
  fromBlock?: bigint;
  /** Largest block range per `eth_getLogs` (default 2000). */
  maxBlockRange?: bigint;
  /** How far to re-read after the cursor's block vanished (default 64). */
  rewindBlocks?: bigint;
  /** Processed ids are kept for this many blocks behind the cursor (default 10000). */
  keepBlocks?: bigint;
  pollIntervalMs?: number;
  onReorg?: (info: { at: bigint; expected: Hex; actual: Hex | null; rewoundTo: bigint }) => void;
  onError?: (err: unknown) => void;
}

export class ChainWatcher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private stopped = true;
  private readonly abiEvents: AbiEvent[];

  constructor(
    readonly contracts: CgnContracts,
    readonly opts: WatcherOptions,
  ) {
    const wanted = new Set<string>(opts.events ?? [...SETTLEMENT_EVENTS, ...STAKING_EVENTS]);
    this.abiEvents = [...settlementAbi, ...stakingAbi].filter(
      (x): x is Extract<(typeof settlementAbi)[number] | (typeof stakingAbi)[number], { type: 'event' }> => x.type === 'event' && wanted.has(x.name),
    ) as unknown as AbiEvent[];
  }

  /** Reads every confirmed block past the cursor once; resolves to the number of events delivered. */
  poll(): Promise<number> {
    if (!this.running) {
      this.running = this.pollOnce().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  private async pollOnce(): Promise<number> {
    const { store } = this.opts;
    const pub = this.contracts.clients.public;
    const confirmations = BigInt(this.opts.confirmations ?? 2);
    const head = await pub.getBlockNumber({ cacheTime: 0 });
    const safe = head - confirmations;
    let cursor = await store.getCursor();
    let from: bigint;
    if (cursor) {
      const block = cursor.block <= head ? await pub.getBlock({ blockNumber: cursor.block }).catch(() => null) : null;
      if (!block || block.hash !== cursor.hash) {
        const rewoundTo = cursor.block > (this.opts.rewindBlocks ?? 64n) ? cursor.block - (this.opts.rewindBlocks ?? 64n) : 0n;
        this.opts.onReorg?.({ at: cursor.block, expected: cursor.hash, actual: block?.hash ?? null, rewoundTo });
        from = rewoundTo;
      } else {
        from = cursor.block + 1n;
      }
    } else {
      from = this.opts.fromBlock ?? this.contracts.addresses.deployBlock;
    }
    const range = this.opts.maxBlockRange ?? 2000n;
    let delivered = 0;
    while (from <= safe) {
      const to = from + range - 1n < safe ? from + range - 1n : safe;
      const logs = await pub.getLogs({
        address: [this.contracts.addresses.settlement, this.contracts.addresses.staking],
        events: this.abiEvents,
        fromBlock: from,
        toBlock: to,
        strict: true,
      });
      logs.sort((a, b) => (a.blockNumber === b.blockNumber ? (a.logIndex ?? 0) - (b.logIndex ?? 0) : (a.blockNumber ?? 0n) < (b.blockNumber ?? 0n) ? -1 : 1));
      for (const l of logs) {
        if (l.blockNumber === null || l.transactionHash === null || l.logIndex === null || l.blockHash === null) continue;
        const id = `${l.transactionHash}:${l.logIndex}`;
        if (await store.isProcessed(id)) continue;
        const ev: ChainEvent = {
          id,
          name: l.eventName as WatchedEventName,
          contract: l.address,
          blockNumber: l.blockNumber,
          blockHash: l.blockHash,
          txHash: l.transactionHash,
          logIndex: l.logIndex,
          args: { ...(l.args as Record<string, unknown>) },
        };
        await this.opts.onEvent(ev);
        await store.markProcessed(id, l.blockNumber);
        delivered++;
      }
      const toBlock = await pub.getBlock({ blockNumber: to });
      cursor = { block: to, hash: toBlock.hash };
      await store.setCursor(cursor);
      const keep = this.opts.keepBlocks ?? 10_000n;
      if (to > keep) await store.prune(to - keep);
      from = to + 1n;
    }
    return delivered;
  }

  /** Polls every `pollIntervalMs` (default 1000) until `stop()`. Errors go to `onError` and polling continues. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = async (): Promise<void> => {
      try {
        await this.poll();
      } catch (err) {
        this.opts.onError?.(err);
      }
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.opts.pollIntervalMs ?? 1000);
    };
    void tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.running) await this.running.catch(() => undefined);
  }
}
