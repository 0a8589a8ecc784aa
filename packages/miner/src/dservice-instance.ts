/**
 * One running DService: its process (sandboxed or not), its socket, its health.
 *
 * `start()` spawns the process and waits until `GET /healthz` answers over the socket (polled
 * with a short backoff, bounded by `startTimeoutMs`). Then a health check runs every
 * `healthIntervalMs`; `healthFailures` failures in a row, or an exit, restart the process with
 * exponential backoff. `stop()` sends SIGTERM and SIGKILL after `stopGraceMs`. Each instance has
 * its own socket directory and process; its stderr goes to the log with the DService's name.
 * With cgroups, each process incarnation runs in its own group holding the descriptor's CPU,
 * memory and process limits; a process the kernel kills for its memory is reported as such
 * (`lastExit.oom`) and restarted like any crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { DServicePackage } from './dservice-package.js';
import { errorText, type Log } from './log.js';
import { runWork, type ProxyLimits, type ProxyRequest, type WorkOutcome } from './proxy.js';
import { DServiceHttp, checkHealth } from './dservice-http.js';
import { DServiceLink } from './link-client.js';
import type { Cancellation } from './cancellation.js';
import { linkSocketPathFor } from './options.js';
import { buildSandboxCommand } from './sandbox.js';
import { CgroupGroup, JOIN_FAILED_EXIT, limitsOf, type CgroupSupport, type CgroupVersion, type ResourceLimits } from './cgroup.js';

export type InstanceState = 'idle' | 'starting' | 'ready' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export interface InstanceOptions {
  pkg: DServicePackage;
  socketPath: string;
  runDir: string;
  sandbox: 'bwrap' | 'none';
  /** Files the DService must not see (inside bwrap). */
  hide: readonly string[];
  /** Where limits are enforced; null (or no version): the DService runs without limits. */
  cgroups?: CgroupSupport | null;
  /** Groups are named `<cgroupPrefix>-<incarnation>`; default `<pid>-<name>`. */
  cgroupPrefix?: string;
  log: Log;
  healthIntervalMs: number;
  healthTimeoutMs: number;
  healthFailures: number;
  startTimeoutMs: number;
  stopGraceMs: number;
  restartBaseMs: number;
  restartCapMs: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The kernel killed it for exceeding its memory limit. */
  oom: boolean;
  /** Milliseconds since the epoch. */
  at: number;
}

export interface InstanceStatus {
  name: string;
  version: string;
  state: InstanceState;
  sandbox: 'bwrap' | 'none';
  /** Pid of the process the miner spawned (bwrap, or node without a sandbox). */
  pid: number | null;
  /** Pid of the DService's node process, when known (with bwrap it differs from `pid`). */
  dservicePid: number | null;
  restarts: number;
  lastExit: ExitInfo | null;
  socketPath: string;
  /** How work reaches it: the DService link (@cgn/sdk DServices) or HTTP. */
  transport: 'link' | 'http';
  /** Its limits (from the descriptor) and how they are enforced (`null`: they are not). */
  limits: ResourceLimits & { enforcedBy: `cgroup-${CgroupVersion}` | null; cgroups: string[] };
  /** Times the kernel killed it for exceeding its memory limit. */
  oomKills: number;
}

export interface InstanceEvents {
  state: [state: InstanceState, previous: InstanceState];
  exit: [info: ExitInfo];
}

/** A process incarnation. */
interface Proc {
  child: ChildProcess;
  /** The DService's own pid (from bwrap's info fd), or the child's pid without a sandbox. */
  innerPid: number | null;
  exit: ExitInfo | null;
  exited: Promise<ExitInfo>;
  /** Its cgroup, removed once it exited. */
  cgroup: CgroupGroup | null;
  /** Settles once the cgroup is removed (at once without one). */
  cleaned: Promise<void>;
}

const STDERR_TAIL = 20;

export class DServiceInstance extends EventEmitter<InstanceEvents> {
  readonly name: string;
  readonly socketPath: string;
  /** Keep-alive connections for work (as many as the DService's concurrency). */
  readonly http: DServiceHttp;
  /** The DService link (framed, batched) when the DService serves one; HTTP over `http` otherwise. */
  private link: DServiceLink | null = null;
  /** What the proxy accepts from this DService. */
  readonly limits: ProxyLimits;
  /** One connection for readiness and health checks, so they never queue behind work. */
  private readonly probe: DServiceHttp;
  private stateValue: InstanceState = 'idle';
  private proc: Proc | null = null;
  private restarts = 0;
  private attempt = 0;
  private lastExit: ExitInfo | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private readySince = 0;
  private stopping: Promise<void> | null = null;
  private readonly stderrTail: string[] = [];
  private readonly log: Log;
  private readonly resourceLimits: ResourceLimits;
  private incarnation = 0;
  private oomKills = 0;

  constructor(private readonly opts: InstanceOptions) {
    super();
    this.name = opts.pkg.descriptor.name;
    this.socketPath = opts.socketPath;
    this.log = opts.log;
    this.limits = { maxBodyBytes: opts.pkg.descriptor.maxBodyBytes };
    this.resourceLimits = limitsOf(opts.pkg.descriptor);
    // Work has no timeout of its own here: its deadline cancels it (see `Cancellation`).
    this.http = new DServiceHttp(this.socketPath, { maxSockets: opts.pkg.descriptor.concurrency, idleMs: 30_000 });
    this.probe = new DServiceHttp(this.socketPath, { maxSockets: 1, idleMs: 30_000 });
  }

  get state(): InstanceState {
    return this.stateValue;
  }

  get ready(): boolean {
    return this.stateValue === 'ready';
  }

  status(): InstanceStatus {
    const p = this.proc;
    return {
      name: this.name,
      version: this.opts.pkg.descriptor.version,
      state: this.stateValue,
      sandbox: this.opts.sandbox,
      pid: p?.exit === null ? (p.child.pid ?? null) : null,
      dservicePid: p?.exit === null ? p.innerPid : null,
      restarts: this.restarts,
      lastExit: this.lastExit,
      socketPath: this.socketPath,
      transport: this.transport,
      limits: {
        ...this.resourceLimits,
        enforcedBy: this.cgroupSupport === null ? null : `cgroup-${this.cgroupSupport.version!}`,
        // The running process's groups (one per hierarchy).
        cgroups: p?.exit === null ? (p.cgroup?.paths ?? []) : [],
      },
      oomKills: this.oomKills,
    };
  }

  /** The cgroups that enforce this DService's limits, if any. */
  private get cgroupSupport(): CgroupSupport | null {
    const s = this.opts.cgroups;
    return s === undefined || s === null || s.version === null ? null : s;
  }

  /** Runs one work unit on this instance: over the link when it has one, else over HTTP. */
  run(work: ProxyRequest, cancel?: Cancellation): Promise<WorkOutcome> {
    return this.link !== null ? this.link.run(work, this.limits, cancel) : runWork(this.http, work, this.limits, cancel);
  }

  /** Which transport work takes to this instance. */
  get transport(): 'link' | 'http' {
    return this.link !== null ? 'link' : 'http';
  }

  private setState(s: InstanceState): void {
    const prev = this.stateValue;
    if (prev === s) return;
    if (prev === 'ready') {
      this.link?.close();
      this.link = null;
    }
    this.stateValue = s;
    this.emit('state', s, prev);
  }

  /** Starts the process and resolves once it answers health checks; rejects (state `failed`) if it does not. */
  async start(): Promise<void> {
    if (this.stateValue !== 'idle') throw new Error(`DService ${this.name} was already started`);
    this.setState('starting');
    try {
      await this.launch();
    } catch (err) {
      if (this.isStopping()) return;
      this.setState('failed');
      throw new Error(`DService ${this.name} did not start: ${errorText(err)}${this.tailText()}`);
    }
    if (this.isStopping()) return;
    this.becameReady();
  }

  private isStopping(): boolean {
    return this.stateValue === 'stopping' || this.stateValue === 'stopped';
  }

  private tailText(): string {
    return this.stderrTail.length === 0 ? '' : `\n--- last stderr lines of ${this.name} ---\n${this.stderrTail.join('\n')}`;
  }

  private becameReady(): void {
    this.readySince = Date.now();
    // A DService built with @cgn/sdk listens on the link socket before it answers health checks.
    const linkPath = linkSocketPathFor(this.socketPath);
    this.link = existsSync(linkPath) ? new DServiceLink(linkPath, this.limits.maxBodyBytes) : null;
    this.setState('ready');
    this.scheduleHealth();
  }

  /** Spawns a process and waits for its health check; on failure kills it and rejects. */
  private async launch(): Promise<void> {
    const proc = this.spawnProcess();
    const deadline = Date.now() + this.opts.startTimeoutMs;
    let delay = 5;
    for (;;) {
      if (proc.exit !== null) throw new Error(`the process exited (${describeExit(proc.exit)}) before it answered GET /healthz`);
      if (this.isStopping()) throw new Error('stopped while starting');
      // Ready when it answers, and (in bwrap) once bwrap has told us the DService's pid.
      if ((await this.healthy()) && proc.innerPid !== null) return;
      if (Date.now() >= deadline) {
        await this.kill(proc);
        throw new Error(`no answer to GET /healthz on ${this.socketPath} within ${this.opts.startTimeoutMs} ms`);
      }
      await Promise.race([proc.exited, new Promise((r) => setTimeout(r, delay))]);
      delay = Math.min(delay * 2, 100);
    }
  }

  private spawnProcess(): Proc {
    const { pkg } = this.opts;
    const socketDir = dirname(this.socketPath);
    mkdirSync(socketDir, { recursive: true, mode: 0o700 });
    rmSync(this.socketPath, { force: true });
    rmSync(linkSocketPathFor(this.socketPath), { force: true });
    const support = this.cgroupSupport;
    const cgroup = support === null ? null : CgroupGroup.create(support, `${this.opts.cgroupPrefix ?? `${process.pid}-${this.name}`}-${++this.incarnation}`, this.resourceLimits);
    const cmd = buildSandboxCommand({
      mode: this.opts.sandbox,
      packageDir: pkg.dir,
      entryPath: pkg.entryPath,
      socketDir,
      socketPath: this.socketPath,
      runDir: this.opts.runDir,
      maxBodyBytes: pkg.descriptor.maxBodyBytes,
      hide: this.opts.hide,
      cgroup,
    });
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'ignore', 'pipe'];
    if (cmd.infoFd !== null) stdio[cmd.infoFd] = 'pipe';
    // Own process group: a Ctrl-C at the miner's terminal must not reach the DService while the
    // miner drains its work.
    const child = spawn(cmd.command, cmd.args, { cwd: cmd.cwd, env: cmd.env, stdio, detached: true });
    let onExit!: (e: ExitInfo) => void;
    const proc: Proc = {
      child,
      innerPid: cmd.infoFd === null ? (child.pid ?? null) : null,
      exit: null,
      exited: new Promise<ExitInfo>((r) => (onExit = r)),
      cgroup,
      cleaned: Promise.resolve(),
    };
    this.proc = proc;
    const log = this.log.child({ pid: child.pid });
    log.debug({ command: cmd.command, args: cmd.args }, 'starting DService process');

    if (cmd.infoFd !== null) {
      const info = child.stdio[cmd.infoFd] as NodeJS.ReadableStream | null;
      let text = '';
      info?.setEncoding('utf8');
      info?.on('data', (d: string) => {
        text += d;
        try {
          const pid = (JSON.parse(text) as Record<string, unknown>)['child-pid'];
          if (typeof pid === 'number') proc.innerPid = pid;
        } catch {
          /* not complete yet */
        }
      });
      info?.on('error', () => {});
    }
    if (child.stderr !== null) {
      createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
        const text = line.length > 4096 ? `${line.slice(0, 4096)}…` : line;
        this.stderrTail.push(text);
        if (this.stderrTail.length > STDERR_TAIL) this.stderrTail.shift();
        log.info({ stream: 'stderr' }, text);
      });
    }
    const exited = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (proc.exit !== null) return;
      // bwrap reports its DService's death by a signal as 128 + the signal.
      const killed = signal === 'SIGKILL' || code === 137;
      const oom = proc.cgroup !== null && killed && (proc.cgroup.oomKills() ?? 0) > 0;
      proc.exit = { code, signal, oom, at: Date.now() };
      if (oom) {
        this.oomKills++;
        log.warn({ memoryMb: this.resourceLimits.memoryMb, oomKills: this.oomKills }, `DService was killed for exceeding its memory limit of ${this.resourceLimits.memoryMb} MB`);
      }
      if (code === JOIN_FAILED_EXIT && proc.cgroup !== null) log.error({ cgroup: proc.cgroup.paths }, 'the DService process could not join its cgroup');
      if (proc.cgroup !== null) {
        const group = proc.cgroup;
        proc.cleaned = group.remove().then((ok) => {
          if (!ok) log.warn({ cgroup: group.paths }, 'cannot remove the cgroup of an exited DService process');
        });
      }
      this.lastExit = proc.exit;
      onExit(proc.exit);
      this.emit('exit', proc.exit);
      this.onProcessExit(proc);
    };
    child.once('error', (err) => {
      log.error({ err: err.message }, 'cannot start DService process');
      // 'exit' does not follow when the spawn itself failed.
      if (child.pid === undefined) exited(null, null);
    });
    child.once('exit', exited);
    return proc;
  }

  private onProcessExit(proc: Proc): void {
    if (proc !== this.proc || this.stateValue !== 'ready') return; // starting: launch() sees it; stopping: expected
    this.clearHealth();
    this.log.warn({ exit: proc.exit, restarts: this.restarts }, `DService process exited (${describeExit(proc.exit!)}); restarting`);
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.isStopping()) return;
    // A process that stayed up a while starts the backoff afresh.
    if (this.readySince > 0 && Date.now() - this.readySince > 30_000) this.attempt = 0;
    const delay = Math.min(this.opts.restartCapMs, this.opts.restartBaseMs * 2 ** this.attempt);
    this.attempt++;
    this.setState('restarting');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      void this.restart();
    }, delay);
  }

  private async restart(): Promise<void> {
    if (this.isStopping()) return;
    this.restarts++;
    try {
      await this.launch();
    } catch (err) {
      if (this.isStopping()) return;
      this.log.warn({ err: errorText(err), attempt: this.attempt }, 'DService restart failed; retrying');
      await this.kill(this.proc);
      this.scheduleRestart();
      return;
    }
    if (this.isStopping()) return;
    this.log.info({ restarts: this.restarts }, 'DService restarted');
    this.becameReady();
  }

  private healthy(): Promise<boolean> {
    return checkHealth(this.probe, this.opts.healthTimeoutMs);
  }

  private scheduleHealth(): void {
    this.clearHealth();
    let failures = 0;
    const check = async (): Promise<void> => {
      this.healthTimer = null;
      const proc = this.proc;
      if (this.stateValue !== 'ready' || proc === null) return;
      const ok = await this.healthy();
      if (this.stateValue !== 'ready' || proc !== this.proc) return;
      failures = ok ? 0 : failures + 1;
      if (failures >= this.opts.healthFailures) {
        this.log.warn({ failures }, 'DService failed its health checks; restarting it');
        // The exit handler restarts it.
        await this.kill(proc);
        return;
      }
      if (!ok) this.log.warn({ failures }, 'DService health check failed');
      this.healthTimer = setTimeout(() => void check(), this.opts.healthIntervalMs);
    };
    this.healthTimer = setTimeout(() => void check(), this.opts.healthIntervalMs);
  }

  private clearHealth(): void {
    if (this.healthTimer !== null) clearTimeout(this.healthTimer);
    this.healthTimer = null;
  }

  /** Kills a process at once (SIGKILL to it and its DService) and waits for its exit. */
  private async kill(proc: Proc | null): Promise<void> {
    if (proc === null || proc.exit !== null) return;
    signalProc(proc, 'SIGKILL', this.opts.sandbox);
    await proc.exited;
  }

  /** SIGKILL the process now, without waiting (a forced exit of the miner). */
  killNow(): void {
    const p = this.proc;
    if (p !== null && p.exit === null) signalProc(p, 'SIGKILL', this.opts.sandbox);
  }

  /** SIGTERM, then SIGKILL after the grace period; closes the sockets. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.setState('stopping');
    this.clearHealth();
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    // Our connections go first: a DService closing gracefully waits for open connections, and
    // the work on them is finished (the miner drained) or abandoned by now.
    this.http.close();
    this.probe.close();
    const proc = this.proc;
    if (proc !== null && proc.exit === null) {
      signalProc(proc, 'SIGTERM', this.opts.sandbox);
      let timer: NodeJS.Timeout | undefined;
      const graceful = await Promise.race([
        proc.exited.then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.opts.stopGraceMs))),
      ]);
      clearTimeout(timer);
      if (!graceful) {
        this.log.warn({ graceMs: this.opts.stopGraceMs }, 'DService did not exit after SIGTERM; killing it');
        await this.kill(proc);
      }
    }
    if (proc !== null) await proc.cleaned;
    rmSync(dirname(this.socketPath), { recursive: true, force: true });
    this.setState('stopped');
  }
}

function describeExit(e: ExitInfo): string {
  const how = e.signal !== null ? `signal ${e.signal}` : `exit code ${e.code}`;
  return e.oom ? `${how}: killed for exceeding its memory limit` : how;
}

/**
 * Signals a DService process. Inside bwrap the DService is pid 1 of its namespace: SIGTERM goes
 * to it (bwrap would die of it and SIGKILL the DService); SIGKILL goes to both. Without a
 * sandbox the signal goes to the process group (the DService and anything it started).
 */
function signalProc(proc: Proc, signal: NodeJS.Signals, mode: 'bwrap' | 'none'): void {
  const outer = proc.child.pid;
  const send = (pid: number | null | undefined): boolean => {
    if (pid === null || pid === undefined) return false;
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  };
  if (mode === 'bwrap') {
    if (signal === 'SIGKILL') {
      send(proc.innerPid);
      send(outer);
    } else if (!send(proc.innerPid)) {
      send(outer);
    }
    return;
  }
  if (outer !== undefined && !send(-outer)) send(outer);
}
