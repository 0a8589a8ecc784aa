/**
 * What one heartbeat visit does with one tunnel (the wheel visits each about once an interval).
 *
 * - Ping it when nothing came from it, or nothing went to it, since its last visit: an idle miner
 *   is pinged every other visit (the visit after a ping finds the ping sent and its pong heard), a
 *   busy one never (its results and the node's work frames are the heartbeat). Counted in visits,
 *   not read from clocks, so timer drift cannot turn it into a ping per visit.
 * - Drop it when it was silent for 3 intervals and, once it is ready, a ping it has not answered
 *   went at least 2 intervals ago: with the node so busy that its wheel turns late, a miner is
 *   never dropped before it was asked and given 2 intervals to answer.
 *
 * Each side hears from the other at least every 2 visits, so neither this drop nor the miner's own
 * watchdog (no frame for 3 intervals) fires on a live tunnel.
 */
export interface Liveness {
  /** When anything last came from it, ms. */
  lastSeen: number;
  /** Whether anything came from it, and went to it, since its last visit. */
  heard: boolean;
  sent: boolean;
  /** When the first ping it has not answered yet went (answered once `lastSeen` is later). */
  pingedAt: number;
}

export type Verdict = 'drop' | 'ping' | 'none';

/** The visit's verdict; updates the flags (and `pingedAt` when it says ping). */
export function visit(l: Liveness, ready: boolean, now: number, intervalMs: number): Verdict {
  const unanswered = l.pingedAt > l.lastSeen;
  if (now - l.lastSeen > 3 * intervalMs && (!ready || (unanswered && now - l.pingedAt >= 2 * intervalMs))) return 'drop';
  const quiet = !l.heard || !l.sent;
  l.heard = false;
  l.sent = false;
  if (!quiet || !ready) return 'none';
  if (!unanswered) l.pingedAt = now;
  return 'ping';
}
