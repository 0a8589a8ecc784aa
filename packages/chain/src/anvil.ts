/**
 * The embedded chain: anvil (from the npm package `@foundry-rs/anvil`, which ships the binary) as a
 * child process on a free loopback port. `startAnvil()` resolves once the node answers
 * `eth_chainId`; `stop()` ends it (SIGTERM, then SIGKILL) and is safe to call twice. Children are
 * also killed if this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Hex } from 'viem';

const require = createRequire(import.meta.url);

/** Private keys of anvil's ten default dev accounts (mnemonic "test test ... junk"). Local use only. */
export const ANVIL_KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
  '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e',
  '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
  '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97',
  '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6',
] as const satisfies readonly Hex[];

export const ANVIL_CHAIN_ID = 31337;

export interface AnvilOptions {
  /** Loopback port; a free one is picked when omitted. */
  port?: number;
  host?: string;
  chainId?: number;
  /** Seconds between blocks; omitted = a block per transaction (automine). */
  blockTime?: number;
  /** Path to the anvil binary; default: the one in `@foundry-rs/anvil-<platform>`. */
  binary?: string;
  /** Extra command-line arguments. */
  args?: readonly string[];
  startTimeoutMs?: number;
}

export interface Anvil {
  readonly rpcUrl: string;
  readonly port: number;
  readonly chainId: number;
  readonly pid: number | undefined;
  /** Stops the node; resolves when the process has exited. */
  stop(): Promise<void>;
}

/** The anvil binary shipped in the platform package of `@foundry-rs/anvil`. */
export function anvilBinary(): string {
  const fromEnv = process.env.CGN_ANVIL_BIN;
  if (fromEnv) return fromEnv;
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  const exe = process.platform === 'win32' ? 'anvil.exe' : 'anvil';
  let req = require;
  try {
    req = createRequire(require.resolve('@foundry-rs/anvil/package.json'));
  } catch {
    // fall back to this package's resolution
  }
  let dir: string;
  try {
    dir = path.dirname(req.resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`anvil binary not found: ${pkg} is not installed (npm install @foundry-rs/anvil on ${process.platform}/${process.arch})`);
  }
  const bin = path.join(dir, 'bin', exe);
  if (!fs.existsSync(bin)) throw new Error(`anvil binary missing at ${bin}`);
  return bin;
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * One JSON-RPC call with a timeout (no viem, so readiness checks stay cheap; they pass a short
 * timeout). The default is generous: mining a thousand blocks on a loaded machine took over 2 s.
 */
export async function rpcCall(rpcUrl: string, method: string, params: unknown[] = [], timeoutMs = 30_000): Promise<unknown> {
  const res = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await res.json()) as { result?: unknown; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function startOnce(opts: AnvilOptions, port: number): Promise<Anvil> {
  const host = opts.host ?? '127.0.0.1';
  const chainId = opts.chainId ?? ANVIL_CHAIN_ID;
  const args = ['--host', host, '--port', String(port), '--chain-id', String(chainId), '--silent'];
  if (opts.blockTime !== undefined) args.push('--block-time', String(opts.blockTime));
  args.push(...(opts.args ?? []));
  const child = spawn(opts.binary ?? anvilBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  installExitHook();
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4000) stderr += d;
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      stderr += String(err);
      exited = true;
      live.delete(child);
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exit;
    clearTimeout(timer);
  };
  const rpcUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  for (;;) {
    if (exited) throw new Error(`anvil exited before answering: ${stderr.trim() || 'no output'}`);
    try {
      const id = await rpcCall(rpcUrl, 'eth_chainId', [], 500);
      if (Number(id) === chainId) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`anvil did not answer eth_chainId on ${rpcUrl} within ${opts.startTimeoutMs ?? 15_000} ms`);
    }
    await sleep(50);
  }
  return { rpcUrl, port, chainId, pid: child.pid, stop };
}

/** Starts anvil and waits until it answers JSON-RPC. Retries on a port race when no port is given. */
export async function startAnvil(opts: AnvilOptions = {}): Promise<Anvil> {
  if (opts.port !== undefined) return startOnce(opts, opts.port);
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts, await freePort(opts.host));
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
