/**
 * How a DService process is started: inside bubblewrap (no network, read-only root, its own
 * /tmp, its own pid/ipc/uts namespaces, no capabilities) or, without bwrap, as a plain `node`
 * process. Either way it gets a minimal environment: nothing of the miner's, nothing secret.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { linkSocketPathFor, type SandboxMode } from './options.js';

export interface SandboxSpec {
  /** `bwrap` or `none` (resolve `auto` with `resolveSandbox` first). */
  mode: 'bwrap' | 'none';
  /** Absolute path of the DService package (working directory of the process). */
  packageDir: string;
  /** Absolute path of the entry file. */
  entryPath: string;
  /** Directory holding the DService's socket: the only writable place it shares with the miner. */
  socketDir: string;
  socketPath: string;
  /** The miner's run directory (all DServices' socket directories); hidden inside the sandbox except `socketDir`. */
  runDir: string;
  maxBodyBytes: number;
  /** Files to hide inside the sandbox (the miner's key). */
  hide?: readonly string[];
  /** The node binary; default the one running the miner. */
  nodePath?: string;
  /** bwrap binary; default `bwrap` on PATH. */
  bwrapPath?: string;
}

export interface SandboxCommand {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /**
   * With bwrap: the file descriptor (in the spawned process) on which bwrap writes JSON with
   * `child-pid`, the pid of the DService itself; spawn with a pipe at that stdio index.
   */
  infoFd: number | null;
}

/** The environment of a DService process: its sockets (HTTP and link), its body limit, production mode. */
export function dserviceEnv(spec: Pick<SandboxSpec, 'socketPath' | 'maxBodyBytes'>, mode: 'bwrap' | 'none'): Record<string, string> {
  const env: Record<string, string> = {
    CGN_SOCKET: spec.socketPath,
    CGN_LINK_SOCKET: linkSocketPathFor(spec.socketPath),
    CGN_MAX_BODY_BYTES: String(spec.maxBodyBytes),
    NODE_ENV: 'production',
    PATH: '/usr/local/bin:/usr/bin:/bin',
  };
  if (mode === 'bwrap') env['HOME'] = '/tmp';
  return env;
}

/**
 * The highest directory at or above `dir` (below /tmp) that holds a package.json or
 * node_modules: what module resolution from the package may need.
 */
export function projectRoot(dir: string): string {
  let root = dir;
  for (let d = dir; isInside(d, '/tmp') && d !== '/tmp'; d = dirname(d)) {
    if (existsSync(join(d, 'package.json')) || existsSync(join(d, 'node_modules'))) root = d;
  }
  return root;
}

function isInside(child: string, parent: string): boolean {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

/** The command line that starts a DService as `spec` says. */
export function buildSandboxCommand(spec: SandboxSpec): SandboxCommand {
  const node = spec.nodePath ?? process.execPath;
  const env = dserviceEnv(spec, spec.mode);
  if (spec.mode === 'none') {
    return { command: node, args: [spec.entryPath], cwd: spec.packageDir, env, infoFd: null };
  }
  const infoFd = 3;
  const args = [
    '--ro-bind', '/', '/',
    '--dev', '/dev',
    '--proc', '/proc',
    '--tmpfs', '/tmp',
  ];
  // The other DServices' sockets stay out of reach: an empty run directory, then only our own.
  if (!isInside(spec.runDir, '/tmp')) args.push('--tmpfs', spec.runDir);
  args.push('--bind', spec.socketDir, spec.socketDir);
  // A package below /tmp would be hidden by the tmpfs: bring back its project (the package and
  // the node_modules it resolves through, e.g. a workspace checkout), read-only.
  const restored = isInside(spec.packageDir, '/tmp') ? projectRoot(spec.packageDir) : null;
  if (restored !== null) args.push('--ro-bind', restored, restored);
  for (const file of spec.hide ?? []) {
    const visible = !isInside(file, '/tmp') || (restored !== null && isInside(file, restored));
    if (visible && !isInside(file, spec.runDir)) args.push('--ro-bind', '/dev/null', file);
  }
  args.push(
    '--unshare-all',
    '--hostname', 'dservice',
    '--cap-drop', 'ALL',
    '--die-with-parent',
    '--new-session',
    // The DService is pid 1 of its namespace, so a SIGTERM from the miner reaches it (its handler
    // runs) instead of stopping bwrap and SIGKILLing it.
    '--as-pid-1',
    '--info-fd', String(infoFd),
    '--chdir', spec.packageDir,
    '--',
    node, spec.entryPath,
  );
  return { command: spec.bwrapPath ?? 'bwrap', args, cwd: spec.packageDir, env, infoFd };
}

/** The flags `bwrapProblem` tries: those a DService gets, without its binds (`bwrap --ro-bind / / true` and more). */
const PROBE_ARGS = [
  '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--unshare-all', '--hostname', 'dservice',
  '--cap-drop', 'ALL', '--die-with-parent', '--new-session', '--as-pid-1', '--', 'true',
];

const probes = new Map<string, Promise<string | null>>();

/**
 * Whether bwrap runs here with the namespaces the sandbox needs (checked once per binary, then
 * cached). Resolves to null if it works, else to the reason it does not.
 */
export function bwrapProblem(bwrapPath = 'bwrap'): Promise<string | null> {
  let p = probes.get(bwrapPath);
  if (p === undefined) {
    p = new Promise((resolve) => {
      let err = '';
      const child = spawn(bwrapPath, PROBE_ARGS, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.once('error', (e) => resolve(`${bwrapPath} cannot run: ${e.message}`));
      child.once('close', (code, signal) => {
        if (code === 0) resolve(null);
        else resolve(`${bwrapPath} failed (${signal ?? `exit ${code}`}): ${err.trim().slice(0, 500) || 'no message'}`);
      });
    });
    probes.set(bwrapPath, p);
  }
  return p;
}

/** Forgets cached probe results (tests). */
export function resetBwrapProbe(): void {
  probes.clear();
}

export interface ResolvedSandbox {
  mode: 'bwrap' | 'none';
  /** Why `auto` fell back to no sandbox. */
  warning: string | null;
}

/** Turns the configured mode into the one to use; `bwrap` that does not work is an error. */
export async function resolveSandbox(mode: SandboxMode, bwrapPath = 'bwrap'): Promise<ResolvedSandbox> {
  if (mode === 'none') return { mode: 'none', warning: null };
  const problem = await bwrapProblem(bwrapPath);
  if (problem === null) return { mode: 'bwrap', warning: null };
  if (mode === 'bwrap') throw new Error(`sandbox "bwrap" was asked for but bubblewrap does not work here: ${problem}`);
  return {
    mode: 'none',
    warning: `bubblewrap does not work here (${problem}); DServices run as plain processes WITHOUT a sandbox (network and filesystem open to them)`,
  };
}
