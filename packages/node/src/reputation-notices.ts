/**
 * Tells each connected miner how this node sees it: units completed and failed here, and its
 * measured latency, as a `notice` of kind `reputation` (the miner's control app shows it; the
 * miner does not print it on its console). Sent when the figures changed, at most once an
 * interval per miner, and once more after the miner reconnects.
 *
 * `standingMessage` is the rule (pure); `ReputationNotifier` the timer around it.
 */

export interface MinerStanding {
  id: string;
  completed: number;
  failed: number;
  latencyMs: number | null;
}

export function standingMessage(nodeId: string, m: MinerStanding): string {
  const total = m.completed + m.failed;
  const rate = total === 0 ? 'no units yet' : `${((m.completed / total) * 100).toFixed(1)}% answered`;
  const latency = m.latencyMs === null ? 'latency not measured yet' : `latency ${m.latencyMs.toFixed(1)} ms`;
  return `node ${nodeId}: ${m.completed} units completed, ${m.failed} failed here (${rate}); ${latency}`;
}

export interface ReputationNotifierOptions {
  nodeId: string;
  miners: () => readonly MinerStanding[];
  send: (minerId: string, message: string) => void;
  /** Default 30 s. */
  intervalMs?: number;
}

/**
 * The figures last sent to each miner, kept as numbers: a check compares them and builds a message
 * only for a miner whose figures changed. Nothing is resent unchanged (with 10,000 idle miners a
 * periodic resend was a write every 6 ms); a miner that leaves is forgotten (`forget`, called when
 * its tunnel closes), so when it comes back it hears its standing again.
 */
export class ReputationNotifier {
  private readonly last = new Map<string, { completed: number; failed: number; latencyMs: number | null }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: ReputationNotifierOptions) {}

  /** Sends the notices whose figures changed; returns how many. */
  check(): number {
    let sent = 0;
    for (const m of this.o.miners()) {
      const before = this.last.get(m.id);
      // Latency is shown to a tenth of a millisecond: a change below that is no news.
      const latency = m.latencyMs === null ? null : Math.round(m.latencyMs * 10) / 10;
      if (before !== undefined && before.completed === m.completed && before.failed === m.failed && before.latencyMs === latency) continue;
      if (before === undefined) this.last.set(m.id, { completed: m.completed, failed: m.failed, latencyMs: latency });
      else {
        before.completed = m.completed;
        before.failed = m.failed;
        before.latencyMs = latency;
      }
      this.o.send(m.id, standingMessage(this.o.nodeId, m));
      sent++;
    }
    return sent;
  }

  /** The miner left: what it was told is forgotten, so it hears its standing when it returns. */
  forget(minerId: string): void {
    this.last.delete(minerId);
  }

  /** Miners whose last figures are kept (for tests and status). */
  get tracked(): number {
    return this.last.size;
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.check(), this.o.intervalMs ?? 30_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
