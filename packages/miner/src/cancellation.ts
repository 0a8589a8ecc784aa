/**
 * How the miner tells the transport running a work unit (HTTP or the link) to give up: the node
 * cancelled it, its deadline passed, or the miner is stopping. One per unit, so it is kept
 * smaller than an AbortController (no EventTarget, one listener): at thousands of units a second
 * the controller and its listeners were a measurable share of the miner's CPU and garbage.
 */
import { CgnError } from '@cgn/protocol';

export class Cancellation {
  private why: CgnError | null = null;
  private listener: ((reason: CgnError) => void) | null = null;

  /** Why it was cancelled; null while it was not. */
  get reason(): CgnError | null {
    return this.why;
  }

  /** Cancels (once; later calls do nothing) and tells the listener. */
  cancel(reason: CgnError = new CgnError('cancelled', 'work cancelled')): void {
    if (this.why !== null) return;
    this.why = reason;
    const l = this.listener;
    this.listener = null;
    l?.(reason);
  }

  /** Sets the one listener (null removes it); it is called at most once. */
  onCancel(listener: ((reason: CgnError) => void) | null): void {
    this.listener = listener;
  }
}
