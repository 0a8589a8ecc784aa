/**
 * Batches the frames sent to one peer during an event-loop turn into one WebSocket message.
 * Under load this turns thousands of tiny sends into a few large ones.
 */
import type { WebSocket } from 'ws';
import { encodeMessage, type Frame } from '@cgn/protocol';

export class Outbox {
  private frames: Frame[] = [];
  private scheduled = false;

  constructor(private readonly ws: WebSocket) {}

  push(f: Frame): void {
    this.frames.push(f);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
    if (this.frames.length === 0) return;
    const batch = this.frames;
    this.frames = [];
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encodeMessage(batch), { binary: true });
  };
}
