/**
 * Who closes a ledger's billing cycles. A schedule (`cgn settle`, `cgn ledger close-cycle
 * --every`) holds a lease in the ledger (one row, renewed every pass, lapsing `ttlMs` after the
 * last renewal), so two schedules never race and a manual `cgn ledger close-cycle` does not close
 * a cycle behind the schedule's back: it records a close request, and the schedule closes the open
 * cycle at its next pass. Pure rules here; the stores keep the row.
 */
export interface CycleCloser {
  /** What holds it, e.g. "cgn settle". */
  holder: string;
  pid: number;
  host: string;
  /** Its closing period (ms), if it has one. */
  everyMs: number | null;
  heartbeatAt: number;
  ttlMs: number;
  /** When a manual close asked it to close the open cycle now (honoured once that cycle closes). */
  closeRequestedAt: number | null;
}

export interface CloserClaim {
  holder: string;
  pid: number;
  host: string;
  everyMs: number | null;
  ttlMs: number;
}

/** Whether a stored lease is still held at `now`. */
export function closerLive(c: CycleCloser | null, now: number): c is CycleCloser {
  return c !== null && now - c.heartbeatAt < c.ttlMs;
}

/** Whether `claim` may take (or renew) the lease `cur` at `now`: it is free, lapsed, or the claimant's own. */
export function mayHold(cur: CycleCloser | null, claim: CloserClaim, now: number): boolean {
  return !closerLive(cur, now) || (cur.holder === claim.holder && cur.pid === claim.pid && cur.host === claim.host);
}

/** A close request the holder has not honoured yet: made after the open cycle opened. */
export function closeRequested(c: CycleCloser | null, openCycleOpenedAt: number): boolean {
  return c !== null && c.closeRequestedAt !== null && c.closeRequestedAt >= openCycleOpenedAt;
}

/**
 * A live lease whose holder is a process of this host that is gone (killed, crashed): it holds
 * nothing any more, and a restarted schedule takes over at once instead of waiting for the lease
 * to lapse. `alive` is the edge's check (`processAlive`).
 */
export function closerGone(c: CycleCloser | null, host: string, alive: (pid: number) => boolean): boolean {
  return c !== null && c.host === host && c.pid !== process.pid && !alive(c.pid);
}

/** Whether a process of this host exists (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function describeCloser(c: CycleCloser, now: number): string {
  const every = c.everyMs === null ? '' : `, every ${Math.round(c.everyMs / 1000)} s`;
  return `${c.holder} (pid ${c.pid} on ${c.host}${every}; last seen ${Math.max(0, Math.round((now - c.heartbeatAt) / 1000))} s ago)`;
}
