/**
 * The node's central endpoint: a WebSocket server over mutual TLS that the Central Service dials
 * into (the node never dials central; central accepts no inbound authentication traffic). The
 * TLS layer refuses any client without a certificate signed by the network CA; on top of that the
 * certificate must name central (CN `central`), so another node's certificate cannot pose as it.
 *
 * Once central has said hello, the node sends requests over the link (`request`) and answers
 * central's (`status`). Pushes from central (`keys_revoked`, `tokens_revoked`, `dservices_changed`)
 * are emitted as `push` events. Several central instances may be connected at once (replicas); requests go to
 * the most recently connected one that is open.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, WebSocket } from 'ws';
import {
  CENTRAL_CERT_NAME, LINK_MAX_FRAME_BYTES, LINK_SUBPROTOCOL, decodeLinkFrame, encodeLinkFrame,
  type LinkFrame, type LinkOp, type NodeLinkStatus,
} from '@cgn/protocol';

export interface CentralLinkServerOptions {
  nodeId: string;
  /** PEM: the node's key and certificate (CN `node:<id>`), and the network CA. */
  tls: { key: string | Buffer; cert: string | Buffer; ca: string | Buffer };
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7771 (0 = any free port). */
  port?: number;
  /** Common name central's certificate must carry. Default "central". */
  centralName?: string;
  /** What the node tells central when asked for its status. Default: up, no capacity. */
  status?: () => NodeLinkStatus | Promise<NodeLinkStatus>;
  /** How long a request to central may take, ms. Default 3000. */
  requestTimeoutMs?: number;
  /** Central must say hello within this, ms. Default 5000. */
  helloTimeoutMs?: number;
  log?: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export type CentralPush = Extract<LinkFrame, { t: 'push' }>;

interface Events {
  connected: [centralId: string];
  disconnected: [centralId: string, reason: string];
  push: [push: CentralPush];
}

interface Conn {
  ws: WebSocket;
  centralId: string | null;
  since: number;
}

export class CentralLinkServer extends EventEmitter<Events> {
  private server: Server | null = null;
  private wss: WebSocketServer | null = null;
  private readonly conns = new Set<Conn>();
  private nextId = 1;
  private readonly pending = new Map<number, { conn: Conn; resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly counters = { connections: 0, refused: 0, requests: 0, requestErrors: 0, badFrames: 0 };

  constructor(private readonly options: CentralLinkServerOptions) {
    super();
  }

  async start(): Promise<{ port: number; url: string }> {
    const o = this.options;
    const centralName = o.centralName ?? CENTRAL_CERT_NAME;
    const server = createServer({ key: o.tls.key, cert: o.tls.cert, ca: o.tls.ca, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('this is the central link endpoint (WebSocket)\n');
    });
    this.server = server;
    const wss = new WebSocketServer({
      server,
      maxPayload: LINK_MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(LINK_SUBPROTOCOL) ? LINK_SUBPROTOCOL : false),
      verifyClient: (info, done) => {
        const socket = info.req.socket as TLSSocket;
        const cert = socket.getPeerCertificate();
        if (!socket.authorized || cert.subject?.CN !== centralName) {
          this.counters.refused++;
          o.log?.warn({ cn: cert.subject?.CN ?? null, authorized: socket.authorized }, 'central link: refused a client that is not central');
          return done(false, 403, 'not central');
        }
        done(true);
      },
    });
    this.wss = wss;
    wss.on('connection', (ws) => this.onConnection(ws));
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(o.port ?? 7771, o.host ?? '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const host = o.host ?? '127.0.0.1';
    return { port, url: `wss://${host.includes(':') ? `[${host}]` : host}:${port}` };
  }

  private onConnection(ws: WebSocket): void {
    const o = this.options;
    const conn: Conn = { ws, centralId: null, since: Date.now() };
    this.counters.connections++;
    const helloTimer = setTimeout(() => ws.close(1008, 'no hello'), o.helloTimeoutMs ?? 5000);
    ws.on('message', (data, isBinary) => {
      let f: LinkFrame;
      try {
        f = decodeLinkFrame(isBinary ? (data as Buffer) : data.toString());
      } catch (err) {
        this.counters.badFrames++;
        o.log?.warn({ err: (err as Error).message }, 'central link: bad frame; closing');
        ws.close(1008, 'bad frame');
        return;
      }
      if (conn.centralId === null) {
        if (f.t !== 'hello' || f.from !== 'central') {
          ws.close(1008, 'hello first');
          return;
        }
        clearTimeout(helloTimer);
        conn.centralId = f.id;
        conn.since = Date.now();
        this.conns.add(conn);
        ws.send(encodeLinkFrame({ t: 'hello', from: 'node', id: o.nodeId }));
        o.log?.info({ central: f.id }, 'central link up');
        this.emit('connected', f.id);
        return;
      }
      void this.onFrame(conn, f);
    });
    ws.on('close', (code, reason) => {
      clearTimeout(helloTimer);
      const was = this.conns.delete(conn);
      for (const [id, p] of this.pending) {
        if (p.conn !== conn) continue;
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new Error('central link closed'));
      }
      if (was && conn.centralId !== null) {
        const why = `${code}${reason.length ? ' ' + reason.toString() : ''}`;
        o.log?.info({ central: conn.centralId, why }, 'central link down');
        this.emit('disconnected', conn.centralId, why);
      }
    });
    ws.on('error', () => undefined);
  }

  private async onFrame(conn: Conn, f: LinkFrame): Promise<void> {
    switch (f.t) {
      case 'hello':
        conn.ws.close(1008, 'hello twice');
        return;
      case 'push':
        this.emit('push', f);
        return;
      case 'res': {
        const p = this.pending.get(f.id);
        if (p === undefined || p.conn !== conn) return;
        this.pending.delete(f.id);
        clearTimeout(p.timer);
        if (f.ok) p.resolve(f.result);
        else {
          this.counters.requestErrors++;
          p.reject(new Error(`central: ${f.error.code}: ${f.error.message}`));
        }
        return;
      }
      case 'req': {
        let res: string;
        if (f.op !== 'status') {
          res = encodeLinkFrame({ t: 'res', id: f.id, ok: false, error: { code: 'bad_request', message: `a node does not answer ${f.op}` } });
        } else {
          try {
            const status = (await this.options.status?.()) ?? { health: 'up', draining: false, capacity: {} };
            res = encodeLinkFrame({ t: 'res', id: f.id, ok: true, result: status });
          } catch (err) {
            res = encodeLinkFrame({ t: 'res', id: f.id, ok: false, error: { code: 'internal', message: (err as Error).message } });
          }
        }
        if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(res);
        return;
      }
    }
  }

  /** Whether a central is connected (and has said hello). */
  get connected(): boolean {
    return this.current() !== null;
  }

  private current(): Conn | null {
    let best: Conn | null = null;
    for (const c of this.conns) if (c.ws.readyState === WebSocket.OPEN && (best === null || c.since >= best.since)) best = c;
    return best;
  }

  /** Resolves when a central is connected (now or later). */
  waitConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => this.once('connected', () => resolve()));
  }

  /** Sends a request to central; rejects when no central is connected, on error, or on timeout. */
  request(op: Exclude<LinkOp, 'status'>, args: Record<string, unknown> = {}, timeoutMs = this.options.requestTimeoutMs ?? 3000): Promise<unknown> {
    const conn = this.current();
    if (conn === null) return Promise.reject(new Error('central is not connected'));
    const id = this.nextId++;
    this.counters.requests++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.counters.requestErrors++;
        reject(new Error(`central did not answer ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { conn, resolve, reject, timer });
      conn.ws.send(encodeLinkFrame({ t: 'req', id, op, args }));
    });
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    for (const ws of this.wss?.clients ?? []) ws.terminate();
    await new Promise<void>((resolve) => (this.wss ? this.wss.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => {
      if (this.server === null) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.server = null;
    this.wss = null;
  }
}
