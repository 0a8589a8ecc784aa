/**
 * What one heartbeat visit does with one tunnel (the wheel visits each about once an interval).
 *
 * - Ping it when nothing came from it since its last visit, or nothing went to it for 1.25
 *   intervals: an idle miner is pinged every other visit (the visit after a ping finds its pong,
 *   and the ping an interval old), a busy one never (its results and the node's work frames are
 *   the heartbeat). Whether it was heard from is counted in visits, not read from clocks, so timer
 *   drift cannot turn it into a ping per visit; what went to it is timed, so a wheel turning late
 *   pings every visit and the miner's watchdog (no frame for 3 intervals) still hears from the
 *   node at least every 2.5 intervals while the wheel turns in under 1.25 intervals, and at
 *   every visit when it is slower (as before, a wheel 3 intervals late starves it).
 * - Drop it when it was silent for 3 intervals and, once it is ready, a ping it has not answered
 *   went at least 2 intervals ago: with the node so busy that its wheel turns late, a miner is
 *   never dropped before it was asked and given 2 intervals to answer.
 *
 * So neither this drop nor the miner's own watchdog fires on a live tunnel.
 */
export interface Liveness {
  /** When anything last came from it, ms. */
  lastSeen: number;
  /** Whether anything came from it since its last visit. */
  heard: boolean;
  /** When anything last went to it, ms. */
  lastSent: number;
  /** When the first ping it has not answered yet went (answered once `lastSeen` is later). */
  pingedAt: number;
}

export type Verdict = 'drop' | 'ping' | 'none';

/** The visit's verdict; updates `heard` (and `pingedAt`, `lastSent` when it says ping). */
export function visit(l: Liveness, ready: boolean, now: number, intervalMs: number): Verdict {
  const unanswered = l.pingedAt > l.lastSeen;
  if (now - l.lastSeen > 3 * intervalMs && (!ready || (unanswered && now - l.pingedAt >= 2 * intervalMs))) return 'drop';
  const quiet = !l.heard || now - l.lastSent >= 1.25 * intervalMs;
  l.heard = false;
  if (!quiet || !ready) return 'none';
  if (!unanswered) l.pingedAt = now;
  l.lastSent = now;
  return 'ping';
}
