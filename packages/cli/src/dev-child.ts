/**
 * The processes of `cgn dev`: each a `cgn <command>` child whose stderr goes to its log file and
 * whose last lines are kept in memory, so that a child that dies before it is ready is reported
 * with its own words (and a port in use with its fix) rather than only an exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { CGN_BIN, REPO_ROOT } from './paths.js';
import { serverNodeArgs } from './server-flags.js';
import { PortInUseError, addrInUsePort, type PlannedPort } from './dev-ports.js';

export interface Child {
  role: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
  logFile?: string;
  /** The last lines the child wrote to stderr (its log). */
  tail?: () => string[];
  /** Resolves once the child exited and its output streams are drained. */
  closed?: Promise<void>;
}

const TAIL_LINES = 12;

export function startChild(role: string, args: string[], logFile: string, env: NodeJS.ProcessEnv): Child {
  const proc = spawn(process.execPath, [...serverNodeArgs(), CGN_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: REPO_ROOT });
  const log = createWriteStream(logFile, { flags: 'a' });
  proc.stderr!.pipe(log);
  const lines: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => {
    lines.push(l);
    if (lines.length > TAIL_LINES) lines.shift();
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const closed = new Promise<void>((r) => proc.once('close', () => r()));
  return { role, proc, exited, logFile, tail: () => [...lines], closed };
}

/** A JSON log line made readable ("error: listen EADDRINUSE …"); other lines as they are. */
export function readableLogLine(line: string): string {
  try {
    const j = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
    if (typeof j !== 'object' || j === null || typeof j.msg !== 'string') return line;
    const level = j.level === undefined ? '' : j.level >= 50 ? 'error: ' : j.level >= 40 ? 'warning: ' : '';
    return `${level}${j.msg}${j.err?.message !== undefined && !j.msg.includes(j.err.message) ? `: ${j.err.message}` : ''}`;
  } catch {
    return line;
  }
}

/**
 * Why a child ended before it was ready: a PortInUseError when its log says EADDRINUSE (matched to
 * the planned port, so the message names the flag), else its exit code and last log lines.
 */
export function earlyExitError(child: Pick<Child, 'role' | 'logFile'>, code: number | null, tail: string[], planned: PlannedPort[]): Error {
  const port = addrInUsePort(tail);
  if (port !== null) {
    const p = planned.find((x) => x.port === port);
    if (p !== undefined) return new PortInUseError(p);
    return new Error(`${child.role}: port ${port} is in use: stop what uses it or choose another port`);
  }
  const last = tail.map(readableLogLine).filter((l) => l.trim() !== '');
  const where = child.logFile === undefined ? '' : ` (log: ${child.logFile})`;
  return new Error(`${child.role} exited with code ${code} before it was ready${where}${last.length === 0 ? '' : `; its last log lines:\n${last.map((l) => `    ${l}`).join('\n')}`}`);
}

/** The child's first JSON line on stdout (its ready line); rejects with why when it ends first. */
export function firstJsonLine(child: Child, timeoutMs: number, planned: PlannedPort[] = []): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const rl = createInterface({ input: child.proc.stdout! });
    const timer = setTimeout(() => reject(new Error(`${child.role} did not become ready within ${timeoutMs} ms${child.logFile ? `; see ${child.logFile}` : ''}`)), timeoutMs);
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        clearTimeout(timer);
        resolvePromise(j);
      } catch {
        /* not JSON: ignore */
      }
    });
    void child.exited.then(async (code) => {
      clearTimeout(timer);
      // The log's last lines arrive with the streams' end, which may follow the exit.
      await Promise.race([child.closed, new Promise((r) => setTimeout(r, 1000))]);
      reject(earlyExitError(child, code, child.tail?.() ?? [], planned));
    });
  });
}

/** Rejects with why once the child ends (for racing against a wait on what it should do). */
export function exitAsError(child: Child, planned: PlannedPort[] = []): Promise<never> {
  return new Promise((_, reject) => {
    void child.exited.then(async (code) => {
      await Promise.race([child.closed, new Promise((r) => setTimeout(r, 1000))]);
      reject(earlyExitError(child, code, child.tail?.() ?? [], planned));
    });
  });
}

/** Waits for a signalled child to exit; after `graceMs`, says so and SIGKILLs it. */
export async function exitWithin(child: Child, graceMs: number, logFile: string): Promise<void> {
  const timer = setTimeout(() => {
    process.stderr.write(`cgn dev: ${child.role} (pid ${child.proc.pid}) did not stop within ${graceMs / 1000} s of SIGTERM; killing it (its log: ${logFile})\n`);
    child.proc.kill('SIGKILL');
  }, graceMs);
  await child.exited;
  clearTimeout(timer);
}
