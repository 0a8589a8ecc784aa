/**
 * How long a miner has to acknowledge a work frame: the ack rule, in one place.
 *
 * - Each miner's ack round trip is measured (dispatch to its ack, or to its result when that comes
 *   first) and smoothed as TCP smooths its RTT (RFC 6298: `srtt`, `rttvar`, gains 1/8 and 1/4). A
 *   joining miner's estimate starts from all the node's acks smoothed together (a miner dropped on
 *   a loaded machine and back would otherwise start from the base and be dropped again).
 * - Its deadline is `srtt + 4 × rttvar`, never below `ackTimeoutMs` (the base, and the deadline
 *   before the node measured any ack) and never above the ceiling, `4 × ackTimeoutMs`: a miner on a
 *   slow or jittery link (or a loaded machine) gets the time acks have shown it needs, and a
 *   hostile one that acks ever later cannot hold a unit longer than the ceiling.
 * - Past its deadline a miner is late, not dead, while its tunnel is otherwise alive (a frame came
 *   from it within the last `ackTimeoutMs`): a large work frame still crossing a slow link, or a
 *   miner answering other units, keeps it up to the ceiling.
 * - Past the ceiling a miner with an unacked unit is dropped, whatever it measured or sent.
 */

/** A miner's smoothed ack round trip, ms; `srtt` < 0 until the first sample. */
export interface AckRtt {
  srtt: number;
  rttvar: number;
}

export const CEILING_FACTOR = 4;

export function newAckRtt(): AckRtt {
  return { srtt: -1, rttvar: 0 };
}

/** Folds one round trip (ms) into the estimate. A sample that is not a finite number ≥ 0 is ignored. */
export function sampleAck(r: AckRtt, ms: number): void {
  if (!(ms >= 0) || ms === Infinity) return;
  if (r.srtt < 0) {
    r.srtt = ms;
    r.rttvar = ms / 2;
    return;
  }
  r.rttvar += 0.25 * (Math.abs(r.srtt - ms) - r.rttvar);
  r.srtt += 0.125 * (ms - r.srtt);
}

/** The longest any unit may wait for its ack, ms. */
export function ackCeiling(baseMs: number): number {
  return CEILING_FACTOR * baseMs;
}

/** The miner's ack deadline, ms: `srtt + 4 × rttvar` within [base, ceiling]. */
export function ackDeadline(r: AckRtt, baseMs: number): number {
  if (r.srtt < 0) return baseMs;
  return Math.min(ackCeiling(baseMs), Math.max(baseMs, r.srtt + 4 * r.rttvar));
}

export type AckVerdict = 'ok' | 'late' | 'drop';

/**
 * What the sweep does with a miner whose oldest unacked unit went `ageMs` ago: `ok` within its
 * deadline, `late` (kept) past it while it was heard from within the base, `drop` otherwise and
 * always past the ceiling.
 */
export function ackVerdict(ageMs: number, r: AckRtt, baseMs: number, heardWithinBase: boolean): AckVerdict {
  if (ageMs > ackCeiling(baseMs)) return 'drop';
  if (!(ageMs > ackDeadline(r, baseMs))) return 'ok';
  return heardWithinBase ? 'late' : 'drop';
}
