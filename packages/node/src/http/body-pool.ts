/**
 * Reusable memory for large request bodies.
 *
 * Why: every upload the node reads arrives in fresh socket buffers outside the V8 heap. Under load
 * a body waits in the broker's queue longer than V8's young generation keeps it, so it is promoted,
 * and promoted buffers are only freed by a full mark-compact, which V8 starts after each further
 * 64 MB of such memory. Measured with MediaGen's 527 KB uploads at 32 connections: a mark-compact
 * every ~120 requests, ~0.35 ms of the node's 1.5 ms of CPU per request. Copying each body once
 * into blocks that are used again instead lets the socket buffers die young (scavenged), and the
 * full collections stop.
 *
 * A body's blocks go back to the pool when nobody can read them any more: the request let go of
 * the body (`release`) and every tunnel write that carries it finished (`hold`, taken by the
 * Outbox when a work frame is queued). Until then they are never handed out again. When the pool
 * has `maxBytes` in use, further bodies get blocks of their own (allocated, never returned), so a
 * burst costs garbage collection again but is never refused. Blocks unused for a whole
 * `trim()` period are dropped.
 */
import type { ChunkedBody } from '@cgn/protocol';

export interface BodyPoolOptions {
  /** Size of one block, bytes. Default 64 KiB (what one socket read delivers at most). */
  blockBytes?: number;
  /** Most memory the pool keeps, bytes. Default 64 MiB. */
  maxBytes?: number;
}

export interface BodyPoolCounters {
  /** Blocks the pool owns (free or in use). */
  blocks: number;
  /** Blocks holding a body right now. */
  inUse: number;
  /** Bodies built from pool blocks, and bodies that needed blocks of their own (pool full). */
  bodies: number;
  overflowBodies: number;
  /** Blocks dropped by `trim()`. */
  trimmed: number;
}

/** A body being read: append chunks, then `finish()` once, or `abort()`. */
export interface BodyBuilder {
  append(chunk: Uint8Array): void;
  /** The body; the caller owns one reference and must `release()` it when done with it. */
  finish(): PooledBody;
  /** Gives the blocks back (the read failed). */
  abort(): void;
  readonly length: number;
}

export interface PooledBody extends ChunkedBody {
  /** Lets go of the request's reference (idempotent). */
  release(): void;
}

export class BodyPool {
  readonly blockBytes: number;
  readonly maxBlocks: number;
  private readonly free: Buffer[] = [];
  private owned = 0;
  private inUse = 0;
  private lowWater = 0;
  private readonly c = { bodies: 0, overflowBodies: 0, trimmed: 0 };

  constructor(options: BodyPoolOptions = {}) {
    const blockBytes = options.blockBytes ?? 64 * 1024;
    const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    if (!Number.isInteger(blockBytes) || blockBytes < 1) throw new TypeError(`BodyPool option blockBytes: must be a positive integer, not ${String(blockBytes)}`);
    if (!Number.isInteger(maxBytes) || maxBytes < 0) throw new TypeError(`BodyPool option maxBytes: must be a non-negative integer, not ${String(maxBytes)}`);
    this.blockBytes = blockBytes;
    this.maxBlocks = Math.floor(maxBytes / blockBytes);
  }

  get counters(): BodyPoolCounters {
    return { blocks: this.owned, inUse: this.inUse, ...this.c };
  }

  begin(): BodyBuilder {
    return new Builder(this);
  }

  /** Drops the free blocks that stayed unused since the last call (call it every few seconds). */
  trim(): void {
    const drop = Math.min(this.lowWater, this.free.length);
    this.free.length -= drop;
    this.owned -= drop;
    this.c.trimmed += drop;
    this.lowWater = this.free.length;
  }

  /** A block from the pool, or null when the pool may not grow. */
  take(): Buffer | null {
    let b = this.free.pop();
    if (b === undefined) {
      if (this.owned >= this.maxBlocks) return null;
      b = Buffer.allocUnsafeSlow(this.blockBytes);
      this.owned++;
    } else if (this.free.length < this.lowWater) {
      this.lowWater = this.free.length;
    }
    this.inUse++;
    return b;
  }

  give(blocks: readonly Buffer[]): void {
    for (const b of blocks) this.free.push(b);
    this.inUse -= blocks.length;
  }

  counted(overflow: boolean): void {
    if (overflow) this.c.overflowBodies++;
    else this.c.bodies++;
  }
}

class Builder implements BodyBuilder {
  /** Pool blocks, to give back (blocks allocated because the pool was full are left to the GC). */
  private readonly blocks: Buffer[] = [];
  private readonly chunks: Buffer[] = [];
  private current: Buffer | null = null;
  private used = 0;
  private overflow = false;
  private state: 'open' | 'done' = 'open';
  length = 0;

  constructor(private readonly pool: BodyPool) {}

  append(chunk: Uint8Array): void {
    if (this.state !== 'open') throw new Error('BodyBuilder: append after finish or abort');
    let at = 0;
    while (at < chunk.length) {
      if (this.current === null || this.used === this.current.length) this.nextBlock();
      const n = Math.min(chunk.length - at, this.current!.length - this.used);
      this.current!.set(chunk.subarray(at, at + n), this.used);
      this.used += n;
      at += n;
    }
    this.length += chunk.length;
  }

  private nextBlock(): void {
    if (this.current !== null) this.chunks.push(this.current.subarray(0, this.used));
    let b = this.pool.take();
    if (b === null) {
      this.overflow = true;
      b = Buffer.allocUnsafeSlow(this.pool.blockBytes);
    } else {
      this.blocks.push(b);
    }
    this.current = b;
    this.used = 0;
  }

  finish(): PooledBody {
    if (this.state !== 'open') throw new Error('BodyBuilder: finish twice or after abort');
    this.state = 'done';
    if (this.current !== null && this.used > 0) this.chunks.push(this.current.subarray(0, this.used));
    this.current = null;
    this.pool.counted(this.overflow);
    const pool = this.pool;
    const blocks = this.blocks;
    let refs = 1;
    let requestHeld = true;
    const drop = (): void => {
      if (--refs === 0) pool.give(blocks);
    };
    return {
      chunks: this.chunks,
      length: this.length,
      hold: () => {
        if (refs === 0) throw new Error('BodyPool: hold on a body whose blocks were given back');
        refs++;
        let held = true;
        return () => {
          if (!held) return;
          held = false;
          drop();
        };
      },
      release: () => {
        if (!requestHeld) return;
        requestHeld = false;
        drop();
      },
    };
  }

  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'done';
    this.current = null;
    this.pool.give(this.blocks);
  }
}
