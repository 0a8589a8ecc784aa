/** Arithmetic on resource bundles. */
import { CgnError } from '@cgn/protocol';
import { RESOURCE_KEYS, type MinerView, type Resources } from './types.js';

export const ZERO: Readonly<Resources> = Object.freeze({ cpus: 0, memoryMb: 0, diskMb: 0, gpus: 0, bandwidthMbps: 0 });

export function resources(partial: Partial<Resources> = {}): Resources {
  return { ...ZERO, ...partial };
}

export function add(a: Resources, b: Resources): Resources {
  return {
    cpus: a.cpus + b.cpus,
    memoryMb: a.memoryMb + b.memoryMb,
    diskMb: a.diskMb + b.diskMb,
    gpus: a.gpus + b.gpus,
    bandwidthMbps: a.bandwidthMbps + b.bandwidthMbps,
  };
}

/** In place: a += b. For the hot loops. */
export function addInto(a: Resources, b: Resources): void {
  a.cpus += b.cpus;
  a.memoryMb += b.memoryMb;
  a.diskMb += b.diskMb;
  a.gpus += b.gpus;
  a.bandwidthMbps += b.bandwidthMbps;
}

/** In place: a -= b. */
export function subtractInto(a: Resources, b: Resources): void {
  a.cpus -= b.cpus;
  a.memoryMb -= b.memoryMb;
  a.diskMb -= b.diskMb;
  a.gpus -= b.gpus;
  a.bandwidthMbps -= b.bandwidthMbps;
}

/** Whether `need` fits in `room` in every resource. */
export function fits(need: Resources, room: Resources): boolean {
  return (
    need.cpus <= room.cpus &&
    need.memoryMb <= room.memoryMb &&
    need.diskMb <= room.diskMb &&
    need.gpus <= room.gpus &&
    need.bandwidthMbps <= room.bandwidthMbps
  );
}

/** The resources a miner is believed to have: the smaller of claimed and measured in each. */
export function capacityOf(m: MinerView): Resources {
  const c = m.claimed;
  const p = m.measured;
  if (p === undefined) return { ...c };
  return {
    cpus: Math.min(c.cpus, p.cpus),
    memoryMb: Math.min(c.memoryMb, p.memoryMb),
    diskMb: Math.min(c.diskMb, p.diskMb),
    gpus: Math.min(c.gpus, p.gpus),
    bandwidthMbps: Math.min(c.bandwidthMbps, p.bandwidthMbps),
  };
}

/**
 * The largest share of `total` that `used` takes in any resource (its dominant share, DRF's
 * measure). Resources of which the total is 0 are ignored.
 */
export function dominantShare(used: Resources, total: Resources): number {
  let s = 0;
  for (const k of RESOURCE_KEYS) {
    const t = total[k];
    if (t > 0) {
      const x = used[k] / t;
      if (x > s) s = x;
    }
  }
  return s;
}

/**
 * Whether every amount is a finite number >= 0, in one expression (NaN and -Infinity fail `>= 0`,
 * +Infinity fails `< Infinity`). Hot loops test this and call `checkResources` only to throw, so
 * that a valid bundle costs no label closure.
 */
export function validResources(r: Resources): boolean {
  return (
    r.cpus >= 0 && r.cpus < Infinity && r.memoryMb >= 0 && r.memoryMb < Infinity && r.diskMb >= 0 && r.diskMb < Infinity &&
    r.gpus >= 0 && r.gpus < Infinity && r.bandwidthMbps >= 0 && r.bandwidthMbps < Infinity
  );
}

/**
 * Throws a `bad_request` CgnError naming the field when a bundle has a negative or non-finite
 * amount. `what` may be a function, so that hot loops do not build the label of a valid bundle.
 */
export function checkResources(r: Resources, what: string | (() => string)): void {
  if (validResources(r)) return;
  const label = typeof what === 'function' ? what() : what;
  for (const k of RESOURCE_KEYS) {
    const v = r[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new CgnError('bad_request', `${label}.${k} must be a finite number >= 0 (got ${String(v)})`, { details: { field: `${label}.${k}` } });
    }
  }
}
