/**
 * Tells each connected miner how this node sees it: units completed and failed here, and its
 * measured latency, as a `notice` of kind `reputation` (the miner's control app shows it; the
 * miner does not print it on its console). Sent when the figures changed, at most once an
 * interval per miner, and again every few intervals when they did not.
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
  /** Unchanged figures are sent again every this many checks (a miner that reconnected hears them). Default 6. */
  resendEvery?: number;
}

export class ReputationNotifier {
  private readonly last = new Map<string, { msg: string; checks: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: ReputationNotifierOptions) {}

  /** Sends the notices whose figures changed; returns how many. */
  check(): number {
    let sent = 0;
    const seen = new Set<string>();
    for (const m of this.o.miners()) {
      seen.add(m.id);
      const msg = standingMessage(this.o.nodeId, m);
      const before = this.last.get(m.id);
      if (before !== undefined && before.msg === msg && ++before.checks < (this.o.resendEvery ?? 6)) continue;
      this.last.set(m.id, { msg, checks: 0 });
      this.o.send(m.id, msg);
      sent++;
    }
    for (const id of this.last.keys()) if (!seen.has(id)) this.last.delete(id);
    return sent;
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
