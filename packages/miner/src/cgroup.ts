/**
 * CPU, memory and process-count limits for DService processes, enforced with cgroups: v2 (the
 * unified hierarchy) where the host has it with the memory controller, else v1 (one hierarchy
 * per controller). Each process incarnation gets its own group `<mount>/cgn/<name>` made before
 * it starts and removed after it exits; the process joins it before bubblewrap runs (see
 * `joinCommand`), so nothing it starts escapes the limits.
 *
 * No address-space rlimit: V8 reserves far more virtual memory than it uses and does not start
 * under one.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DServiceDescriptor } from '@cgn/protocol';

export type CgroupVersion = 'v2' | 'v1';
export type Controller = 'memory' | 'pids' | 'cpu';
export const CONTROLLERS: readonly Controller[] = ['memory', 'pids', 'cpu'];

/** Tasks (processes and threads) a DService may have when its descriptor does not say: a Node process uses about 12. */
export const DEFAULT_PIDS = 256;
/** The CFS period the CPU quota is a share of, µs. */
const CPU_PERIOD_US = 100_000;
/** The directory under each hierarchy that holds the miners' groups. */
const PARENT = 'cgn';

export interface ResourceLimits {
  /** CPUs' worth of time per period (may be fractional in the cgroup, integer in descriptors). */
  cpus: number;
  memoryMb: number;
  /** Most tasks (processes and threads) at once. */
  pids: number;
}

/** The limits a DService runs with: its descriptor's `resources`, the pids default filled in. */
export function limitsOf(descriptor: Pick<DServiceDescriptor, 'resources'>): ResourceLimits {
  const r = descriptor.resources;
  return { cpus: r.cpus, memoryMb: r.memoryMb, pids: r.pids ?? DEFAULT_PIDS };
}

export class CgroupError extends Error {
  constructor(
    readonly code: 'cgroup_unavailable' | 'cgroup_setup_failed',
    message: string,
  ) {
    super(message);
    this.name = 'CgroupError';
  }
}

export interface CgroupSupport {
  version: CgroupVersion | null;
  /** The directory under which groups are made, per controller enforced (v2: the same for all). */
  parents: Partial<Record<Controller, string>>;
  /** Controllers that cannot be enforced here. */
  missing: Controller[];
  /** What is not enforced and why, for the log and the miner's status; null when all is. */
  warning: string | null;
}

interface Mount {
  dir: string;
  type: string;
  options: string[];
}

function parseMounts(text: string): Mount[] {
  return text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length >= 4)
    // /proc/self/mounts escapes spaces in paths as \040.
    .map((f) => ({ dir: f[1]!.replace(/\\040/g, ' '), type: f[2]!, options: f[3]!.split(',') }));
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** Makes `<mount>/cgn`; null if it exists or was made, else why not. */
function ensureParent(dir: string): string | null {
  try {
    mkdirSync(dir, { recursive: true });
    return null;
  } catch (err) {
    return `${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

function enableV2(mount: string, controllers: Controller[]): string | null {
  const parent = join(mount, PARENT);
  const made = ensureParent(parent);
  if (made !== null) return made;
  // Controllers must be enabled on the path down to the groups: at the root, then in cgn/.
  for (const dir of [mount, parent]) {
    const enabled = (readText(join(dir, 'cgroup.subtree_control')) ?? '').split(/\s+/);
    const wanted = controllers.filter((c) => !enabled.includes(c));
    if (wanted.length === 0) continue;
    try {
      writeFileSync(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
    } catch (err) {
      return `cannot enable ${wanted.join(', ')} in ${dir}/cgroup.subtree_control: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
  }
  return null;
}

/**
 * What this host lets the miner enforce. Creates `cgn/` under each usable hierarchy (and, with
 * v2, enables the controllers on the way); reads `/proc/self/mounts` unless given its text.
 */
export function detectCgroups(mountsText: string | null = readText('/proc/self/mounts')): CgroupSupport {
  const mounts = parseMounts(mountsText ?? '');
  const problems: string[] = [];
  const v2 = mounts.find((m) => m.type === 'cgroup2');
  if (v2 !== undefined) {
    const available = (readText(join(v2.dir, 'cgroup.controllers')) ?? '').split(/\s+/);
    const usable = CONTROLLERS.filter((c) => available.includes(c));
    if (usable.includes('memory')) {
      const problem = enableV2(v2.dir, usable);
      if (problem === null) return support('v2', Object.fromEntries(usable.map((c) => [c, join(v2.dir, PARENT)])), []);
      problems.push(`cgroup v2: ${problem}`);
    }
  }
  const parents: Partial<Record<Controller, string>> = {};
  for (const c of CONTROLLERS) {
    const m = mounts.find((x) => x.type === 'cgroup' && x.options.includes(c));
    if (m === undefined) continue;
    const problem = ensureParent(join(m.dir, PARENT));
    if (problem === null) parents[c] = join(m.dir, PARENT);
    else problems.push(`cgroup v1 ${c}: ${problem}`);
  }
  if (Object.keys(parents).length > 0) return support('v1', parents, problems);
  return support(null, {}, problems);
}

function support(version: CgroupVersion | null, parents: Partial<Record<Controller, string>>, problems: string[]): CgroupSupport {
  const missing = CONTROLLERS.filter((c) => parents[c] === undefined);
  let warning: string | null = null;
  if (missing.length > 0) {
    const why = problems.length > 0 ? ` (${problems.join('; ')})` : ' (no writable cgroup hierarchy has them)';
    warning =
      version === null
        ? `no writable cgroup here${why}: DServices run WITHOUT CPU, memory or process limits; run the miner as root on a host with cgroups (v2, or v1 memory/pids/cpu)`
        : `cgroup ${version} here lacks ${missing.join(', ')}${why}: those limits are NOT enforced`;
  }
  return { version, parents, missing, warning };
}

/** One process incarnation's group, in every hierarchy that enforces a limit. */
export class CgroupGroup {
  private constructor(
    readonly version: CgroupVersion,
    /** Controller -> this group's directory. */
    readonly dirs: Partial<Record<Controller, string>>,
  ) {}

  /** The group directories (one per hierarchy). */
  get paths(): string[] {
    return [...new Set(Object.values(this.dirs))];
  }

  /** Makes the group `name` and writes its limits; throws `CgroupError` if the kernel refuses. */
  static create(s: CgroupSupport, name: string, limits: ResourceLimits): CgroupGroup {
    if (s.version === null) throw new CgroupError('cgroup_unavailable', s.warning ?? 'no cgroup support');
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new CgroupError('cgroup_setup_failed', `bad cgroup name "${name}"`);
    const dirs: Partial<Record<Controller, string>> = {};
    for (const c of CONTROLLERS) {
      const parent = s.parents[c];
      if (parent !== undefined) dirs[c] = join(parent, name);
    }
    const group = new CgroupGroup(s.version, dirs);
    try {
      for (const dir of group.paths) mkdirSync(dir, { recursive: true });
      group.writeLimits(limits);
    } catch (err) {
      void group.remove();
      throw new CgroupError('cgroup_setup_failed', `cannot set up cgroup ${name}: ${(err as Error).message}`);
    }
    return group;
  }

  private writeLimits(l: ResourceLimits): void {
    const bytes = Math.round(l.memoryMb * 1024 * 1024);
    const quota = Math.max(1000, Math.round(l.cpus * CPU_PERIOD_US));
    const { memory, pids, cpu } = this.dirs;
    if (this.version === 'v2') {
      if (memory !== undefined) {
        writeFileSync(join(memory, 'memory.max'), String(bytes));
        // No swap to spill into, and an OOM kill takes the whole sandbox.
        writeOptional(join(memory, 'memory.swap.max'), '0');
        writeOptional(join(memory, 'memory.oom.group'), '1');
      }
      if (pids !== undefined) writeFileSync(join(pids, 'pids.max'), String(l.pids));
      if (cpu !== undefined) writeFileSync(join(cpu, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
      return;
    }
    if (memory !== undefined) {
      writeFileSync(join(memory, 'memory.limit_in_bytes'), String(bytes));
      // memory+swap may not be below memory, so after it.
      writeOptional(join(memory, 'memory.memsw.limit_in_bytes'), String(bytes));
    }
    if (pids !== undefined) writeFileSync(join(pids, 'pids.max'), String(l.pids));
    if (cpu !== undefined) {
      writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(quota));
    }
  }

  /** The files a process writes its pid to, to join the group. */
  get procsFiles(): string[] {
    return this.paths.map((d) => join(d, 'cgroup.procs'));
  }

  /** How many processes the kernel killed in this group for exceeding its memory limit (null: unknown). */
  oomKills(): number | null {
    const dir = this.dirs.memory;
    if (dir === undefined) return null;
    const text = readText(join(dir, this.version === 'v2' ? 'memory.events' : 'memory.oom_control'));
    const m = text === null ? null : /^oom_kill (\d+)$/m.exec(text);
    return m === null ? null : Number(m[1]);
  }

  /**
   * Removes the group once its processes are gone (killing stragglers); resolves false if some
   * directory could not be removed within `timeoutMs`.
   */
  async remove(timeoutMs = 2000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    let ok = true;
    for (const dir of this.paths) {
      for (;;) {
        try {
          rmdirSync(dir);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || Date.now() > until) {
            ok = false;
            break;
          }
          // Processes of a sandbox whose pid 1 died are being killed by the kernel; help them along.
          for (const pid of (readText(join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean)) {
            try {
              process.kill(Number(pid), 'SIGKILL');
            } catch {
              /* gone */
            }
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    }
    return ok;
  }
}

function writeOptional(file: string, value: string): void {
  // Present only with swap accounting (v1) or swap (v2); a fake hierarchy in tests has neither.
  if (existsSync(file)) writeFileSync(file, value);
}

/** The start of the names of a miner's groups: `<miner id>.<miner pid>-`. */
export function groupPrefix(minerId: string, pid = process.pid): string {
  return `${minerId.slice(0, 16)}.${pid}-`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the empty groups of miners that are gone (their pid in the name is not running), left
 * by one that was killed before it could clean up; returns how many.
 */
export function sweepStaleGroups(s: CgroupSupport): number {
  let removed = 0;
  for (const parent of new Set(Object.values(s.parents))) {
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      continue;
    }
    for (const n of names) {
      const m = /^[0-9a-f]{1,64}\.(\d+)-/.exec(n);
      if (m === null || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
      try {
        rmdirSync(join(parent, n));
        removed++;
      } catch {
        /* still in use, or not a group */
      }
    }
  }
  return removed;
}

/** Joins the group as the first thing the process does: a shell writes its own pid, then execs. */
const JOIN_SCRIPT = 'unset PWD; while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';
/** Exit status of a process that could not join its cgroup. */
export const JOIN_FAILED_EXIT = 125;

/** The command that runs `command args` inside `group`. */
export function joinCommand(group: CgroupGroup, command: string, args: string[]): { command: string; args: string[] } {
  return { command: '/bin/sh', args: ['-c', JOIN_SCRIPT, 'cgn-cgroup-join', ...group.procsFiles, '--', command, ...args] };
}
