/**
 * The network under test: a real `cgn node` process (echo and MediaGen, any miner key, no rate
 * limit) and a real `cgn miner` process running both DServices, on loopback. Processes are
 * watched: an exit the fuzzer did not ask for is a crash, reported with the tail of its log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { exportMinerKey, generateMinerKey, minerIdOf } from '@cgn/protocol';
import { FileApiKeyStore } from '@cgn/node';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CGN_BIN = join(ROOT, 'packages/cli/dist/bin.js');
export const ECHO = join(ROOT, 'dservices/echo');
export const MEDIAGEN = join(ROOT, 'dservices/mediagen');

/** A child process whose exit is watched and whose log keeps only its tail (and counts bytes). */
export class Watched {
  private tailText = '';
  logBytes = 0;
  longestLogLine = 0;
  private partialLine = 0;
  exit: { code: number | null; signal: string | null } | null = null;
  stopping = false;
  readonly exited: Promise<void>;

  constructor(readonly name: string, readonly proc: ChildProcess) {
    const onLog = (d: Buffer): void => {
      this.logBytes += d.length;
      for (let i = 0, start = 0; i <= d.length; i++) {
        if (i === d.length || d[i] === 0x0a) {
          this.partialLine += i - start;
          if (i < d.length) {
            this.longestLogLine = Math.max(this.longestLogLine, this.partialLine);
            this.partialLine = 0;
          }
          start = i + 1;
        }
      }
      this.tailText = (this.tailText + d.toString()).slice(-4000);
    };
    proc.stderr?.on('data', onLog);
    this.exited = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      }),
    );
  }

  get crashed(): boolean {
    return this.exit !== null && !this.stopping;
  }

  tail(): string {
    return this.tailText;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.exit !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
  }
}

function readyLine(w: Watched, what: string, timeoutMs = 60_000): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs} ms:\n${w.tail()}`)), timeoutMs);
    w.proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.slice(0, nl)) as Record<string, string>);
      } catch {
        reject(new Error(`${what} printed no ready line: ${out.slice(0, 200)}`));
      }
    });
    void w.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${what} exited before it was ready:\n${w.tail()}`));
    });
  });
}

export function spawnCgn(name: string, args: string[]): Watched {
  const proc = spawn(process.execPath, [CGN_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CGN_LOG_LEVEL: 'info' } });
  return new Watched(name, proc);
}

/** Starts a real miner process dialing `url` with a fresh key; returns it and its id. */
export function spawnMiner(name: string, dir: string, url: string, dservices: string[]): { miner: Watched; id: string } {
  const key = generateMinerKey();
  const keyFile = join(dir, `${name}.pem`);
  writeFileSync(keyFile, exportMinerKey(key), { mode: 0o600 });
  const miner = spawnCgn(name, ['miner', '--node', url, '--key', keyFile, ...dservices.flatMap((d) => ['--dservice', d])]);
  return { miner, id: minerIdOf(key.publicKey) };
}

export interface FuzzNetwork {
  workPort: number;
  workUrl: string;
  statusUrl: string;
  minerUrl: string;
  apiKey: string;
  node: Watched;
  miner: Watched;
  minerId: string;
  status(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** `dedicatedMiners`: ids the node grants the dedicated tier (the hostile tunnel cases that advertise). */
export async function startFuzzNetwork(dir: string, dedicatedMiners: readonly string[] = []): Promise<FuzzNetwork> {
  mkdirSync(join(dir, 'node'), { recursive: true });
  const grantsFile = join(dir, 'grants.json');
  writeFileSync(grantsFile, JSON.stringify({ miners: Object.fromEntries(dedicatedMiners.map((id) => [id, { tier: 'dedicated' }])) }));
  const keysFile = join(dir, 'api-keys.json');
  const { key: apiKey } = new FileApiKeyStore(keysFile).create('fuzz-account');
  const node = spawnCgn('node', [
    'node', '--node-id', 'fuzz-node', '--work-port', '0', '--miner-port', '0', '--data-dir', join(dir, 'node'), '--keys', keysFile,
    '--accept-any-miner', '--grants', grantsFile, '--no-rate-limit', '--dservice', ECHO, '--dservice', MEDIAGEN,
    // Short deadlines, so a stalled case ends within the fuzzer's hang bound.
    '--headers-timeout', '1000', '--request-timeout', '2000', '--handshake-timeout', '2000',
  ]);
  const ready = await readyLine(node, 'cgn node');
  const workUrl = ready['workUrl']!;
  const statusUrl = ready['statusUrl']!;
  const minerUrl = ready['minerUrl']!;
  const status = async (): Promise<Record<string, unknown>> => (await (await fetch(statusUrl)).json()) as Record<string, unknown>;
  const { miner, id: minerId } = spawnMiner('miner', dir, minerUrl, [ECHO, MEDIAGEN]);
  const until = Date.now() + 60_000;
  for (;;) {
    const miners = (await status())['miners'] as { id: string; dservices: string[] }[];
    if (miners.some((m) => m.id === minerId && m.dservices.length === 2)) break;
    if (miner.exit !== null) throw new Error(`cgn miner exited before it joined:\n${miner.tail()}`);
    if (Date.now() > until) throw new Error(`the miner did not join the node within 60 s:\n${miner.tail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    workPort: Number(new URL(workUrl).port), workUrl, statusUrl, minerUrl, apiKey, node, miner, minerId, status,
    stop: async () => {
      await miner.stop();
      await node.stop();
    },
  };
}
