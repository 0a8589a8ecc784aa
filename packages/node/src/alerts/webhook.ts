/**
 * Sends alert notices to a webhook: POST application/json, one at a time in the order they were
 * made (a resolved notice never overtakes its firing one), retried on network errors, timeouts,
 * 5xx, 408 and 429 with exponential backoff (`backoffMs`, doubling, capped at `maxBackoffMs`),
 * given up after `retries` more attempts (logged and counted). Another 4xx is the receiver
 * refusing the notice: not retried. Each POST carries the notice id in `cgn-alert-id`, so a
 * receiver can drop a retry of one it already took.
 */
import type { AlertConfig } from './config.js';
import type { AlertNotice } from './state.js';

export interface WebhookDeps {
  source: Record<string, string>;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
  fetch?: typeof fetch;
}

export interface WebhookCounters {
  sent: number;
  attempts: number;
  failedAttempts: number;
  givenUp: number;
}

export class WebhookNotifier {
  readonly counters: WebhookCounters = { sent: 0, attempts: 0, failedAttempts: 0, givenUp: 0 };
  private readonly queue: AlertNotice[] = [];
  private running: Promise<void> | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;

  constructor(private readonly config: AlertConfig['webhook'], private readonly deps: WebhookDeps) {}

  send(notice: AlertNotice): void {
    if (this.stopped) return;
    this.queue.push(notice);
    this.running ??= this.drain().finally(() => (this.running = null));
  }

  /** Notices not yet delivered. */
  get pending(): number {
    return this.queue.length;
  }

  /** Stops retrying; what is still queued is dropped (and said). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
    if (this.queue.length > 0) this.deps.log('warn', 'alert notices not delivered at stop', { dropped: this.queue.map((n) => `${n.status} ${n.key}`) });
    this.queue.length = 0;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped) {
      const notice = this.queue[0]!;
      await this.deliver(notice);
      this.queue.shift();
    }
  }

  private async deliver(notice: AlertNotice): Promise<void> {
    const body = JSON.stringify({ version: 1, ...notice, source: this.deps.source });
    const f = this.deps.fetch ?? fetch;
    let delay = this.config.backoffMs;
    for (let attempt = 0; attempt <= this.config.retries; attempt++) {
      if (this.stopped) return;
      this.counters.attempts++;
      let problem: string;
      let retry = true;
      try {
        const res = await f(this.config.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'cgn-alert-id': notice.id, ...this.config.headers },
          body,
          signal: AbortSignal.timeout(this.config.timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) {
          this.counters.sent++;
          this.deps.log('info', `alert ${notice.status}: ${notice.summary}`, { alert: notice.key, id: notice.id, severity: notice.severity });
          return;
        }
        problem = `the webhook answered ${res.status}`;
        retry = res.status >= 500 || res.status === 408 || res.status === 429;
      } catch (err) {
        problem = `the webhook could not be reached: ${(err as Error).message}`;
      }
      this.counters.failedAttempts++;
      if (!retry || attempt === this.config.retries) {
        this.counters.givenUp++;
        this.deps.log('error', `alert notice not delivered (${problem}); ${retry ? `gave up after ${attempt + 1} attempts` : 'not retried: the receiver refused it'}`, { alert: notice.key, status: notice.status, url: this.config.url });
        return;
      }
      this.deps.log('warn', `alert notice: ${problem}; retrying in ${delay} ms`, { alert: notice.key, attempt: attempt + 1 });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        t.unref();
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
      delay = Math.min(delay * 2, this.config.maxBackoffMs);
    }
  }
}
