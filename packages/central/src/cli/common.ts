/** Shared pieces of the `cgn account|dservice|miner register|central` commands. */
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createInterface } from 'node:readline';

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** Reads all of stdin (for --password-stdin). */
  readStdin(): Promise<string>;
  /** Asks without echo; null when there is no terminal. */
  prompt(question: string): Promise<string | null>;
  env: Record<string, string | undefined>;
  cwd: string;
}

export const processIo = (): CliIo => ({
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
  prompt: (question) => {
    if (!process.stdin.isTTY) return Promise.resolve(null);
    return new Promise((res) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
      const w = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream };
      let asked = false;
      w._writeToOutput = (s: string) => {
        if (!asked) {
          asked = true;
          process.stdout.write(s);
        }
      };
      rl.question(question, (answer) => {
        process.stdout.write('\n');
        rl.close();
        res(answer);
      });
    });
  },
  env: process.env,
  cwd: process.cwd(),
});

export class UsageError extends Error {}
export class CommandError extends Error {}

export const DEFAULT_CENTRAL_URL = 'http://127.0.0.1:7700';
export const DEFAULT_SESSION_FILE = '.cgn/central-session.json';

export const COMMON_OPTIONS = {
  central: { type: 'string' },
  session: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export const COMMON_HELP = `Common options:
  --central URL      central's URL (default: centralUrl from .cgn/dev.json, else ${DEFAULT_CENTRAL_URL})
  --session FILE     where the login session is kept (default ${DEFAULT_SESSION_FILE}, mode 0600)
  --json             print machine-readable JSON
  -h, --help         show this help
`;

type Parsed<O> = ReturnType<typeof parseArgs<{ args: string[]; options: typeof COMMON_OPTIONS & O; allowPositionals: true; strict: true }>>;

export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true }) as Parsed<O>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export interface Session {
  centralUrl: string;
  token: string;
  login: string;
  expiresAt: number;
}

export function centralUrlFrom(values: { central?: string | undefined }, io: CliIo): string {
  if (values.central !== undefined) {
    try {
      const u = new URL(values.central);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new UsageError(`--central must be an http(s) URL, got "${values.central}"`);
    }
    return values.central.replace(/\/+$/, '');
  }
  if (io.env['CGN_CENTRAL_URL']) return io.env['CGN_CENTRAL_URL'].replace(/\/+$/, '');
  const dev = resolve(io.cwd, '.cgn/dev.json');
  if (existsSync(dev)) {
    try {
      const u = (JSON.parse(readFileSync(dev, 'utf8')) as { centralUrl?: unknown }).centralUrl;
      if (typeof u === 'string' && u !== '') return u.replace(/\/+$/, '');
    } catch {
      /* ignore a broken dev.json */
    }
  }
  return DEFAULT_CENTRAL_URL;
}

export const sessionPath = (values: { session?: string | undefined }, io: CliIo): string => resolve(io.cwd, values.session ?? DEFAULT_SESSION_FILE);

export function readSession(path: string, io: CliIo): Session | null {
  if (io.env['CGN_SESSION']) return { centralUrl: '', token: io.env['CGN_SESSION'], login: '(from CGN_SESSION)', expiresAt: Infinity };
  if (!existsSync(path)) return null;
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as Session;
    return typeof s.token === 'string' ? s : null;
  } catch {
    return null;
  }
}

export function writeSession(path: string, s: Session): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(s, null, 2) + '\n', { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** A password from --password-stdin, an environment variable, or a prompt; never from argv. */
export async function readPassword(io: CliIo, opts: { stdin: boolean; envVar: string; prompt: string; stdinLine?: number }): Promise<string> {
  if (opts.stdin) {
    const lines = (await io.readStdin()).split(/\r?\n/);
    const p = lines[opts.stdinLine ?? 0];
    if (p === undefined || p === '') throw new UsageError('--password-stdin: no password on standard input');
    return p;
  }
  const e = io.env[opts.envVar];
  if (e !== undefined && e !== '') return e;
  const p = await io.prompt(opts.prompt);
  if (p === null || p === '') throw new UsageError(`no password: use --password-stdin, set ${opts.envVar}, or run in a terminal`);
  return p;
}

export interface Api {
  url: string;
  call(method: string, path: string, body?: unknown): Promise<any>;
}

/** An HTTP client for central; non-2xx answers become CommandErrors with central's reason. */
export function api(url: string, token: string | null): Api {
  return {
    url,
    async call(method, path, body) {
      let res: Response;
      try {
        res = await fetch(url + path, {
          method,
          // Bytes go as they are (a package archive); anything else as JSON.
          headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': body instanceof Uint8Array ? 'application/gzip' : 'application/json' }) },
          ...(body === undefined ? {} : { body: body instanceof Uint8Array ? body : JSON.stringify(body) }),
          signal: AbortSignal.timeout(body instanceof Uint8Array ? 600_000 : 30_000),
        });
      } catch (err) {
        throw new CommandError(`cannot reach central at ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
      }
      const text = await res.text();
      let parsed: any = null;
      try {
        parsed = text === '' ? null : JSON.parse(text);
      } catch {
        parsed = text;
      }
      if (!res.ok) {
        const detail = parsed && typeof parsed === 'object' ? (parsed.detail ?? parsed.error_description ?? JSON.stringify(parsed)) : String(parsed);
        const retry = res.headers.get('retry-after');
        throw new CommandError(`${res.status} ${parsed?.code ?? ''}: ${detail}${retry ? ` (retry after ${retry} s)` : ''}`.replace(/ +:/, ':'));
      }
      return parsed;
    },
  };
}

export function sessionApi(values: { central?: string | undefined; session?: string | undefined }, io: CliIo): Api {
  const path = sessionPath(values, io);
  const s = readSession(path, io);
  if (s === null) throw new CommandError('not logged in: run "cgn account login --login NAME" first');
  const url = values.central !== undefined || s.centralUrl === '' ? centralUrlFrom(values, io) : s.centralUrl;
  return api(url, s.token);
}

/** Runs a command body with uniform error handling; returns the exit code. */
export async function run(name: string, usage: string, io: CliIo, body: () => Promise<void>): Promise<number> {
  try {
    await body();
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`${name}: ${err.message}\n\n${usage}`);
      return 2;
    }
    io.stderr.write(`${name}: ${(err as Error).message}\n`);
    return 1;
  }
}

export function finish(code: number, injected: boolean): number {
  if (!injected && code !== 0) process.exitCode = code;
  return code;
}

export function print(io: CliIo, json: boolean | undefined, value: unknown, human: string): void {
  io.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human.endsWith('\n') ? human : human + '\n');
}

export function table(rows: Record<string, unknown>[], cols: string[]): string {
  if (rows.length === 0) return '(none)\n';
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : Array.isArray(v) ? v.join(',') : typeof v === 'number' && v > 1e12 ? new Date(v).toISOString() : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n') + '\n';
}
