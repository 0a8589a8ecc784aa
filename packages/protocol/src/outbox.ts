/**
 * Batches the frames a miner sends during one event-loop turn into one WebSocket message
 * (`encodeMessage`), flushed on `setImmediate`. Under load this turns thousands of small sends
 * (acks, results, pongs) into a few large ones.
 *
 * A batch whose frames together would exceed `maxMessageBytes` is split into several messages
 * (a single larger frame still goes alone), so a burst of big results never makes a message the
 * node refuses as too large.
 */
import { encodeMessage } from './codec.js';
import type { Frame } from './frames.js';

/** Rough encoded size of a frame: its body and headers plus a fixed allowance for the rest. */
export function estimateFrameBytes(f: Frame): number {
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

export class Outbox {
  private frames: Frame[] = [];
  private scheduled = false;

  constructor(
    private readonly sink: (message: Buffer) => void,
    private readonly maxMessageBytes: number,
  ) {}

  get pending(): number {
    return this.frames.length;
  }

  push(f: Frame): void {
    this.frames.push(f);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Sends what is queued now (also called before a close so nothing queued is lost). */
  readonly flush = (): void => {
    this.scheduled = false;
    const frames = this.frames;
    if (frames.length === 0) return;
    this.frames = [];
    if (frames.length === 1) return this.sink(encodeMessage(frames));
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < frames.length; i++) {
      const n = estimateFrameBytes(frames[i]!);
      if (i > start && bytes + n > this.maxMessageBytes) {
        this.sink(encodeMessage(frames.slice(start, i)));
        start = i;
        bytes = 0;
      }
      bytes += n;
    }
    this.sink(encodeMessage(start === 0 ? frames : frames.slice(start)));
  };

  /** Drops queued frames (the connection they were for is gone). */
  clear(): void {
    this.frames = [];
  }
}
