/**
 * What a DService's sandbox contains. The root is an empty (then read-only) tmpfs; into it go,
 * each at its host path: the DService's package (read-only), the Node binary and the shared
 * libraries it loads (read-only), the packages its package.json dependencies resolve to through
 * node_modules, transitively (read-only), its socket directory (read-write), and a fresh /tmp.
 * Symbolic links on the way to any of these (a merged /lib -> usr/lib, a workspace's
 * node_modules/@scope/x -> ../../packages/x) are recreated as links, so paths resolve inside as
 * they do outside, and only their targets are bound.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

export type MountOp =
  | { kind: 'bind'; path: string; writable: boolean }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'file'; path: string; hideWith: '/dev/null' };

export function isInside(child: string, parent: string): boolean {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/** The mounts of one sandbox; `expose` what it needs, then `args()`. */
export class MountPlan {
  private readonly binds = new Map<string, boolean>();
  private readonly links = new Map<string, string>();
  private readonly hidden = new Set<string>();

  /**
   * Makes `path` visible at the same path inside: binds its real location and recreates each
   * symbolic link met on the way. Paths that do not exist are skipped (returns false).
   */
  expose(path: string, writable = false): boolean {
    let pending = resolve(path);
    for (let hops = 0; hops < 40; hops++) {
      const parts = pending.split(sep).filter(Boolean);
      let real = '/';
      let link: string | null = null;
      let i = 0;
      for (; i < parts.length; i++) {
        const next = join(real, parts[i]!);
        let st;
        try {
          st = lstatSync(next);
        } catch {
          return false;
        }
        if (st.isSymbolicLink()) {
          link = next;
          break;
        }
        real = next;
      }
      if (link === null) {
        this.binds.set(real, (this.binds.get(real) ?? false) || writable);
        return true;
      }
      const target = readlinkSync(link);
      this.links.set(link, target);
      pending = join(resolve(dirname(link), target), ...parts.slice(i + 1));
    }
    return false;
  }

  /** Covers `file` with /dev/null if a bind makes it visible (the miner's key, say). */
  hide(file: string): void {
    this.hidden.add(resolve(file));
  }

  /** The bwrap arguments, in an order bwrap can apply: binds parents first, links where no bind covers them. */
  args(): string[] {
    const binds = [...this.binds.entries()].sort(([a], [b]) => a.length - b.length || a.localeCompare(b));
    const kept: [string, boolean][] = [];
    for (const [path, writable] of binds) {
      // A read-only path inside another bound one is there already.
      if (!writable && kept.some(([p]) => isInside(path, p))) continue;
      kept.push([path, writable]);
    }
    const args: string[] = [];
    for (const [path, writable] of kept) args.push(writable ? '--bind' : '--ro-bind', path, path);
    for (const [path, target] of [...this.links.entries()].sort(([a], [b]) => a.length - b.length)) {
      if (kept.some(([p]) => isInside(path, p))) continue;
      args.push('--symlink', target, path);
    }
    for (const file of this.hidden) {
      if (kept.some(([p]) => isInside(file, p)) && existsSync(file)) args.push('--ro-bind', '/dev/null', file);
    }
    return args;
  }
}

const libsCache = new Map<string, string[]>();

/**
 * The shared libraries `binary` loads (the dynamic loader first), from `ldd`; if ldd is missing or
 * fails, the usual library directories. Cached per binary.
 */
export function sharedLibraries(binary: string): string[] {
  const cached = libsCache.get(binary);
  if (cached !== undefined) return cached;
  const r = spawnSync('ldd', [binary], { encoding: 'utf8', timeout: 10_000, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } });
  let libs: string[] = [];
  if (r.status === 0) {
    for (const line of r.stdout.split('\n')) {
      // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
      const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
      if (m !== null) libs.push(m[1]!);
    }
  }
  if (libs.length === 0) libs = ['/lib', '/lib64', '/usr/lib', '/usr/lib64'].filter((d) => existsSync(d));
  libsCache.set(binary, libs);
  return libs;
}

/** What the Node runtime needs: its binary, the directories of its libraries, the loader's cache. */
export function exposeRuntime(plan: MountPlan, nodePath: string): void {
  plan.expose(nodePath);
  for (const lib of sharedLibraries(nodePath)) {
    // The whole directory: native addons (e.g. sharp) load more of the system's libraries from it.
    plan.expose(statSafe(lib)?.isDirectory() === true ? lib : dirname(lib));
    plan.expose(lib);
  }
  plan.expose('/etc/ld.so.cache');
}

function statSafe(p: string): ReturnType<typeof statSync> | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

const DEPENDENCY_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies'] as const;

function dependencyNames(dir: string): string[] {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return [];
  }
  const names = new Set<string>();
  for (const f of DEPENDENCY_FIELDS) {
    const deps = json[f];
    if (deps !== null && typeof deps === 'object') for (const n of Object.keys(deps)) names.add(n);
  }
  return [...names];
}

/** Where Node finds package `name` from `fromDir`: the nearest `node_modules/<name>` above it. */
function findPackage(name: string, fromDir: string): string | null {
  for (let d = fromDir; ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', name);
    if (statSafe(candidate)?.isDirectory() === true) return candidate;
    if (dirname(d) === d) return null;
  }
}

/**
 * The node_modules locations of the packages `packageDir` depends on, transitively (its
 * package.json's dependencies, optional and peer dependencies; uninstalled optional ones are
 * skipped). Each is resolved as Node does, from the real directory of the package that needs it.
 */
export function dependencyLocations(packageDir: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  if (!existsSync(packageDir)) return found;
  const queue = [realpathSync(packageDir)];
  seen.add(queue[0]!);
  while (queue.length > 0) {
    const dir = queue.shift()!;
    for (const name of dependencyNames(dir)) {
      const loc = findPackage(name, dir);
      if (loc === null) continue;
      const real = realpathSync(loc);
      if (!found.includes(loc)) found.push(loc);
      if (seen.has(real)) continue;
      seen.add(real);
      queue.push(real);
    }
  }
  return found;
}
