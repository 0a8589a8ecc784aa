/**
 * How a DService process is started: inside bubblewrap (no network, only the host paths it needs,
 * read-only, its own /tmp, its own pid/ipc/uts namespaces, no capabilities) or, without bwrap, as
 * a plain `node` process; in either case inside its cgroup when it has one. Either way it gets a
 * minimal environment: nothing of the miner's, nothing secret.
 */
import { spawn } from 'node:child_process';
import { joinCommand, type CgroupGroup } from './cgroup.js';
import { linkSocketPathFor, type SandboxMode } from './options.js';
import { MountPlan, dependencyLocations, exposeRuntime } from './sandbox-mounts.js';

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
  /** The miner's run directory (all DServices' socket directories); only `socketDir` of it is visible inside. */
  runDir: string;
  maxBodyBytes: number;
  /** Files to hide inside the sandbox (the miner's key). */
  hide?: readonly string[];
  /** The node binary; default the one running the miner. */
  nodePath?: string;
  /** bwrap binary; default `bwrap` on PATH. */
  bwrapPath?: string;
  /** The cgroup the process joins before anything else runs; none: no limits. */
  cgroup?: CgroupGroup | null;
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

/** The command line that starts a DService as `spec` says (inside its cgroup, when it has one). */
export function buildSandboxCommand(spec: SandboxSpec): SandboxCommand {
  const node = spec.nodePath ?? process.execPath;
  const env = dserviceEnv(spec, spec.mode);
  const inGroup = (command: string, args: string[]): { command: string; args: string[] } =>
    spec.cgroup != null ? joinCommand(spec.cgroup, command, args) : { command, args };
  if (spec.mode === 'none') {
    return { ...inGroup(node, [spec.entryPath]), cwd: spec.packageDir, env, infoFd: null };
  }
  const infoFd = 3;
  const args = [...mountArgs(spec, node)];
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
  return { ...inGroup(spec.bwrapPath ?? 'bwrap', args), cwd: spec.packageDir, env, infoFd };
}

/**
 * The filesystem a DService sees (see sandbox-mounts.ts): an empty root made read-only at the
 * end, minimal /dev and /proc, its own /tmp, and only the host paths it needs.
 */
export function mountArgs(spec: Pick<SandboxSpec, 'packageDir' | 'socketDir' | 'hide'>, nodePath: string): string[] {
  const plan = new MountPlan();
  exposeRuntime(plan, nodePath);
  plan.expose(spec.packageDir);
  for (const dep of dependencyLocations(spec.packageDir)) plan.expose(dep);
  plan.expose(spec.socketDir, true);
  for (const file of spec.hide ?? []) plan.hide(file);
  return ['--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', ...plan.args(), '--remount-ro', '/'];
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
