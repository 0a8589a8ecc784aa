/**
 * "Only while the machine is idle": how busy the owner keeps the machine, from /proc/stat less
 * the CPU time of the miner itself and its DService processes, and a detector with hysteresis
 * (busy after a sustained run above the threshold, idle again after a longer run below it), so
 * a short burst does not flap the miner in and out of the node's pool.
 *
 * The arithmetic is pure; reading /proc is at the edge (`readCpuTimes`, `processCpuMs`).
 */
import { readFileSync } from 'node:fs';

/** Whole-machine CPU times in milliseconds since boot (all CPUs summed). */
export interface CpuTimes {
  /** Every state. */
  totalMs: number;
  /** Idle and iowait. */
  idleMs: number;
}

/** Clock ticks per second of /proc/stat and /proc/<pid>/stat (USER_HZ; 100 on Linux). */
export const USER_HZ = 100;

/** Parses the aggregate `cpu` line of /proc/stat; null when there is none. */
export function parseProcStat(text: string): CpuTimes | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) return null;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  if (v.length < 4 || v.some((n) => !Number.isFinite(n) || n < 0)) return null;
  // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice).
  const fields = v.slice(0, 8);
  const total = fields.reduce((s, n) => s + n, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { totalMs: (total * 1000) / USER_HZ, idleMs: (idle * 1000) / USER_HZ };
}

/** utime + stime of a /proc/<pid>/stat line, in ms; null if unreadable. */
export function parsePidStat(text: string): number | null {
  // The command name (field 2) is in parentheses and may hold spaces: split after its last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return ((utime + stime) * 1000) / USER_HZ;
}

/**
 * The share of the machine's CPU (0..1) the owner used between two samples: busy time less the
 * miner's own (itself and its DServices), over all time. 0 when no time passed.
 */
export function ownerBusyShare(prev: CpuTimes, cur: CpuTimes, ownMsDelta: number): number {
  const total = cur.totalMs - prev.totalMs;
  if (!(total > 0)) return 0;
  const busy = total - (cur.idleMs - prev.idleMs);
  const owner = busy - Math.max(0, ownMsDelta);
  return Math.min(1, Math.max(0, owner / total));
}

export interface IdleDetectorOptions {
  /** The owner counts as busy above this share of the CPU, percent. */
  thresholdPct: number;
  /** Above the threshold this long (ms) makes the machine busy. Default 10 s. */
  busyAfterMs?: number;
  /** Below the threshold this long (ms) makes it idle again. Default 60 s. */
  idleAfterMs?: number;
}

/** Busy/idle with hysteresis over timestamped samples (the clock is the caller's). */
export class IdleDetector {
  private busyValue = false;
  /** When the current run of samples on the other side of the threshold began (null: none). */
  private flipSince: number | null = null;
  private lastShare: number | null = null;
  private readonly busyAfterMs: number;
  private readonly idleAfterMs: number;

  constructor(private opts: IdleDetectorOptions) {
    this.busyAfterMs = opts.busyAfterMs ?? 10_000;
    this.idleAfterMs = opts.idleAfterMs ?? 60_000;
  }

  get busy(): boolean {
    return this.busyValue;
  }

  /** The last observed owner share, 0..1 (null before the first sample). */
  get share(): number | null {
    return this.lastShare;
  }

  setThreshold(pct: number): void {
    this.opts = { ...this.opts, thresholdPct: pct };
  }

  /** Feeds one sample taken at `nowMs`; returns whether the machine is busy now. */
  observe(nowMs: number, share: number): boolean {
    this.lastShare = share;
    const above = share * 100 > this.opts.thresholdPct;
    if (above === this.busyValue) {
      this.flipSince = null;
      return this.busyValue;
    }
    this.flipSince ??= nowMs;
    if (nowMs - this.flipSince >= (above ? this.busyAfterMs : this.idleAfterMs)) {
      this.busyValue = above;
      this.flipSince = null;
    }
    return this.busyValue;
  }
}

/** /proc/stat now, or null where there is none (not Linux). */
export function readCpuTimes(): CpuTimes | null {
  try {
    return parseProcStat(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return null;
  }
}

/** The CPU time (ms) of these processes so far; unreadable ones (gone) count 0. */
export function processCpuMs(pids: Iterable<number>): number {
  let sum = 0;
  for (const pid of new Set(pids)) {
    try {
      sum += parsePidStat(readFileSync(`/proc/${pid}/stat`, 'utf8')) ?? 0;
    } catch {
      /* gone */
    }
  }
  return sum;
}

/** `usage_usec` of a cgroup v2 `cpu.stat`, in ms; null when absent (v1's cpu.stat has none). */
export function parseCgroupCpuStat(text: string): number | null {
  const m = /^usage_usec (\d+)$/m.exec(text);
  return m === null ? null : Number(m[1]) / 1000;
}

/**
 * The CPU time (ms) of everything in these cgroup v2 groups (a sandbox and all it spawned), or
 * null when a group's `cpu.stat` has no usage (cgroup v1 without cpuacct): the caller counts pids.
 */
export function cgroupCpuMs(dirs: readonly string[]): number | null {
  let sum = 0;
  for (const dir of dirs) {
    let text: string;
    try {
      text = readFileSync(`${dir}/cpu.stat`, 'utf8');
    } catch {
      continue; // gone with its process
    }
    const ms = parseCgroupCpuStat(text);
    if (ms === null) return null;
    sum += ms;
  }
  return sum;
}
