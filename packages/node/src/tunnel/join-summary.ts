/**
 * Miners joining and leaving, summed up: each join and leave is logged at debug by the endpoint,
 * and this logs one info line per interval in which any happened (how many joined, left, are
 * connected). A node that admits thousands of miners a second writes a line every few seconds
 * instead of thousands.
 */
import type { Logger } from '../log.js';

export class JoinSummary {
  private joinedCount = 0;
  private leftCount = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly log: Pick<Logger, 'info'>,
    private readonly connected: () => number,
    readonly intervalMs = 10_000,
  ) {}

  joined(): void {
    this.joinedCount++;
  }

  left(): void {
    this.leftCount++;
  }

  /** Logs what happened since the last line, if anything did. */
  flush(): void {
    if (this.joinedCount === 0 && this.leftCount === 0) return;
    this.log.info({ joined: this.joinedCount, left: this.leftCount, connected: this.connected(), overMs: this.intervalMs }, 'miners joined and left');
    this.joinedCount = 0;
    this.leftCount = 0;
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.flush();
  }
}
