/**
 * Batches the frames a miner sends during one event-loop turn into one WebSocket message
 * (`encodeMessageParts`), flushed on `setImmediate`. Under load this turns thousands of small sends
 * (acks, results, pongs) into a few large ones.
 *
 * A batch whose frames together would exceed `maxMessageBytes` is split into several messages
 * (a single larger frame still goes alone), so a burst of big results never makes a message the
 * node refuses as too large.
 *
 * With `sendAtOnceWhenQuietMs`, a frame pushed when nothing went out for that long is sent at once:
 * at light load there is nothing to batch it with, and waiting for `setImmediate` cost 100-130 µs
 * per hop on this VM (the rest of the poll phase runs first). Under load flushes come more often
 * than that, and frames batch as before.
 *
 * A frame whose body is borrowed memory (`ChunkedBody.hold`) holds it from `push` until the write
 * of its message has finished: the sink is given a `written` callback to call then (or at once if
 * it sends nothing). `clear` lets go of what was never sent.
 */
import { holdBody } from './body.js';
import { encodeMessageParts } from './codec.js';
import type { OutgoingFrame } from './frames.js';

/** Rough encoded size of a frame: its body and headers plus a fixed allowance for the rest. */
export function estimateFrameBytes(f: OutgoingFrame): number {
  switch (f.t) {
    case 'result':
    case 'work': {
      let n = 256 + f.body.length;
      for (const h of f.headers) n += h.length + 2;
      return n;
    }
    case 'advertise':
      return 256 + f.dservices.length * 160;
    case 'error':
      return 128 + f.message.length;
    default:
      return 96;
  }
}

/**
 * Sends one message, given as parts to send back to back (`encodeMessageParts`). `written`, when
 * given, must be called once the parts are no longer needed: their write finished or failed, or
 * they were not sent.
 */
export type OutboxSink = (parts: Buffer[], written?: () => void) => void;

export interface OutboxOptions {
  /** Send a frame at once when the last flush was at least this long ago, ms. Default 0: never (always batch). */
  sendAtOnceWhenQuietMs?: number;
  /** Clock, ms (tests). Default performance.now. */
  now?: () => number;
}

export class Outbox {
  private frames: OutgoingFrame[] = [];
  private holds: (() => void)[] = [];
  private scheduled = false;
  private lastFlushAt = -Infinity;
  private readonly quietMs: number;
  private readonly now: () => number;

  constructor(
    private readonly sink: OutboxSink,
    private readonly maxMessageBytes: number,
    options: OutboxOptions = {},
  ) {
    this.quietMs = options.sendAtOnceWhenQuietMs ?? 0;
    this.now = options.now ?? (() => performance.now());
  }

  get pending(): number {
    return this.frames.length;
  }

  push(f: OutgoingFrame): void {
    if (f.t === 'work' || f.t === 'result') {
      const release = holdBody(f.body);
      if (release !== null) this.holds.push(release);
    }
    this.frames.push(f);
    if (this.scheduled) return;
    if (this.quietMs > 0 && this.frames.length === 1 && this.now() - this.lastFlushAt >= this.quietMs) return this.flush();
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** Sends what is queued now (also called before a close so nothing queued is lost). */
  readonly flush = (): void => {
    this.scheduled = false;
    const frames = this.frames;
    if (frames.length === 0) return;
    this.frames = [];
    if (this.quietMs > 0) this.lastFlushAt = this.now();
    const holds = this.holds;
    let written: (() => void) | undefined;
    if (holds.length > 0) {
      this.holds = [];
      let called = false;
      written = () => {
        if (called) return;
        called = true;
        for (const release of holds) release();
      };
    }
    // The messages are written in order, so the last one's `written` comes after all of them.
    if (frames.length === 1) return this.sink(encodeMessageParts(frames), written);
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < frames.length; i++) {
      const n = estimateFrameBytes(frames[i]!);
      if (i > start && bytes + n > this.maxMessageBytes) {
        this.sink(encodeMessageParts(frames.slice(start, i)));
        start = i;
        bytes = 0;
      }
      bytes += n;
    }
    this.sink(encodeMessageParts(start === 0 ? frames : frames.slice(start)), written);
  };

  /** Drops queued frames (the connection they were for is gone). */
  clear(): void {
    this.frames = [];
    const holds = this.holds;
    this.holds = [];
    for (const release of holds) release();
  }
}

/** What `sendParts` needs of a WebSocket (`ws`'s `WebSocket`). */
export interface PartsSocket {
  send(data: Buffer, options: { binary: boolean; fin: boolean }, cb?: (err?: Error) => void): void;
}

/**
 * Sends a message's parts as the fragments of one WebSocket message (one part: one plain message).
 *
 * Fragments are written with the TCP socket corked, so they leave in one writev instead of one
 * per fragment: a 527 KB upload was nine writes, each waking the receiving miner on its own.
 * `ws` corks around each frame itself; corking nests, so the outer cork holds them all. The socket
 * is `ws`'s private `_socket` (there since ws 1 and unchanged in 8); without one, parts go uncorked.
 * `written` is called once the last part's write has finished or failed (`ws`'s send callback).
 */
export function sendParts(ws: PartsSocket, parts: readonly Buffer[], written?: () => void): void {
  const last = parts.length - 1;
  // The socket completes writes in order: the last part's callback comes after the others'.
  const cb = written === undefined ? undefined : () => written();
  if (last === 0) return ws.send(parts[0]!, { binary: true, fin: true }, cb);
  const socket = (ws as { _socket?: { cork?: () => void; uncork?: () => void } | null })._socket;
  const corked = socket != null && typeof socket.cork === 'function' && typeof socket.uncork === 'function';
  if (corked) socket.cork!();
  try {
    for (let i = 0; i <= last; i++) ws.send(parts[i]!, { binary: true, fin: i === last }, i === last ? cb : undefined);
  } finally {
    if (corked) socket.uncork!();
  }
}
