/**
 * What one heartbeat visit does with one tunnel (the wheel visits each about once an interval).
 * Two kinds of tunnel: a beating miner (it said `beats` in its hello) is heard at least every
 * interval and never pinged (`visitBeating`); an older miner is pinged when quiet (`visit`).
 *
 * A pinged tunnel:
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
  /** The last visit found it silent for more than `BEAT_DROP_INTERVALS - 1` intervals (beating tunnels). */
  suspect: boolean;
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

/**
 * A beating miner is asked (welcome.beatMs) for a frame at least every this many intervals: an
 * idle one then costs the node one read per 2 intervals, where a pinged one cost a ping written and
 * a pong read per 2 intervals (each is ~20-40 µs of the node's CPU on the 2-core VM, so the read
 * alone halves it).
 */
export const BEAT_INTERVALS = 2;

/**
 * A beating miner silent for more than this many intervals is dropped: 2 intervals of slack past
 * its beat, as a pinged miner's pong had. With 1 (a drop past 3), a miner process whose timers ran
 * an interval late on a loaded machine (a second in the test harness) was dropped while alive.
 */
export const BEAT_DROP_INTERVALS = 4;

/**
 * A beating tunnel's visit: the node writes nothing; the miner sends a frame (a `beat` when it has
 * nothing else to say) at least every `BEAT_INTERVALS` intervals. Drop it when it is silent for more
 * than `BEAT_DROP_INTERVALS` intervals and the visit before this one already found it silent for
 * more than one interval less. Two visits, with the event loop's reads between them: after a stall
 * the wheel's timer runs before the reads of what arrived meanwhile, so the first visit after a
 * stall may find a live miner silent, but the one before the stall did not (a live miner is never
 * silent for more than 2), and by the next the beats are read. With the wheel on time (a visit per
 * interval) a silent miner goes at the second visit past `BEAT_DROP_INTERVALS - 1` intervals:
 * within `BEAT_DROP_INTERVALS + 1` of its last word. Updates `suspect`.
 */
export function visitBeating(l: Liveness, now: number, intervalMs: number): 'drop' | 'none' {
  const silent = now - l.lastSeen;
  const drop = silent > BEAT_DROP_INTERVALS * intervalMs && l.suspect;
  l.suspect = silent > (BEAT_DROP_INTERVALS - 1) * intervalMs;
  return drop ? 'drop' : 'none';
}

/** Liveness frames (beats and pings) a miner may send per interval; more is a protocol fault. */
export const MAX_BEATS_PER_INTERVAL = 4;

/**
 * Counts a liveness frame (beat or ping) in the current interval's window; false once the miner
 * sent more than `MAX_BEATS_PER_INTERVAL` in one interval (a fault: each costs the node a read,
 * a ping a write too). The window restarts at the first frame an interval after the last start.
 */
export function countBeat(w: { beatWindowAt: number; beatsInWindow: number }, now: number, intervalMs: number): boolean {
  if (now - w.beatWindowAt >= intervalMs) {
    w.beatWindowAt = now;
    w.beatsInWindow = 0;
  }
  return ++w.beatsInWindow <= MAX_BEATS_PER_INTERVAL;
}

/**
 * A beating miner hears from the node about every this many intervals (its welcome's
 * `heartbeatMs`; its watchdog gives up after 2 to 3 of those without a frame: 2-3 minutes at
 * the default 5 s interval, for a node that is gone without closing the connection). The node answers a
 * miner's beat with a beat of its own once nothing went to it for `NODE_BEAT_AFTER_INTERVALS`:
 * the miner beats at least every 2 intervals, so the node speaks at least every 12 < 13.
 * These writes are what an idle beating miner costs the node besides its reads: one per 10
 * intervals (at 6 they were 356 writes a second at 10,000 miners, a sixth of the beats).
 */
export const NODE_BEAT_INTERVALS = 13;
export const NODE_BEAT_AFTER_INTERVALS = 10;
