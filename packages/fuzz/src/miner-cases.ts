/**
 * A hostile node against a real miner process: a WebSocket server the miner dials. Each case is
 * one connection: the handshake up to a phase (after hello, after auth, after advertise), then
 * node frames with mutated fields, frames out of order, random bytes, or work units with hostile
 * but valid contents (every unit the miner accepts must be answered, with a result or an error).
 * Checked: the miner process lives, answers what it accepted, and dials again after every close.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { Packr } from 'msgpackr';
import { decodeMessage, encodeMessage, frame, type Frame } from '@cgn/protocol';
import { hostileString, hostileValue, pct, setField } from './hostile.js';
import { ECHO, spawnMiner, type Watched } from './network.js';
import type { Rng } from './rng.js';

/** How long the real miner may take to dial again (its backoff, on a loaded CI machine). */
const REDIAL_MS = 45_000;
/** How long the real miner may take to answer a handshake step (the fuzz asks whether, not how fast). */
const MINER_ANSWER_MS = 20_000;

const packr = new Packr({ useRecords: false, variableMapSize: true });

interface LaneConn {
  ws: WebSocket;
  frames: Frame[];
  waiters: Set<() => void>;
  closed: Promise<number>;
}

/** One fake node and the real miner that dials it. Cases on a lane run one after another. */
export class MinerLane {
  private wss!: WebSocketServer;
  private pending: LaneConn[] = [];
  private arrivals = new Set<() => void>();
  miner!: Watched;

  constructor(private readonly name: string, private readonly dir: string) {}

  async start(): Promise<void> {
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    this.wss.on('connection', (ws) => {
      const c: LaneConn = { ws, frames: [], waiters: new Set(), closed: new Promise((r) => ws.once('close', (code) => r(code))) };
      ws.on('error', () => {});
      ws.on('message', (d: Buffer) => {
        try {
          c.frames.push(...decodeMessage(d));
        } catch (err) {
          c.frames.push({ t: 'error', v: 1, code: 'bad_frame', message: `UNDECODABLE: ${(err as Error).message}` });
        }
        for (const w of c.waiters) w();
      });
      this.pending.push(c);
      for (const a of this.arrivals) a();
    });
    await new Promise<void>((r) => this.wss.once('listening', () => r()));
    const port = (this.wss.address() as AddressInfo).port;
    this.miner = spawnMiner(this.name, this.dir, `ws://127.0.0.1:${port}/`, [ECHO]).miner;
  }

  /** The miner's next connection (it dials again after every close). */
  private nextConn(ms: number): Promise<LaneConn | null> {
    return new Promise((resolve) => {
      const take = (): boolean => {
        const c = this.pending.shift();
        if (c === undefined) return false;
        clearTimeout(timer);
        this.arrivals.delete(arrive);
        resolve(c);
        return true;
      };
      const arrive = (): void => void take();
      const timer = setTimeout(() => {
        this.arrivals.delete(arrive);
        resolve(null);
      }, ms);
      if (!take()) this.arrivals.add(arrive);
    });
  }

  private frameOf(c: LaneConn, pred: (f: Frame) => boolean, ms: number): Promise<Frame | null> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const f = c.frames.find(pred);
        if (f === undefined) return false;
        done(f);
        return true;
      };
      const done = (f: Frame | null): void => {
        clearTimeout(timer);
        c.waiters.delete(onFrame);
        resolve(f);
      };
      const onFrame = (): void => void check();
      const timer = setTimeout(() => done(null), ms);
      if (check()) return;
      c.waiters.add(onFrame);
      void c.closed.then(() => setImmediate(() => c.waiters.has(onFrame) && done(null)));
    });
  }

  /** Handshake on a connection up to `upTo`; false when the miner did not play along. */
  private async handshake(c: LaneConn, upTo: 'hello' | 'auth' | 'ready'): Promise<boolean> {
    if ((await this.frameOf(c, (f) => f.t === 'hello', MINER_ANSWER_MS)) === null) return false;
    if (upTo === 'hello') return true;
    c.ws.send(encodeMessage([frame({ t: 'challenge', nonce: randomBytes(32), nodeId: 'fuzz-node' })]));
    if ((await this.frameOf(c, (f) => f.t === 'auth', MINER_ANSWER_MS)) === null) return false;
    if (upTo === 'auth') return true;
    c.ws.send(encodeMessage([frame({ t: 'welcome', minerId: 'fuzz-miner', heartbeatMs: 5000 })]));
    return (await this.frameOf(c, (f) => f.t === 'advertise', MINER_ANSWER_MS)) !== null;
  }

  /** Completes a clean handshake and closes normally: resets the miner's reconnect backoff. */
  private async reset(): Promise<string | null> {
    const c = await this.nextConn(REDIAL_MS);
    if (c === null) return `the miner did not dial again within ${REDIAL_MS / 1000} s`;
    const ok = await this.handshake(c, 'ready');
    c.ws.close(1000, 'fuzz: next case');
    await c.closed;
    return ok ? null : 'the miner did not complete a clean handshake';
  }

  async runCase(rng: Rng): Promise<{ what: string; problems: string[] }> {
    const c = await this.nextConn(REDIAL_MS);
    if (c === null) return { what: 'waiting for the miner', problems: [this.lost(`did not dial again within ${REDIAL_MS / 1000} s`)] };
    try {
      return await this.attackConn(c, rng);
    } finally {
      // Whatever happened, this connection ends, so the miner dials the next case.
      c.ws.terminate();
    }
  }

  private async attackConn(c: LaneConn, rng: Rng): Promise<{ what: string; problems: string[] }> {
    const problems: string[] = [];
    const phase = rng.weighted([[1, 'hello'], [1, 'auth'], [6, 'ready']] as const);
    let what = `after ${phase}: `;
    if (!(await this.handshake(c, phase))) {
      c.ws.terminate();
      return { what, problems: [this.lost('did not complete the handshake')] };
    }
    const sentWork: { id: string; timeoutMs: number }[] = [];
    for (let i = rng.int(1, 4); i > 0 && c.ws.readyState === c.ws.OPEN; i--) {
      const a = this.attack(rng, phase === 'ready');
      what += `${a.what}; `;
      c.ws.send(a.data, { binary: typeof a.data !== 'string' });
      if (a.workId !== undefined) sentWork.push({ id: a.workId, timeoutMs: a.timeoutMs! });
    }
    // Every unit the miner took must be answered (unless it closed the tunnel over a bad frame).
    for (const w of sentWork) {
      const answer = await this.frameOf(c, (f) => (f.t === 'result' || f.t === 'error') && 'id' in f && f.id === w.id, Math.min(w.timeoutMs, 30_000) + 5000);
      if (answer === null && c.ws.readyState === c.ws.OPEN) problems.push(`work ${w.id} was neither answered nor refused`);
    }
    for (const f of c.frames) {
      if (f.t === 'error' && f.message.startsWith('UNDECODABLE')) problems.push(`the miner sent a frame that does not decode: ${f.message.slice(0, 200)}`);
    }
    if (c.ws.readyState === c.ws.OPEN) c.ws.close(1000, 'fuzz: next case');
    await Promise.race([c.closed, new Promise((r) => setTimeout(r, 3000))]);
    c.ws.terminate();
    if (this.miner.crashed) problems.push(this.lost('exited'));
    else if (phase !== 'ready') {
      const r = await this.reset();
      if (r !== null) problems.push(this.lost(r));
    }
    return { what, problems };
  }

  private lost(why: string): string {
    return `the miner ${why}${this.miner.exit !== null ? ` (exit ${JSON.stringify(this.miner.exit)})` : ''}:\n${this.miner.tail().slice(-1500)}`;
  }

  private attack(rng: Rng, ready: boolean): { what: string; data: Buffer | string; workId?: string; timeoutMs?: number } {
    const kind = rng.weighted([[1, 'bytes'], [1, 'text'], [4, 'mutated'], [ready ? 6 : 1, 'work'], [1, 'cancel']] as const);
    if (kind === 'bytes') return { what: 'random bytes', data: rng.bytes(rng.size(5000) + 1) };
    if (kind === 'text') return { what: 'text', data: hostileString(rng, 500) };
    if (kind === 'cancel') return { what: 'a cancel for nothing', data: packr.pack({ t: 'cancel', v: 1, id: hostileString(rng, 100) || 'x' }) };
    if (kind === 'mutated') {
      const t = rng.pick(['challenge', 'welcome', 'work', 'cancel', 'ping', 'pong', 'drain', 'error', 'result', 'hello']);
      const o: Record<string, unknown> = { t, v: 1, id: 'x', nonce: rng.bytes(32), nodeId: 'n', minerId: 'm', heartbeatMs: 1000, ts: 1, reason: 'r', code: 'internal', message: 'm', dservice: 'echo', method: 'GET', path: '/', headers: [], body: Buffer.alloc(0), timeoutMs: 1000 };
      for (let n = rng.int(1, 3); n > 0; n--) setField(o, rng.chance(0.8) ? rng.pick(Object.keys(o)) : hostileString(rng, 20), hostileValue(rng));
      return { what: `a mutated ${t}`, data: packr.pack(o) };
    }
    const id = `fz_${rng.u32().toString(36)}`;
    const timeoutMs = rng.chance(0.1) ? rng.int(1, 50) : rng.int(1000, 10_000);
    const headers: string[] = [];
    for (let n = rng.size(20); n > 0; n--) headers.push(rng.chance(0.8) ? `x-${n}` : hostileString(rng, 30).toLowerCase() || 'x', rng.chance(0.7) ? 'v' : hostileString(rng, 200));
    const path = rng.pick(['/', '/hello', '/slow?ms=20', '/respond?status=101', `/respond?status=${rng.int(0, 1000)}`, `/respond?header=${pct(hostileString(rng, 40))}`, '/' + pct(hostileString(rng, 500)), hostileString(rng, 300) || '/']);
    const w = {
      t: 'work', v: 1, id, dservice: rng.chance(0.9) ? 'echo' : hostileString(rng, 50) || 'x', method: rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PROPFIND', hostileString(rng, 32) || 'X']),
      path, headers, body: rng.bytes(rng.size(300_000)), timeoutMs: timeoutMs || 1,
    };
    return { what: `work ${w.method.slice(0, 10)} ${JSON.stringify(path.slice(0, 40))} with ${headers.length / 2} headers`, data: packr.pack(w), workId: id, timeoutMs: w.timeoutMs };
  }

  async stop(): Promise<void> {
    await this.miner.stop();
    for (const c of this.pending) c.ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}
