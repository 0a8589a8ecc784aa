/**
 * Shared pieces for integration tests: a real node (in-process, real sockets), real miner
 * processes (`cgn miner`), a scripted miner peer for misbehaviour, and condition waits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocket } from 'ws';
import { pino } from 'pino';
import {
  decodeMessage, encodeMessage, exportMinerKey, frame, generateMinerKey, minerIdOf, signChallenge,
  type AdvertiseFrame, type Frame, type MinerKeyPair, type ResultFrame, type WorkFrame,
} from '@cgn/protocol';
import { startNode, type NodeOptionsInput, type RunningNode } from '@cgn/node';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CGN_BIN = join(ROOT, 'packages/cli/dist/bin.js');
export const ECHO = join(ROOT, 'dservices/echo');
export const MEDIAGEN = join(ROOT, 'dservices/mediagen');

export function tempDir(prefix = 'cgn-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * Polls a condition until it holds (no fixed sleeps); fails with the message after the timeout.
 * The default is for conditions that only have to come true (a spawned miner process joining
 * took over 20 s on a loaded 2-core machine); a bound the test asserts is passed explicitly.
 */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface TestNode {
  node: RunningNode;
  apiKey: string;
  dir: string;
  url: (dservice: string, path?: string) => string;
  cleanup: () => Promise<void>;
}

export async function startTestNode(over: NodeOptionsInput = {}): Promise<TestNode> {
  const tmp = tempDir('cgn-node-');
  const node = await startNode(
    { workPort: 0, minerPort: 0, dataDir: tmp.path, dservices: [ECHO, MEDIAGEN], acceptAnyMiner: true, heartbeatMs: 1000, ...over },
    { log: pino({ level: process.env['CGN_TEST_LOG'] ?? 'silent' }) },
  );
  const { key } = node.keys.create('test-account');
  return {
    node,
    apiKey: key,
    dir: tmp.path,
    url: (d, p = '/') => `${node.workUrl}${d}${p}`,
    cleanup: async () => {
      await node.stop(2000);
      tmp.cleanup();
    },
  };
}

export interface MinerProcess {
  id: string;
  proc: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
  kill: (signal?: NodeJS.Signals) => void;
}

/** Starts a real miner process with a key made here, so the test knows its id. */
/** Kills the miner processes and waits until every one has exited. */
export async function stopMiners(miners: readonly MinerProcess[]): Promise<void> {
  for (const m of miners) m.kill();
  await Promise.all(miners.map((m) => m.exited));
}

export function spawnMiner(minerUrl: string, dir: string, opts: { dservices?: string[]; slots?: number; name?: string; key?: MinerKeyPair; args?: string[] } = {}): MinerProcess {
  const key = opts.key ?? generateMinerKey();
  const keyFile = join(dir, `${opts.name ?? 'miner'}-${minerIdOf(key.publicKey).slice(0, 8)}.pem`);
  writeFileSync(keyFile, exportMinerKey(key), { mode: 0o600 });
  const args = [CGN_BIN, 'miner', '--node', minerUrl, '--key', keyFile, ...(opts.dservices ?? [ECHO]).flatMap((d) => ['--dservice', d])];
  if (opts.slots !== undefined) args.push('--slots', String(opts.slots));
  if (opts.args !== undefined) args.push(...opts.args);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CGN_LOG_LEVEL: 'info' } });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { id: minerIdOf(key.publicKey), proc, stderr: () => err, exited, kill: (s = 'SIGTERM') => proc.kill(s) };
}

export function minersOf(node: RunningNode): { id: string; inUse: number; completed: number }[] {
  return node.broker.snapshot().miners;
}

/**
 * A scripted miner peer speaking the real protocol, for behaviour a correct miner never shows:
 * never acking, sending garbage. It can also answer work like a miner would.
 */
export class ScriptedMiner {
  readonly key: MinerKeyPair;
  readonly id: string;
  readonly received: Frame[] = [];
  ws!: WebSocket;
  closed!: Promise<{ code: number; reason: string }>;

  constructor(
    private readonly behaviour: {
      ack: boolean;
      answer: boolean;
      dservices?: string[];
      slots?: number;
      digests?: Record<string, string>;
      /** Extra advertisement fields (tier, payoutAddress, stakeProof). */
      advert?: Partial<Omit<AdvertiseFrame, 't' | 'v'>>;
      /** What it answers instead of the echo (a cheating miner). */
      tamper?: (body: Uint8Array) => Uint8Array;
      /** Fields of its result frames to replace (a miner breaking the result rules). */
      answerWith?: (work: WorkFrame) => Partial<Omit<ResultFrame, 't' | 'v' | 'id'>>;
      /** Sees every frame the node sends (e.g. to answer `attest` challenges). */
      onFrame?: (f: Frame, miner: ScriptedMiner) => void;
      /** Says in its hello that it beats (the test sends the beats; the node then does not ping it). */
      beats?: boolean;
    },
    key?: MinerKeyPair,
  ) {
    this.key = key ?? generateMinerKey();
    this.id = minerIdOf(this.key.publicKey);
  }

  async connect(minerUrl: string): Promise<void> {
    this.ws = new WebSocket(minerUrl, { perMessageDeflate: false });
    this.closed = new Promise((r) => this.ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    let welcomed!: () => void;
    const welcome = new Promise<void>((r) => (welcomed = r));
    this.ws.on('message', (data: Buffer) => {
      for (const f of decodeMessage(data)) {
        this.received.push(f);
        this.behaviour.onFrame?.(f, this);
        if (f.t === 'challenge') this.send(frame({ t: 'auth', signature: signChallenge(this.key, f.nonce, f.nodeId) }));
        else if (f.t === 'welcome') {
          this.send(frame({
            t: 'advertise', tier: 'open', slots: this.behaviour.slots ?? 4,
            dservices: (this.behaviour.dservices ?? ['echo']).map((name) => ({ name, version: '0', digest: this.behaviour.digests?.[name] ?? 'x' })),
            resources: { cpus: 1, memoryMb: 100 },
            ...this.behaviour.advert,
          }));
          welcomed();
        } else if (f.t === 'work') {
          if (this.behaviour.ack) this.send(frame({ t: 'ack', id: f.id }));
          if (this.behaviour.answer) {
            this.answered.add(f.id);
            const body = this.behaviour.tamper?.(f.body) ?? f.body;
            this.send(frame({
              t: 'result', id: f.id, status: 200, headers: ['content-type', 'text/plain'], body, metering: { execUs: 1, cpuUs: 1 }, resultHash: new Uint8Array(32),
              ...this.behaviour.answerWith?.(f),
            }));
          }
        } else if (f.t === 'ping') this.send(frame({ t: 'pong', ts: f.ts }));
      }
    });
    await new Promise<void>((resolveOpen, reject) => this.ws.once('open', resolveOpen).once('error', reject));
    this.send(frame({ t: 'hello', publicKey: this.key.publicKey, agent: 'scripted-test-miner', ...(this.behaviour.beats === true ? { beats: true } : {}) }));
    await welcome;
  }

  send(f: Frame): void {
    this.ws.send(encodeMessage([f]));
  }

  sendRaw(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  /** Answers every work unit received so far that has not been answered (echoing its body). */
  answerPending(): void {
    for (const f of this.received) {
      if (f.t !== 'work' || this.answered.has(f.id)) continue;
      this.answered.add(f.id);
      this.send(frame({ t: 'result', id: f.id, status: 200, headers: ['content-type', 'text/plain'], body: f.body, metering: { execUs: 1, cpuUs: 1 }, resultHash: new Uint8Array(32) }));
    }
  }

  private readonly answered = new Set<string>();

  workIds(): string[] {
    return this.received.filter((f) => f.t === 'work').map((f) => (f as { id: string }).id);
  }
}
