/**
 * Test peer: a small WebSocket server that plays the node's side of the tunnel protocol with
 * real frames (handshake with a real challenge and signature check, pings, work), and records
 * everything the miner sends. Waits are on events, never on sleeps.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  decodeMessage, encodeMessage, frame, minerIdOf, verifyChallenge,
  type AdvertiseFrame, type Frame, type FrameInput, type HelloFrame,
} from '@cgn/protocol';

export interface PeerOptions {
  nodeId?: string;
  heartbeatMs?: number;
  /** Send pings every heartbeatMs (default true). */
  ping?: boolean;
  /** Announce this frame limit in welcome, and close a larger message as a node does (default: neither, as an older node). */
  maxFrameBytes?: number;
  /** Ask a miner that says it beats for beats this often (welcome.beatMs; default: not, as an older node). */
  beatMs?: number;
}

/** Resolves when `pred` holds for an event, or rejects after `timeoutMs`. */
export function waitEvent<A extends unknown[]>(
  emitter: EventEmitter,
  name: string,
  pred: (...args: A) => boolean = () => true,
  timeoutMs = 20_000,
): Promise<A> {
  return new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(name, on);
      reject(new Error(`timed out waiting for event ${name}`));
    }, timeoutMs);
    const on = (...args: unknown[]): void => {
      if (!pred(...(args as A))) return;
      clearTimeout(timer);
      emitter.off(name, on);
      resolve(args as A);
    };
    emitter.on(name, on);
  });
}

export class PeerConn extends EventEmitter<{ frame: [Frame]; close: [number, string] }> {
  readonly frames: Frame[] = [];
  /** Frame count of each message received, in order. */
  readonly messageSizes: number[] = [];
  readonly nonce = randomBytes(32);
  hello: HelloFrame | null = null;
  authOk: boolean | null = null;
  minerId: string | null = null;
  closeInfo: { code: number; reason: string } | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;
  private pinger: NodeJS.Timeout | null = null;

  constructor(
    readonly ws: WebSocket,
    private readonly peer: NodePeer,
  ) {
    super();
    this.setMaxListeners(0);
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        if (this.pinger) clearInterval(this.pinger);
        this.emit('close', code, reason.toString());
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data: Buffer) => {
      const frames = decodeMessage(data);
      this.messageSizes.push(frames.length);
      for (const f of frames) this.onFrame(f);
    });
  }

  private onFrame(f: Frame): void {
    this.frames.push(f);
    if (f.t === 'hello') {
      this.hello = f;
      this.send(frame({ t: 'challenge', nonce: this.nonce, nodeId: this.peer.nodeId }));
    } else if (f.t === 'auth') {
      this.authOk = verifyChallenge(this.hello!.publicKey, this.nonce, this.peer.nodeId, f.signature);
      if (!this.authOk) {
        this.ws.close(4001, 'auth failed');
      } else {
        this.minerId = minerIdOf(this.hello!.publicKey);
        this.send(frame({ t: 'welcome', minerId: this.minerId, heartbeatMs: this.peer.heartbeatMs, ...(this.peer.maxFrameBytes === undefined ? {} : { maxFrameBytes: this.peer.maxFrameBytes }), ...(this.peer.beatMs !== undefined && this.hello!.beats === true ? { beatMs: this.peer.beatMs } : {}) }));
        if (this.peer.ping) {
          this.pinger = setInterval(() => this.send(frame({ t: 'ping', ts: Date.now() })), this.peer.heartbeatMs);
        }
      }
    }
    this.emit('frame', f);
  }

  /** Sends frames as one message. */
  send(...frames: Frame[]): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encodeMessage(frames), { binary: true });
  }

  sendInput(...frames: FrameInput[]): void {
    this.send(...frames.map((f) => frame(f) as Frame));
  }

  /** The first frame (already received or coming) for which `pred` holds. */
  waitFrame<F extends Frame = Frame>(pred: (f: Frame) => boolean, timeoutMs = 20_000, from = 0): Promise<F> {
    for (let i = from; i < this.frames.length; i++) if (pred(this.frames[i]!)) return Promise.resolve(this.frames[i] as F);
    if (this.closeInfo !== null) return Promise.reject(new Error(`connection closed (${this.closeInfo.code} ${this.closeInfo.reason}) before the frame came`));
    return new Promise<F>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error('timed out waiting for a frame')), timeoutMs);
      const onFrame = (f: Frame): void => {
        if (pred(f)) done(null, f as F);
      };
      const onClose = (code: number, reason: string): void => done(new Error(`connection closed (${code} ${reason}) before the frame came`));
      const done = (err: Error | null, f?: F): void => {
        clearTimeout(timer);
        this.off('frame', onFrame);
        this.off('close', onClose);
        if (err) reject(err);
        else resolve(f!);
      };
      this.on('frame', onFrame);
      this.on('close', onClose);
    });
  }

  /** The first advertise (the handshake is complete when it arrives). */
  advertised(timeoutMs = 20_000): Promise<AdvertiseFrame> {
    return this.waitFrame<AdvertiseFrame>((f) => f.t === 'advertise', timeoutMs);
  }

  stopPinging(): void {
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
  }
}

export class NodePeer extends EventEmitter<{ connection: [PeerConn] }> {
  readonly nodeId: string;
  heartbeatMs: number;
  ping: boolean;
  readonly maxFrameBytes: number | undefined;
  readonly beatMs: number | undefined;
  readonly conns: PeerConn[] = [];
  private wss: WebSocketServer | null = null;
  url = '';

  constructor(opts: PeerOptions = {}) {
    super();
    this.nodeId = opts.nodeId ?? 'test-node';
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.ping = opts.ping ?? true;
    this.maxFrameBytes = opts.maxFrameBytes;
    this.beatMs = opts.beatMs;
  }

  async start(): Promise<string> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, ...(this.maxFrameBytes === undefined ? {} : { maxPayload: this.maxFrameBytes }) });
    this.wss = wss;
    await new Promise<void>((resolve) => wss.once('listening', resolve));
    wss.on('connection', (ws) => {
      const c = new PeerConn(ws, this);
      this.conns.push(c);
      this.emit('connection', c);
    });
    this.url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    return this.url;
  }

  /** The connection number `index` (0-based), once it exists. */
  async connection(index: number, timeoutMs = 20_000): Promise<PeerConn> {
    if (this.conns.length > index) return this.conns[index]!;
    await waitEvent(this, 'connection', () => this.conns.length > index, timeoutMs);
    return this.conns[index]!;
  }

  /** The connection after the current last one. */
  next(timeoutMs = 20_000): Promise<PeerConn> {
    return this.connection(this.conns.length, timeoutMs);
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    const wss = this.wss;
    this.wss = null;
    if (wss) await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
}
