/**
 * The node's miner endpoint: a WebSocket server that miners dial. Each connection runs the
 * handshake (hello -> challenge -> auth -> welcome -> advertise), then feeds frames to the broker.
 * A malformed or unexpected frame closes that tunnel with a reason; it never affects the others.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CgnError, LIMITS, Outbox, decodeMessage, encodeMessageParts, excerpt, sendParts, frame, minerIdOf, verifyChallenge,
  type AdvertiseFrame, type PlacedFrame, type ProbedFrame, type Frame, type OutgoingFrame, type HelloFrame, type QuoteFrame, type Tier, type TlsPair,
} from '@cgn/protocol';
import type { Broker } from '../broker/broker.js';
import { CLOSE } from './close-codes.js';
import { HeartbeatWheel, heartbeatBuckets } from './heartbeat-wheel.js';
import { BEAT_INTERVALS, MAX_BEATS_PER_INTERVAL, NODE_BEAT_AFTER_INTERVALS, NODE_BEAT_INTERVALS, countBeat, visit, visitBeating, type Liveness } from './heartbeat-rule.js';
import { JoinSummary } from './join-summary.js';
import { NoncePool } from './nonce-pool.js';
import type { Logger } from '../log.js';
import { MinerFaults, type MinerFaultOptions } from './miner-faults.js';
import { tierRefusal, type MinerGrant } from '../tiers/grants.js';
import type { AttestationPolicy, AttestationVerifier, RefusalCode } from '../attestation/verifier.js';

export interface MinerEndpointOptions {
  host: string;
  port: number;
  nodeId: string;
  /**
   * Heartbeat interval: a miner that beats (hello.beats) sends a frame at least every other
   * interval and is never pinged, and is dropped once silent for 4 (`BEAT_DROP_INTERVALS`); an older
   * one is pinged when quiet, every other interval, and dropped once silent for 3. Default 5000.
   */
  heartbeatMs: number;
  /**
   * Time a new connection has to complete the handshake: the HTTP upgrade, then hello to
   * advertise, each within it. Default 5000.
   */
  handshakeTimeoutMs: number;
  /** When repeated protocol violations quarantine a miner (see `miner-faults.ts`). */
  faults?: Partial<MinerFaultOptions>;
  /** Largest WebSocket message accepted from a miner. */
  maxPayloadBytes: number;
  /** Certificate and key to serve WSS with (the node reloads them through `tlsTarget`); absent: ws. */
  tls?: TlsPair;
  /** A frame goes at once when nothing went to that miner for this long (light load), ms. Default 0: always batched per turn. */
  sendAtOnceWhenQuietMs?: number;
  /**
   * Whether an authenticated miner key may join and what it is granted (central's registry, this
   * node's grants, or `open` for any key in a dev network); null refuses it.
   */
  grantOf: (minerId: string) => MinerGrant | null | Promise<MinerGrant | null>;
  /** Keeps only the advertised DServices this node may route to that miner (digest checks). */
  admitDServices?: (ad: AdvertiseFrame) => AdvertiseFrame;
  /**
   * Checks an advertisement's tier before the miner joins the pool (open tier: stake, bans).
   * Returns null when there is nothing to check, else a promise of the refusal reason or null.
   */
  checkAdvert?: (minerId: string, ad: AdvertiseFrame) => Promise<string | null> | null;
  /**
   * The `attested` tier: a fresh nonce when a miner advertises it and every `intervalMs` after,
   * answered by a quote within `timeoutMs` (the nonce's lifetime) that `verifier` accepts against
   * the miner's registered attestation key and `policy`. Without it, attested is refused.
   */
  attestation?: {
    verifier: AttestationVerifier;
    policy: () => AttestationPolicy | Promise<AttestationPolicy>;
    intervalMs: number;
    timeoutMs: number;
    now: () => number;
  };
  /** An authenticated miner's tunnel closed. */
  minerGone?: (minerId: string) => void;
  /** Plain HTTP requests on this endpoint (e.g. `GET /v1/packages/<digest>`); false: not handled (426). */
  httpRoute?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** A miner answered a `place` frame. */
  onPlaced?: (minerId: string, f: PlacedFrame) => void;
  /** A miner answered a capability `probe` frame. */
  onProbed?: (minerId: string, f: ProbedFrame) => void;
  /** A miner answered an error frame with an id: true when the id is a waiting probe's (then it is not work's). */
  onProbeError?: (minerId: string, probeId: string, message: string) => boolean;
  /** An authenticated miner advertised the EVM address its earnings are paid to. */
  onPayoutAddress?: (minerId: string, address: string) => void;
}

type Phase = 'hello' | 'auth' | 'admitting' | 'advertise' | 'ready';

/** A `beat` frame as it arrives alone and as the node sends its own: recognised and written without the codec. */
const BEAT_MESSAGE = Buffer.concat(encodeMessageParts([frame({ t: 'beat' })]));

/** A tunnel; its heartbeat state (`Liveness`: lastSeen, heard, lastSent, pingedAt) is read by `heartbeat-rule.ts`. */
interface Conn extends Liveness {
  ws: WebSocket;
  out: Outbox;
  phase: Phase;
  nonce: Uint8Array;
  hello: HelloFrame | null;
  minerId: string | null;
  socket: Socket;
  /** `address:port` of the peer, read when first logged (a getpeername per join otherwise). */
  remote: string | null;
  /** The miner's last advertisement as it sent it (re-checked when approvals change). */
  advert: AdvertiseFrame | null;
  /** Counts advertisements, so a slow tier check of an older one is ignored. */
  advertSeq: number;
  /** What the node granted this miner at admission. */
  grant: MinerGrant | null;
  /** The tier it serves in now (null until its advertisement passed). */
  admittedTier: Tier | null;
  /** The outstanding attestation challenge (one at a time; answered once). */
  attest: { answer: (q: QuoteFrame) => void; timer: ReturnType<typeof setTimeout> } | null;
  /** Next periodic attestation of an attested miner. */
  reattest: ReturnType<typeof setTimeout> | null;
  /** It said in its hello that it beats: the node does not ping it (`heartbeat-rule.ts`). */
  beats: boolean;
  /** Liveness frames (beats, pings) counted in the window that started at `beatWindowAt`. */
  beatsInWindow: number;
  beatWindowAt: number;
}

export class MinerEndpoint {
  private wss: WebSocketServer | null = null;
  private http: Server | null = null;
  private readonly byMiner = new Map<string, Conn>();
  private readonly conns = new Set<Conn>();
  private heartbeat: HeartbeatWheel<Conn> | null = null;
  private sweeper: ReturnType<typeof setInterval> | null = null;
  readonly counters = {
    connections: 0, authFailures: 0, badFrames: 0, unexpectedFrames: 0, quarantined: 0, tierRefusals: 0, pings: 0, heartbeatLost: 0, beats: 0, beatsSent: 0, tooManyBeats: 0,
    attestation: { challenges: 0, verified: 0, refused: {} as Partial<Record<RefusalCode | 'timeout' | 'unsolicited', number>> },
  };
  readonly faults: MinerFaults;
  /** Joins and leaves: each at debug, one info line per 10 s that had any. */
  private readonly joins: JoinSummary;
  private readonly nonces = new NoncePool();

  constructor(
    private readonly options: MinerEndpointOptions,
    private readonly broker: Broker,
    private readonly log: Logger,
  ) {
    this.faults = new MinerFaults(() => Date.now(), options.faults);
    this.joins = new JoinSummary(log, () => this.byMiner.size);
  }

  async start(): Promise<AddressInfo> {
    const t = this.options.handshakeTimeoutMs;
    // Our own HTTP server, for its deadlines: a connection that never finishes its upgrade
    // request is cut after the handshake timeout (checked every second), not Node's 60 s.
    const serverOptions = { headersTimeout: t, requestTimeout: t, keepAliveTimeout: t, connectionsCheckingInterval: 1000 };
    const tls = this.options.tls;
    const http = (tls ? createHttpsServer({ ...serverOptions, cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, (req, res) => this.upgradeRequired(req, res)) : createServer(serverOptions, (req, res) => this.upgradeRequired(req, res))) as Server;
    const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: this.options.maxPayloadBytes, clientTracking: false });
    this.http = http;
    this.wss = wss;
    wss.on('connection', (ws, req) => this.accept(ws, req.socket));
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(this.options.port, this.options.host, () => {
        http.removeListener('error', reject);
        resolve();
      });
    });
    http.on('error', (err) => this.log.error({ err }, 'miner endpoint error'));
    wss.on('error', (err) => this.log.error({ err }, 'miner endpoint error'));
    this.heartbeat = new HeartbeatWheel<Conn>(this.options.heartbeatMs, heartbeatBuckets(this.options.heartbeatMs), (conns, now) => this.beat(conns, now));
    for (const c of this.conns) this.heartbeat.add(c);
    this.heartbeat.start();
    const ackEvery = Math.max(10, Math.floor(this.broker.options.ackTimeoutMs / 4));
    // Judged in the check phase, after the poll phase has read what the sockets hold: a node whose
    // event loop stalled would otherwise run this timer first and drop miners whose acks arrived
    // during the stall and wait unread.
    this.sweeper = setInterval(() => setImmediate(() => this.broker.sweep()), ackEvery);
    this.sweeper.unref();
    this.joins.start();
    return http.address() as AddressInfo;
  }

  /** A plain HTTP request to the WebSocket endpoint: 426, with what to do instead. */
  private upgradeRequired(req: IncomingMessage, res: ServerResponse): void {
    if (this.options.httpRoute?.(req, res) === true) return;
    req.resume();
    const body = `this is a CGN miner endpoint: connect with a WebSocket (cgn miner --node ${this.options.tls ? 'wss' : 'ws'}://...)\n`;
    res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'close', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** The listening server, to give it a renewed certificate (`setSecureContext`); null before start or without TLS. */
  get tlsTarget(): HttpsServer | null {
    return this.options.tls && this.http ? (this.http as unknown as HttpsServer) : null;
  }

  get minerCount(): number {
    return this.byMiner.size;
  }

  /** Whether a frame came from this connected miner within the last `ms` (the broker's ack rule asks it of a late miner). */
  heardWithin(minerId: string, ms: number): boolean {
    const c = this.byMiner.get(minerId);
    return c !== undefined && Date.now() - c.lastSeen <= ms;
  }

  /** Whether this miner is connected and authenticated. */
  hasMiner(minerId: string): boolean {
    return this.byMiner.has(minerId);
  }

  /** The advertisement of a connected miner admitted to its tier, as it sent it; null otherwise. */
  advertOf(minerId: string): AdvertiseFrame | null {
    const c = this.byMiner.get(minerId);
    return c !== undefined && c.phase === 'ready' && c.admittedTier !== null ? c.advert : null;
  }

  /** Sends a frame to an authenticated miner (batched per event-loop turn). */
  send(minerId: string, f: OutgoingFrame): void {
    this.byMiner.get(minerId)?.out.push(f);
  }

  /** Closes a miner's tunnel with a reason (the broker has already let it go). */
  closeMiner(minerId: string, reason: string, code: number = CLOSE.dropped): void {
    const c = this.byMiner.get(minerId);
    if (c !== undefined) this.end(c, code, reason);
  }

  /**
   * A fault found outside the tunnel (a gross over-report of its metering): counted against the
   * miner like a bad frame; once that quarantines the miner, its tunnel is closed saying why.
   */
  fault(minerId: string, reason: string): void {
    const logged = excerpt(reason);
    if (!this.faults.record(minerId, logged)) return;
    this.counters.quarantined++;
    const c = this.byMiner.get(minerId);
    this.log.warn({ miner: minerId.slice(0, 16), reason: logged, quarantinedMs: this.faults.options.quarantineMs }, 'miner quarantined');
    if (c !== undefined) this.reject(c, CLOSE.dropped, `quarantined for ${Math.round(this.faults.options.quarantineMs / 1000)} s after repeated faults (last: ${logged})`, 'forbidden');
  }

  /** Takes a miner out with an error frame saying why, and closes its tunnel (tier refused). */
  dropMiner(minerId: string, reason: string): void {
    const c = this.byMiner.get(minerId);
    if (c !== undefined) this.reject(c, CLOSE.tierRefused, reason, 'forbidden');
  }

  /**
   * Central says this miner's key was revoked or its grant changed: look the grant up again and
   * hold the connected miner to it. Revoked: out. A tier no longer granted: out, saying why. A new
   * attestation key: it proves itself again now.
   */
  regrant(minerId: string): void {
    const c = this.byMiner.get(minerId);
    if (c === undefined) return;
    void Promise.resolve(this.options.grantOf(minerId)).then((grant) => {
      if (this.byMiner.get(minerId) !== c || c.ws.readyState !== c.ws.OPEN) return;
      if (grant === null) return this.reject(c, CLOSE.authFailed, `miner ${minerId.slice(0, 16)} is no longer registered with this node (its key was revoked)`, 'auth_failed');
      const keyChanged = grant.attestationKey !== c.grant?.attestationKey;
      c.grant = grant;
      const f = c.advert;
      if (c.phase !== 'ready' || f === null) return;
      const refused = tierRefusal(minerId, f.tier, grant);
      if (refused !== null) {
        this.counters.tierRefusals++;
        return this.reject(c, CLOSE.tierRefused, refused, 'forbidden');
      }
      if (f.tier === 'attested' && keyChanged) this.advertised(c, f);
    }, (err: unknown) => this.log.warn({ miner: minerId.slice(0, 16), err: (err as Error).message }, 'could not look up a changed miner grant; keeping the current one'));
  }

  /** Checks every miner's advertisement again (the approved DServices or digests changed). */
  readmit(): void {
    for (const [id, c] of this.byMiner) {
      if (c.phase === 'ready' && c.advert !== null) this.broker.addMiner(id, this.options.admitDServices?.(c.advert) ?? c.advert);
    }
  }

  /** Tells every miner the node is going away, then closes all tunnels. */
  async stop(): Promise<void> {
    this.heartbeat?.stop();
    if (this.sweeper) clearInterval(this.sweeper);
    this.joins.stop();
    for (const c of this.conns) {
      c.out.push(frame({ t: 'drain', reason: 'node shutting down' }));
      c.out.flush();
      this.end(c, CLOSE.shutdown, 'node shutting down');
    }
    const wss = this.wss;
    this.wss = null;
    if (wss) await new Promise<void>((resolve) => wss.close(() => resolve()));
    const http = this.http;
    this.http = null;
    if (http) {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  }

  private accept(ws: WebSocket, socket: Socket): void {
    this.counters.connections++;
    const now = Date.now();
    // Batches are split below the miner's message limit (it accepts what we accept).
    const out = new Outbox((parts, written) => {
      if (ws.readyState === ws.OPEN) {
        c.lastSent = Date.now();
        sendParts(ws, parts, written);
      } else written?.();
    }, Math.min(this.options.maxPayloadBytes, 1024 * 1024), { sendAtOnceWhenQuietMs: this.options.sendAtOnceWhenQuietMs ?? 0 });
    const c: Conn = { ws, out, phase: 'hello', nonce: this.nonces.next(), hello: null, minerId: null, lastSeen: now, heard: true, lastSent: now, pingedAt: 0, socket, remote: null, advert: null, advertSeq: 0, grant: null, admittedTier: null, attest: null, reattest: null, beats: false, beatsInWindow: 0, beatWindowAt: 0, suspect: false };
    this.conns.add(c);
    this.heartbeat?.add(c);
    const handshake = setTimeout(() => {
      if (c.phase !== 'ready') this.end(c, CLOSE.handshakeTimeout, `handshake not completed within ${this.options.handshakeTimeoutMs} ms`);
    }, this.options.handshakeTimeoutMs);
    handshake.unref();
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const now = Date.now();
      c.lastSeen = now;
      c.heard = true;
      // An idle miner's beat: its arrival is all that counts, so it is not decoded.
      if (data.length === BEAT_MESSAGE.length && c.phase === 'ready' && isBinary && data.equals(BEAT_MESSAGE)) return this.onBeat(c, now);
      if (!isBinary) return this.reject(c, CLOSE.badFrame, 'bad frame: text message; frames are binary MessagePack');
      let frames: Frame[];
      try {
        frames = decodeMessage(data);
      } catch (err) {
        return this.reject(c, CLOSE.badFrame, err instanceof CgnError ? err.message : 'bad frame: unreadable message');
      }
      for (const f of frames) {
        if (c.ws.readyState !== c.ws.OPEN) return;
        this.onFrame(c, f);
      }
    });
    ws.on('close', () => {
      clearTimeout(handshake);
      if (c.attest !== null) clearTimeout(c.attest.timer);
      if (c.reattest !== null) clearTimeout(c.reattest);
      this.conns.delete(c);
      this.heartbeat?.delete(c);
      if (c.minerId !== null && this.byMiner.get(c.minerId) === c) {
        this.byMiner.delete(c.minerId);
        this.broker.removeMiner(c.minerId, 'tunnel closed');
        this.options.minerGone?.(c.minerId);
        this.joins.left();
        if (this.log.isLevelEnabled('debug')) this.log.debug({ miner: c.minerId.slice(0, 16), remote: c.remote }, 'miner disconnected');
      }
    });
    ws.on('error', (err) => this.log.warn({ err: err.message, remote: this.remoteOf(c) }, 'miner tunnel error'));
  }

  private onFrame(c: Conn, f: Frame): void {
    switch (c.phase) {
      case 'hello':
        if (f.t !== 'hello') return this.reject(c, CLOSE.unexpectedFrame, `unexpected ${f.t} frame: expected hello`);
        c.hello = f;
        c.beats = f.beats === true;
        c.phase = 'auth';
        c.out.push(frame({ t: 'challenge', nonce: c.nonce, nodeId: this.options.nodeId }));
        return;
      case 'auth': {
        if (f.t !== 'auth') return this.reject(c, CLOSE.unexpectedFrame, `unexpected ${f.t} frame: expected auth`);
        const pub = c.hello!.publicKey;
        const id = minerIdOf(pub);
        if (!verifyChallenge(pub, c.nonce, this.options.nodeId, f.signature)) {
          this.counters.authFailures++;
          return this.reject(c, CLOSE.authFailed, 'auth failed: signature does not verify for this public key', 'auth_failed');
        }
        const q = this.faults.quarantine(id);
        if (q.remainingMs > 0) {
          this.counters.authFailures++;
          return this.reject(c, CLOSE.authFailed, `auth failed: miner ${id.slice(0, 16)}… is quarantined for ${Math.ceil(q.remainingMs / 1000)} s after repeated protocol violations (last: ${q.reason})`, 'auth_failed');
        }
        c.phase = 'admitting';
        const admit = (grant: MinerGrant | null): void => {
          if (c.ws.readyState !== c.ws.OPEN) return;
          if (grant === null) {
            this.counters.authFailures++;
            return this.reject(c, CLOSE.authFailed, `auth failed: miner ${id.slice(0, 16)}… is not registered with this node`, 'auth_failed');
          }
          const previous = this.byMiner.get(id);
          if (previous !== undefined) {
            this.byMiner.delete(id);
            this.broker.removeMiner(id, 'replaced by a new connection');
            this.end(previous, CLOSE.replaced, 'replaced by a new connection from the same miner');
          }
          c.minerId = id;
          c.grant = grant;
          c.phase = 'advertise';
          this.byMiner.set(id, c);
          // The frame limit tells the miner which results it must answer with an error instead (a
          // larger message would close this tunnel).
          const hb = this.options.heartbeatMs;
          c.out.push(frame(c.beats
            ? { t: 'welcome', minerId: id, heartbeatMs: hb * NODE_BEAT_INTERVALS, beatMs: hb * BEAT_INTERVALS, maxFrameBytes: this.options.maxPayloadBytes }
            : { t: 'welcome', minerId: id, heartbeatMs: hb, maxFrameBytes: this.options.maxPayloadBytes }));
        };
        const decided = this.options.grantOf(id);
        if (decided === null || !('then' in decided)) admit(decided);
        else decided.then(admit, (err: unknown) => this.reject(c, CLOSE.authFailed, `auth failed: the miner registry could not be asked (${excerpt(String((err as Error)?.message))})`, 'auth_failed'));
        return;
      }
      case 'admitting':
        return this.reject(c, CLOSE.unexpectedFrame, `unexpected ${f.t} frame: the node is still checking this miner`);
      case 'advertise':
        if (f.t !== 'advertise') return this.reject(c, CLOSE.unexpectedFrame, `unexpected ${f.t} frame: expected advertise`);
        c.phase = 'ready';
        c.advert = f;
        this.joins.joined();
        if (this.log.isLevelEnabled('debug')) this.log.debug({ miner: c.minerId!.slice(0, 16), remote: this.remoteOf(c), agent: excerpt(c.hello!.agent, 64), advertised: f.tier, granted: c.grant!.tier, grantedBy: c.grant!.by, slots: f.slots, dservices: f.dservices.map((d) => d.name) }, 'miner connected');
        return this.advertised(c, f);
      case 'ready':
        return this.onReadyFrame(c, c.minerId!, f);
    }
  }

  private onReadyFrame(c: Conn, id: string, f: Frame): void {
    switch (f.t) {
      case 'ack':
        return this.broker.onAck(id, f.id);
      case 'result':
        return this.broker.onResult(id, f);
      case 'error':
        if (f.id !== undefined) {
          if (this.options.onProbeError?.(id, f.id, f.message) === true) return;
          return this.broker.onWorkError(id, { ...f, id: f.id });
        }
        this.log.warn({ miner: id.slice(0, 16), code: f.code, message: excerpt(f.message) }, 'miner reported an error');
        return;
      case 'ping':
        if (!countBeat(c, Date.now(), this.options.heartbeatMs)) return this.tooManyBeats(c);
        c.out.push(frame({ t: 'pong', ts: f.ts }));
        return;
      case 'beat':
        return this.onBeat(c, Date.now());
      case 'pong':
        return;
      case 'drain':
        this.log.info({ miner: id.slice(0, 16), reason: excerpt(f.reason) }, 'miner draining');
        return this.broker.drainMiner(id);
      case 'advertise':
        c.advert = f;
        return this.advertised(c, f);
      case 'placed':
        return this.options.onPlaced?.(id, f);
      case 'probed':
        return this.options.onProbed?.(id, f);
      case 'quote':
        if (c.attest === null) {
          this.refusedAttestation('unsolicited');
          return this.reject(c, CLOSE.tierRefused, 'tier attested refused: a quote without an outstanding challenge (a replayed or late quote)', 'forbidden');
        }
        return c.attest.answer(f);
      default:
        return this.reject(c, CLOSE.unexpectedFrame, `unexpected ${f.t} frame from a miner`);
    }
  }

  /**
   * Puts an advertised miner in the pool once its tier is granted: refused at once when it claims
   * a tier it was not granted, else after the tier's own check when there is one.
   */
  private advertised(c: Conn, f: AdvertiseFrame): void {
    const seq = ++c.advertSeq;
    const id = c.minerId!;
    const refused = tierRefusal(id, f.tier, c.grant!);
    if (refused !== null) {
      this.counters.tierRefusals++;
      return this.reject(c, CLOSE.tierRefused, refused, 'forbidden');
    }
    const check = f.tier === 'attested' ? this.attest(c, f) : this.options.checkAdvert?.(id, f) ?? null;
    if (check === null) return this.join(id, f);
    // A re-advertising miner keeps serving as it did until the new advertisement passes.
    check.then((refused) => {
      if (c.advertSeq !== seq || this.byMiner.get(id) !== c || c.ws.readyState !== c.ws.OPEN) return;
      if (refused !== null) return this.reject(c, CLOSE.tierRefused, refused, 'forbidden');
      this.join(id, f);
    }, (err: unknown) => this.reject(c, CLOSE.tierRefused, `tier check failed: ${excerpt(String((err as Error)?.message))}`, 'forbidden'));
  }

  /**
   * Challenges the miner for a quote over a fresh nonce; resolves with the refusal reason, or null
   * when the quote verifies. A new challenge replaces an outstanding one (whose nonce is dropped).
   */
  private attest(c: Conn, f: AdvertiseFrame): Promise<string | null> {
    const a = this.options.attestation;
    if (a === undefined) return Promise.resolve('tier attested refused: this node does not verify attestation (no attested tier here)');
    const key = c.grant!.attestationKey!;
    if (c.attest !== null) clearTimeout(c.attest.timer);
    const challenge = { nonce: randomBytes(32), issuedAt: a.now() };
    this.counters.attestation.challenges++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        c.attest = null;
        this.refusedAttestation('timeout');
        resolve(`tier attested refused: stale nonce: no quote within ${a.timeoutMs} ms of the challenge`);
      }, a.timeoutMs);
      c.attest = {
        timer,
        answer: (q) => {
          // Single use: whatever the quote says, this nonce is spent.
          c.attest = null;
          clearTimeout(timer);
          Promise.resolve(a.policy()).then((policy) => {
            const v = a.verifier.verify({ evidence: q, challenge, key, policy, dservices: f.dservices });
            if (v.ok) {
              this.counters.attestation.verified++;
              this.log.info({ miner: c.minerId!.slice(0, 16), evidence: a.verifier.kind, runtime: v.runtime.slice(0, 16), dservices: Object.keys(v.dservices) }, 'miner attestation verified');
              return resolve(null);
            }
            this.refusedAttestation(v.code);
            resolve(`tier attested refused: ${v.reason}`);
          }, (err: unknown) => resolve(`tier attested refused: the allow-list could not be read (${excerpt(String((err as Error)?.message))})`));
        },
      };
      c.out.push(frame({ t: 'attest', nonce: challenge.nonce }));
    });
  }

  private refusedAttestation(code: RefusalCode | 'timeout' | 'unsolicited'): void {
    const r = this.counters.attestation.refused;
    r[code] = (r[code] ?? 0) + 1;
  }

  /** An attested miner proves itself again every interval; a failed proof takes it out, saying why. */
  private scheduleReattest(c: Conn): void {
    const a = this.options.attestation;
    if (c.reattest !== null) clearTimeout(c.reattest);
    c.reattest = null;
    if (a === undefined || c.admittedTier !== 'attested') return;
    c.reattest = setTimeout(() => {
      c.reattest = null;
      const f = c.advert;
      if (f === null || f.tier !== 'attested' || c.ws.readyState !== c.ws.OPEN) return;
      const seq = c.advertSeq;
      void this.attest(c, f).then((refused) => {
        if (c.advertSeq !== seq || c.ws.readyState !== c.ws.OPEN) return;
        if (refused !== null) return this.reject(c, CLOSE.tierRefused, refused, 'forbidden');
        this.scheduleReattest(c);
      });
    }, a.intervalMs);
    c.reattest.unref();
  }

  /** An admitted advertisement: its payout address to the ledger, the miner into the pool. */
  private join(id: string, f: AdvertiseFrame): void {
    const c = this.byMiner.get(id);
    if (c !== undefined && c.admittedTier !== f.tier) {
      c.admittedTier = f.tier;
      this.log.debug({ miner: id.slice(0, 16), tier: f.tier, grantedBy: f.tier === 'attested' ? 'quote' : c.grant!.by }, 'miner admitted to its tier');
    }
    if (f.payoutAddress !== undefined) this.options.onPayoutAddress?.(id, f.payoutAddress);
    this.broker.addMiner(id, this.options.admitDServices?.(f) ?? f);
    if (c !== undefined) this.scheduleReattest(c);
  }

  /**
   * Sends an error frame with the reason, then closes the tunnel. The reason may quote what the
   * peer sent: the frame carries a bounded, escaped excerpt of it, the log a shorter one. A
   * protocol violation by an authenticated miner counts against it (see `miner-faults.ts`).
   */
  private reject(c: Conn, code: number, reason: string, errorCode: CgnError['code'] = code === CLOSE.badFrame ? 'bad_frame' : 'unexpected_frame'): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    if (code === CLOSE.badFrame) this.counters.badFrames++;
    if (code === CLOSE.unexpectedFrame) this.counters.unexpectedFrames++;
    const logged = excerpt(reason);
    let quarantined = false;
    if (c.minerId !== null && (code === CLOSE.badFrame || code === CLOSE.unexpectedFrame)) {
      quarantined = this.faults.record(c.minerId, logged);
      if (quarantined) this.counters.quarantined++;
    }
    this.log.warn({ miner: c.minerId?.slice(0, 16), remote: this.remoteOf(c), reason: logged, ...(quarantined ? { quarantinedMs: this.faults.options.quarantineMs } : {}) }, 'closing miner tunnel');
    c.out.push(frame({ t: 'error', code: errorCode, message: excerpt(reason, LIMITS.maxMessageLength) }));
    c.out.flush();
    if (c.minerId !== null && this.byMiner.get(c.minerId) === c) {
      this.byMiner.delete(c.minerId);
      this.broker.removeMiner(c.minerId, reason);
    }
    this.end(c, code, reason);
  }

  /** The peer's `address:port`, read once (undefined parts once its socket is gone). */
  private remoteOf(c: Conn): string {
    return (c.remote ??= `${c.socket.remoteAddress}:${c.socket.remotePort}`);
  }

  private end(c: Conn, code: number, reason: string): void {
    if (c.ws.readyState === c.ws.CLOSED || c.ws.readyState === c.ws.CLOSING) return;
    // Close reasons are limited to 123 bytes.
    c.ws.close(code, Buffer.from(reason).subarray(0, 120).toString());
    const kill = setTimeout(() => c.ws.terminate(), 2000);
    kill.unref();
  }

  /**
   * A miner's beat (ready tunnels only): counted against the rate bound, and answered with the
   * node's own beat only when nothing went to that miner for `NODE_BEAT_AFTER_INTERVALS`.
   */
  private onBeat(c: Conn, now: number): void {
    this.counters.beats++;
    const hb = this.options.heartbeatMs;
    if (!countBeat(c, now, hb)) return this.tooManyBeats(c);
    if (!c.beats || now - c.lastSent < NODE_BEAT_AFTER_INTERVALS * hb) return;
    this.counters.beatsSent++;
    c.lastSent = now;
    if (c.out.pending > 0) c.out.push(frame({ t: 'beat' }));
    else if (c.ws.readyState === c.ws.OPEN) c.ws.send(BEAT_MESSAGE, { binary: true });
  }

  /** More beats and pings in one interval than a live miner needs: a protocol fault (each costs a read, a ping a write). */
  private tooManyBeats(c: Conn): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    this.counters.tooManyBeats++;
    this.reject(c, CLOSE.unexpectedFrame, `too many heartbeats: more than ${MAX_BEATS_PER_INTERVAL} beats or pings within one heartbeat interval (${this.options.heartbeatMs} ms); a miner needs one`);
  }

  /** One heartbeat bucket: each tunnel's verdict (`heartbeat-rule.ts`); the pings share one encoded message. */
  private beat(conns: Iterable<Conn>, now: number): void {
    const hb = this.options.heartbeatMs;
    let ping: Buffer | null = null;
    for (const c of conns) {
      const ready = c.phase === 'ready';
      const verdict = ready && c.beats ? visitBeating(c, now, hb) : visit(c, ready, now, hb);
      if (verdict === 'drop') {
        this.counters.heartbeatLost++;
        this.log.warn({ miner: c.minerId?.slice(0, 16), remote: this.remoteOf(c), silentMs: now - c.lastSeen, heartbeatMs: hb }, 'miner silent past its heartbeat bound; dropping');
        if (c.minerId !== null && this.byMiner.get(c.minerId) === c) {
          this.byMiner.delete(c.minerId);
          this.broker.removeMiner(c.minerId, 'heartbeat lost');
        }
        this.heartbeat?.delete(c);
        c.ws.terminate();
      } else if (verdict === 'ping') {
        this.counters.pings++;
        // Frames already waiting to go: the ping rides with them. Otherwise it is written at once,
        // without a batch of its own to schedule and encode.
        if (c.out.pending > 0) c.out.push(frame({ t: 'ping', ts: now }));
        else if (c.ws.readyState === c.ws.OPEN) {
          c.ws.send(ping ??= Buffer.concat(encodeMessageParts([frame({ t: 'ping', ts: now })])), { binary: true });
        }
      }
    }
  }
}
