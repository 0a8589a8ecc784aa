/**
 * The miner's side of the tunnel: a WebSocket client that dials the node, authenticates,
 * advertises, and runs the work the node sends.
 *
 * Handshake: `hello` -> node `challenge` -> `auth` (Ed25519 over the nonce) -> node `welcome`
 * -> `advertise`. Then `work` is run through `execute` and acked by its answer (or after 20 ms if it runs longer); the answer goes back
 * as `result`, or as `error` with the work id (retryable when another miner may succeed).
 * `cancel` aborts a unit, `ping` gets a `pong`, a node's `drain` stops new work and closes the
 * tunnel once the work in flight is done; a node's `error` is logged.
 *
 * Liveness: the miner says in its hello that it beats; a node that wants beats says `beatMs` in
 * its welcome, and the miner then sends a `beat` whenever nothing else went to the node for about
 * that long (at least one frame every `beatMs`; the node pings it no more). An older node pings
 * instead, and the miner answers. No frame for 3x `heartbeatMs` (from `welcome`) means the tunnel
 * is dead; it is terminated. A message that does not decode closes the tunnel with 4002, an unexpected frame
 * with 4003. Every close is followed by a reconnect after an exponential backoff with full
 * jitter, reset by each `welcome`. Outgoing frames are batched per event-loop turn (`Outbox`).
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { WebSocket, type RawData } from 'ws';
import {
  CgnError, LIMITS, NODE_TO_MINER, decodeMessage, decodeMessageFragments, excerpt, frame, frameProblem, isWritableHeader, signChallenge,
  type AdvertiseFrame, type ErrorCode, type Frame, type MinerKeyPair, type PlaceFrame, type PlacedFrame, type UnplaceFrame, type ProbeFrame, type ProbedFrame, type QuoteFrame, type WorkFrame,
} from '@cgn/protocol';
import { errorText, type Log } from './log.js';
import { Outbox, RESULT_FRAME_ROOM_BYTES, resultFits, sendParts } from '@cgn/protocol';
import type { WorkOutcome } from './proxy.js';
import { Cancellation } from './cancellation.js';

export const AGENT = 'cgn-miner/0.1.0';

/** Close codes the miner uses (the node uses the same numbers for the same reasons). */
export const MINER_CLOSE = {
  normal: 1000,
  goingAway: 1001,
  badFrame: 4002,
  unexpectedFrame: 4003,
} as const;

export type Advertisement = Omit<AdvertiseFrame, 't' | 'v'>;

export interface TunnelOptions {
  url: string;
  key: MinerKeyPair;
  log: Log;
  reconnectBaseMs: number;
  reconnectCapMs: number;
  handshakeTimeoutMs: number;
  maxMessageBytes: number;
  /** Work units run at once; more is refused with a retryable `queue_full`. */
  slots: number;
  /** What to advertise now (called after each `welcome` and on `readvertise()`). */
  advertisement: () => Advertisement;
  /** Answers the node's attestation challenge with a TPM quote over its nonce (attested tier); absent: no TPM. */
  attest?: (nonce: Uint8Array) => Promise<Omit<QuoteFrame, 't' | 'v'>>;
  /** Runs one work unit; rejects with a `CgnError`. */
  execute: (work: WorkFrame, cancel: Cancellation) => Promise<WorkOutcome>;
  /** Answers the node's capability probe (`probe.ts`); absent: the probe is refused with an error frame. */
  probe?: (f: ProbeFrame) => Promise<Omit<ProbedFrame, 't' | 'v'>>;
  /** The node placed or unplaced a DService here (`package-placement.ts`); absent: refused with an error frame. */
  placement?: (f: PlaceFrame | UnplaceFrame) => void;
  /** The backoff's randomness (tests); default `Math.random`. */
  random?: () => number;
  /** How a `wss://` node proves itself (default: the system's CAs). */
  trust?: NodeTrust;
}

/**
 * Whose certificate a miner accepts from its node: one the system's CAs (or `ca`) vouch for, for the
 * URL's host; with `pinSha256`, only the certificate with that SHA-256 fingerprint (with `ca` as well,
 * both must hold). Nothing, not even `hello`, is sent before the certificate passed.
 */
export interface NodeTrust {
  ca?: Buffer;
  /** 64 hex digits, colons allowed (as `openssl x509 -fingerprint -sha256` prints them). */
  pinSha256?: string;
}

/** A fingerprint in one spelling: upper-case hex pairs joined by colons (Node's `fingerprint256`). */
export function normalFingerprint(f: string): string {
  const hex = f.replace(/[:\s]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new Error(`"${f}" is not a SHA-256 fingerprint (64 hex digits, colons allowed)`);
  return hex.match(/../g)!.join(':');
}

export interface DisconnectInfo {
  code: number;
  reason: string;
  /** Whether the node had welcomed this connection. */
  welcomed: boolean;
}

export interface WorkFailure {
  id: string;
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

export interface TunnelEvents {
  /** A dial starts; `attempt` counts since the last welcome. */
  connecting: [attempt: number];
  welcome: [info: { minerId: string; heartbeatMs: number }];
  advertised: [frame: AdvertiseFrame];
  disconnected: [info: DisconnectInfo];
  /** A reconnect is scheduled in `delayMs`. */
  reconnecting: [delayMs: number];
  /** A frame from the node (after decoding), for observers. */
  frame: [frame: Frame];
  'work-done': [info: { id: string; status: number; execUs: number; cpuUs: number }];
  'work-failed': [info: WorkFailure];
  'work-cancelled': [id: string];
  /** No work in flight any more. */
  idle: [];
  /** Something the node wants the miner's owner to know (e.g. earnings held for want of a payout address). */
  notice: [info: { kind: string; message: string }];
}

type Phase = 'connecting' | 'challenge' | 'welcome' | 'ready' | 'closed';

interface Conn {
  ws: WebSocket;
  out: Outbox;
  phase: Phase;
  heartbeatMs: number;
  /** A frame arrived since the last watchdog tick. */
  seen: boolean;
  missed: number;
  timers: NodeJS.Timeout[];
  /** The node asked this connection to drain. */
  drained: boolean;
  closeCode: number | null;
  closeReason: string;
  /** Work acked by nothing yet: a result or error implies the ack, the ack timer sends the rest. */
  unacked: Set<string>;
  ackTimer: NodeJS.Timeout | null;
  /** The largest message the node said it accepts (its welcome); null: it did not say (an older node). */
  maxFrameBytes: number | null;
  /** When anything last went to the node (Date.now()), for the beats. */
  lastSent: number;
  /** The next beat check (`startBeats`). */
  beatTimer: NodeJS.Timeout | null;
}

/**
 * How long an ack may wait to ride along with the result. Work that answers sooner needs no ack
 * frame of its own (a result implies it), which halves the miner's messages under load; slower
 * work is acked after this delay, far inside the node's ack timeout (2 s by default).
 */
const ACK_DELAY_MS = 20;

/** Beat checks fall on one of this many wall-clock slots of half the beat interval: see `startBeats`. */
const BEAT_SLOTS = 10;

/** A frame goes at once when nothing went to the node for this long (light load): see `Outbox`. */
const SEND_AT_ONCE_WHEN_QUIET_MS = 1;

interface InFlight {
  cancel: Cancellation;
  /** performance.now() after which the unit is abandoned. */
  deadline: number;
  conn: Conn;
}

const SWEEP_MS = 250;

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** Close reasons are limited to 123 bytes. */
function closeReason(s: string): string {
  const b = Buffer.from(s);
  return b.length <= 120 ? s : b.subarray(0, 120).toString();
}

const zeroMask = (mask: Buffer): void => void mask.fill(0);

/**
 * Client frames are masked (RFC 6455) so that bytes a payload author chose cannot pass for
 * HTTP to a proxy on the path. Over TLS (`wss:`) or loopback no such proxy can read them, so
 * the miner sends them with an all-zero mask, which `ws` skips: no copy and XOR of every
 * outgoing byte (the biggest CPU cost of large results otherwise).
 */
export function needsMasking(url: string): boolean {
  const u = new URL(url);
  if (u.protocol === 'wss:') return false;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return !(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host));
}

export class Tunnel extends EventEmitter<TunnelEvents> {
  readonly stats = { connects: 0, welcomes: 0, workDone: 0, failures: 0, cancelled: 0, refused: 0 };
  private conn: Conn | null = null;
  private readonly inFlight = new Map<string, InFlight>();
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private stopped = false;
  private draining = false;
  /** A capability probe is being answered (one at a time). */
  private probing = false;
  /** Paused by the owner: out of the node's pool (a `drain`) until resumed. */
  private pausedValue = false;
  private minerIdValue: string | null = null;
  private readonly log: Log;
  private readonly random: () => number;

  /** Whether frames go out without masking (see `needsMasking`). */
  private readonly unmasked: boolean;

  constructor(private readonly opts: TunnelOptions) {
    super();
    this.log = opts.log;
    this.random = opts.random ?? Math.random;
    this.unmasked = !needsMasking(opts.url);
  }

  /** Whether the node has welcomed the current connection. */
  get connected(): boolean {
    return this.conn?.phase === 'ready';
  }

  /** The id the node gave this miner (kept across reconnects). */
  get minerId(): string | null {
    return this.minerIdValue;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Starts dialling (and re-dialling after each close until `close()`). */
  start(): void {
    if (this.stopped || this.conn !== null || this.reconnectTimer !== null) return;
    this.dial();
  }

  get paused(): boolean {
    return this.pausedValue;
  }

  /**
   * Takes the miner out of the node's pool, keeping the tunnel: a `drain` to the node, no new
   * work; the work in flight finishes. Said again after each reconnect until `resume()`.
   */
  pause(reason: string): void {
    if (this.pausedValue) return;
    this.pausedValue = true;
    const c = this.conn;
    if (c?.phase === 'ready') c.out.push(frame({ t: 'drain', reason }));
  }

  /** Back into the pool: a fresh `advertise` (the node takes a re-advertising miner back). */
  resume(): void {
    if (!this.pausedValue) return;
    this.pausedValue = false;
    this.readvertise();
  }

  /** Tells the node how a `place` went (dropped when the tunnel is not up: the next advertisement says it). */
  sendPlaced(f: Omit<PlacedFrame, 'v'>): void {
    const c = this.conn;
    if (c?.phase === 'ready') c.out.push(frame(f));
  }

  /** Sends a fresh `advertise` if the node has welcomed us (e.g. a DService came or went). */
  readvertise(): void {
    const c = this.conn;
    if (c?.phase !== 'ready') return;
    this.advertise(c);
    // An advertisement brings a miner back into the pool: a stopping or paused one says it is out again.
    if (this.draining) c.out.push(frame({ t: 'drain', reason: 'miner stopping' }));
    else if (this.pausedValue) c.out.push(frame({ t: 'drain', reason: 'paused by its owner' }));
  }

  // ---- connection ----------------------------------------------------------------------------

  private dial(): void {
    this.reconnectTimer = null;
    if (this.stopped) return;
    this.stats.connects++;
    this.emit('connecting', this.attempt);
    const trust = this.opts.trust ?? {};
    const pin = trust.pinSha256 === undefined ? null : normalFingerprint(trust.pinSha256);
    const ws = new WebSocket(this.opts.url, {
      perMessageDeflate: false,
      handshakeTimeout: this.opts.handshakeTimeoutMs,
      maxPayload: 256 * 1024 * 1024,
      ...(this.unmasked ? { generateMask: zeroMask } : {}),
      ...(trust.ca ? { ca: trust.ca } : {}),
      // A pin alone is the whole check (a self-signed node certificate); with a CA, both must hold.
      ...(pin !== null && !trust.ca ? { rejectUnauthorized: false } : {}),
    });
    if (pin !== null) {
      // 'upgrade' comes before 'open', and hello goes out only on 'open'.
      ws.once('upgrade', (res) => {
        const seen = (res.socket as TLSSocket).getPeerCertificate?.()?.fingerprint256;
        if (seen !== pin) {
          this.log.error({ url: this.opts.url, pinned: pin, presented: seen ?? 'none' }, "the node's certificate is not the pinned one: not connecting (check --pin-sha256)");
          ws.terminate();
        }
      });
    }
    // Messages arrive as their fragments, unjoined: see decodeMessageFragments.
    ws.binaryType = 'fragments';
    const c: Conn = {
      ws,
      out: new Outbox((parts, written) => {
        if (ws.readyState === WebSocket.OPEN) {
          c.lastSent = Date.now();
          sendParts(ws, parts, written);
        } else written?.();
      }, this.opts.maxMessageBytes, { sendAtOnceWhenQuietMs: SEND_AT_ONCE_WHEN_QUIET_MS }),
      phase: 'connecting',
      heartbeatMs: 0,
      seen: false,
      missed: 0,
      timers: [],
      drained: false,
      closeCode: null,
      closeReason: '',
      unacked: new Set(),
      ackTimer: null,
      maxFrameBytes: null,
      lastSent: 0,
      beatTimer: null,
    };
    this.conn = c;
    ws.on('open', () => {
      c.phase = 'challenge';
      c.out.push(frame({ t: 'hello', publicKey: this.opts.key.publicKey, agent: AGENT, beats: true }));
      const t = setTimeout(() => {
        if (c.phase !== 'ready') this.closeConn(c, MINER_CLOSE.goingAway, `no welcome within ${this.opts.handshakeTimeoutMs} ms`, true);
      }, this.opts.handshakeTimeoutMs);
      c.timers.push(t);
    });
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(c, data, isBinary));
    ws.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (/CERT|SELF_SIGNED|ERR_TLS|UNABLE_TO_VERIFY|HOSTNAME/i.test(code)) {
        this.log.error({ err: errorText(err), code, url: this.opts.url }, "cannot verify the node's certificate: not connecting (trust its CA with --ca-file FILE or pin it with --pin-sha256 FINGERPRINT)");
      } else this.log.warn({ err: errorText(err), url: this.opts.url }, 'tunnel error');
    });
    ws.on('close', (code: number, reason: Buffer) => this.onClose(c, code, reason.toString()));
  }

  private onMessage(c: Conn, data: RawData, isBinary: boolean): void {
    if (c !== this.conn || c.phase === 'closed' || c.closeCode !== null) return;
    c.seen = true;
    if (!isBinary) return this.badFrame(c, 'bad frame: text message; frames are binary MessagePack');
    let frames: Frame[];
    try {
      // Fragments (binaryType 'fragments'): an upload's body stays in the pieces it came in.
      frames = Array.isArray(data) ? decodeMessageFragments(data) : decodeMessage(Buffer.isBuffer(data) ? data : Buffer.from(data));
    } catch (err) {
      return this.badFrame(c, excerpt(errorText(err), LIMITS.maxMessageLength));
    }
    for (const f of frames) {
      // A frame may have closed the connection; the rest of the message is moot.
      if (c.closeCode !== null || (c.phase as Phase) === 'closed') return;
      this.onFrame(c, f);
    }
  }

  private badFrame(c: Conn, reason: string): void {
    this.log.warn({ reason: excerpt(reason) }, 'bad message from the node; closing the tunnel');
    this.closeConn(c, MINER_CLOSE.badFrame, reason);
  }

  private unexpected(c: Conn, f: Frame, expected: string): void {
    const reason = `unexpected ${f.t} frame${expected ? `: expected ${expected}` : ' from a node'}`;
    this.log.warn({ reason }, 'unexpected frame from the node; closing the tunnel');
    this.closeConn(c, MINER_CLOSE.unexpectedFrame, reason);
  }

  private onFrame(c: Conn, f: Frame): void {
    if (this.listenerCount('frame') > 0) this.emit('frame', f);
    if (!NODE_TO_MINER.has(f.t)) return this.unexpected(c, f, '');
    if (f.t === 'error') {
      this.log.warn({ code: f.code, message: excerpt(f.message), id: f.id }, 'the node reported an error');
      return;
    }
    if (f.t === 'ping') {
      c.out.push(frame({ t: 'pong', ts: f.ts }));
      return;
    }
    if (f.t === 'notice') {
      // The node's periodic standing report (kind reputation) is routine; other notices want the owner.
      this.log[f.kind === 'reputation' ? 'debug' : 'warn']({ kind: f.kind, message: excerpt(f.message, LIMITS.maxMessageLength) }, 'notice from the node');
      this.emit('notice', { kind: f.kind, message: f.message });
      return;
    }
    if (f.t === 'drain' && c.phase !== 'ready') {
      this.log.info({ reason: f.reason }, 'the node asked this miner to drain during the handshake');
      this.closeConn(c, MINER_CLOSE.normal, 'drained');
      return;
    }
    switch (c.phase) {
      case 'challenge':
        if (f.t !== 'challenge') return this.unexpected(c, f, 'challenge');
        c.phase = 'welcome';
        c.out.push(frame({ t: 'auth', signature: signChallenge(this.opts.key, f.nonce, f.nodeId) }));
        return;
      case 'welcome':
        if (f.t !== 'welcome') return this.unexpected(c, f, 'welcome');
        c.maxFrameBytes = f.maxFrameBytes ?? null;
        return this.onWelcome(c, f.minerId, f.heartbeatMs, f.beatMs);
      case 'ready':
        return this.onReadyFrame(c, f);
      default:
        return;
    }
  }

  private onWelcome(c: Conn, minerId: string, heartbeatMs: number, beatMs: number | undefined): void {
    c.phase = 'ready';
    c.heartbeatMs = heartbeatMs;
    this.attempt = 0;
    this.stats.welcomes++;
    this.minerIdValue = minerId;
    for (const t of c.timers) clearTimeout(t);
    c.timers = [];
    c.seen = true;
    // Dead-tunnel watchdog: 3 heartbeat intervals without any frame.
    const watchdog = setInterval(() => {
      if (c.seen) {
        c.seen = false;
        c.missed = 0;
        return;
      }
      if (++c.missed >= 3) {
        this.log.warn({ heartbeatMs }, 'no frame from the node for 3 heartbeats; the tunnel is dead');
        c.closeCode = 1006;
        c.closeReason = 'heartbeat lost';
        c.ws.terminate();
      }
    }, Math.max(10, heartbeatMs));
    c.timers.push(watchdog);
    if (beatMs !== undefined) this.startBeats(c, beatMs);
    this.log.info({ minerId: minerId.slice(0, 16), url: this.opts.url, heartbeatMs, ...(beatMs !== undefined ? { beatMs } : {}) }, 'connected to the node');
    this.emit('welcome', { minerId, heartbeatMs });
    this.advertise(c);
    if (this.draining) {
      // Stopping while the handshake ran: tell the node at once.
      c.out.push(frame({ t: 'drain', reason: 'miner stopping' }));
    } else if (this.pausedValue) c.out.push(frame({ t: 'drain', reason: 'paused by its owner' }));
  }

  /**
   * Beats for a node that asked for them: a check every half `beatMs`; a beat goes when nothing
   * went for 0.9 `beatMs` (an idle miner beats every other check, a busy one never: its results
   * are its sign of life), so the node hears from it at least every `beatMs` while its timers run
   * on time. The checks fall on one of `BEAT_SLOTS` slots of the half interval on the wall clock,
   * drawn at random: a node's miners beat in that many groups, not in step and not one by one,
   * so the node reads a group's sockets in one wakeup of its event loop (a lone small read costs
   * it several times its share of a group's).
   */
  private startBeats(c: Conn, beatMs: number): void {
    const every = Math.max(BEAT_SLOTS, Math.floor(beatMs / 2));
    const offset = Math.floor(Math.random() * BEAT_SLOTS) * Math.floor(every / BEAT_SLOTS);
    const next = (): void => {
      const delay = (offset - (Date.now() % every) + every) % every || every;
      c.beatTimer = setTimeout(() => {
        if (c.phase !== 'ready') return;
        if (Date.now() - c.lastSent >= 0.9 * beatMs) c.out.push(frame({ t: 'beat' }));
        next();
      }, delay);
    };
    next();
  }

  private advertise(c: Conn): void {
    const ad = frame({ t: 'advertise', ...this.opts.advertisement() }) as AdvertiseFrame;
    c.out.push(ad);
    this.emit('advertised', ad);
  }

  private onAttest(c: Conn, nonce: Uint8Array): void {
    const attest = this.opts.attest;
    if (attest === undefined) {
      c.out.push(frame({ t: 'error', code: 'forbidden', message: 'this miner has no TPM to quote from (start it with --tpm for the attested tier)' }));
      return;
    }
    attest(nonce).then(
      (q) => {
        if (c.phase === 'ready') c.out.push(frame({ t: 'quote', ...q }));
      },
      (err: unknown) => {
        this.log.error({ err: (err as Error).message }, 'TPM quote failed');
        if (c.phase === 'ready') c.out.push(frame({ t: 'error', code: 'internal', message: excerpt(`TPM quote failed: ${(err as Error).message}`) }));
      },
    );
  }

  private onProbe(c: Conn, f: ProbeFrame): void {
    const probe = this.opts.probe;
    if (probe === undefined) {
      // The probe's id, so the node ends that probe now instead of at its timeout.
      c.out.push(frame({ t: 'error', id: f.id, code: 'forbidden', message: 'this miner does not answer capability probes' }));
      return;
    }
    // One probe at a time: each may start a worker thread per chain, and a node must not stack them.
    if (this.probing) {
      c.out.push(frame({ t: 'error', id: f.id, code: 'rate_limited', message: 'a capability probe is running already; one at a time' }));
      return;
    }
    this.probing = true;
    probe(f)
      .then(
        (answer) => {
          if (c.phase === 'ready') c.out.push(frame({ t: 'probed', ...answer }));
        },
        (err: unknown) => {
          this.log.warn({ err: (err as Error).message }, 'capability probe failed');
          if (c.phase === 'ready') c.out.push(frame({ t: 'error', id: f.id, code: 'internal', message: excerpt(`capability probe failed: ${(err as Error).message}`) }));
        },
      )
      .finally(() => (this.probing = false));
  }

  private onReadyFrame(c: Conn, f: Frame): void {
    switch (f.t) {
      case 'work':
        return this.onWork(c, f);
      case 'cancel':
        return this.onCancel(f.id);
      case 'pong':
      case 'beat':
        return;
      case 'attest':
        return this.onAttest(c, f.nonce);
      case 'place':
      case 'unplace':
        if (this.opts.placement !== undefined) return this.opts.placement(f);
        c.out.push(frame({ t: 'error', code: 'forbidden', message: `this miner does not take placements (${f.t} ${f.instanceId.slice(0, 64)})` }));
        return;
      case 'probe':
        return this.onProbe(c, f);
      case 'drain':
        this.log.info({ reason: f.reason, inFlight: this.inFlight.size }, 'the node asked this miner to drain');
        c.drained = true;
        if (this.inFlight.size === 0) this.closeConn(c, MINER_CLOSE.normal, 'drained');
        return;
      default:
        return this.unexpected(c, f, 'work, cancel, ping, pong, drain or error');
    }
  }

  private onClose(c: Conn, code: number, reason: string): void {
    if (c.phase === 'closed') return;
    const welcomed = c.phase === 'ready' || c.heartbeatMs > 0;
    c.phase = 'closed';
    for (const t of c.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    c.timers = [];
    if (c.beatTimer !== null) clearTimeout(c.beatTimer);
    if (c.ackTimer !== null) clearTimeout(c.ackTimer);
    c.unacked.clear();
    c.out.clear();
    // Our own close code (bad frame, heartbeat) is the interesting one when we closed.
    const info: DisconnectInfo = { code: c.closeCode ?? code, reason: c.closeCode !== null ? c.closeReason : reason, welcomed };
    if (c.closeCode === null) {
      const fields = { code, reason, url: this.opts.url };
      if (code >= 4000 && code <= 4999) this.log.warn(fields, `the node closed the tunnel: ${reason || '(no reason)'}`);
      else if (code === 1000 || code === 1001) this.log.info(fields, 'the node closed the tunnel');
      else if (welcomed) this.log.warn(fields, 'tunnel lost');
      else this.log.debug(fields, 'could not connect to the node');
    }
    // The node gives the work of a closed tunnel to other miners: stop running it here.
    this.abortAll(c, new CgnError('cancelled', 'the tunnel closed'));
    if (c === this.conn) this.conn = null;
    this.emit('disconnected', info);
    if (!this.stopped) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== null) return;
    const bound = Math.min(this.opts.reconnectCapMs, this.opts.reconnectBaseMs * 2 ** Math.min(this.attempt, 30));
    const delay = Math.floor(this.random() * bound);
    this.attempt++;
    this.emit('reconnecting', delay);
    this.reconnectTimer = setTimeout(() => this.dial(), delay);
  }

  /** Closes a connection with a code and reason (then reconnects, unless stopped). */
  private closeConn(c: Conn, code: number, reason: string, terminate = false): void {
    if (c.phase === 'closed' || c.closeCode !== null) return;
    c.closeCode = code;
    c.closeReason = reason;
    c.out.flush();
    if (terminate || c.ws.readyState !== WebSocket.OPEN) {
      c.ws.terminate();
      return;
    }
    c.ws.close(code, closeReason(reason));
    // A peer that does not answer the close handshake gets the socket cut.
    const t = setTimeout(() => c.ws.terminate(), 2000);
    t.unref();
    c.timers.push(t);
  }

  // ---- work ----------------------------------------------------------------------------------

  private onWork(c: Conn, w: WorkFrame): void {
    if (this.inFlight.has(w.id)) {
      this.log.warn({ id: w.id }, 'work id already in flight; ignoring the duplicate');
      return;
    }
    if (this.draining || c.drained || this.pausedValue) return this.refuse(c, w.id, 'draining', 'the miner is draining');
    if (this.inFlight.size >= this.opts.slots) return this.refuse(c, w.id, 'queue_full', 'all slots of this miner are busy');
    c.unacked.add(w.id);
    c.ackTimer ??= setTimeout(() => this.sendAcks(c), ACK_DELAY_MS);
    const cancel = new Cancellation();
    const entry: InFlight = { cancel, deadline: performance.now() + w.timeoutMs, conn: c };
    this.inFlight.set(w.id, entry);
    if (this.sweeper === null) this.startSweeper();
    let p: Promise<WorkOutcome>;
    try {
      p = this.opts.execute(w, cancel);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (o) => this.onOutcome(w.id, entry, o),
      (err: unknown) => this.onFailure(w.id, entry, err),
    );
  }

  /** Acks the work that is still running after ACK_DELAY_MS. */
  private sendAcks(c: Conn): void {
    c.ackTimer = null;
    if (c.phase === 'closed') return;
    for (const id of c.unacked) c.out.push(frame({ t: 'ack', id }));
    c.unacked.clear();
  }

  private refuse(c: Conn, id: string, code: ErrorCode, message: string): void {
    this.stats.refused++;
    c.out.push(frame({ t: 'error', id, code, message, retryable: true }));
    this.emit('work-failed', { id, code, message, retryable: true });
  }

  private onOutcome(id: string, entry: InFlight, o: WorkOutcome): void {
    if (this.inFlight.get(id) !== entry) return; // cancelled, or the tunnel closed
    const limit = entry.conn.maxFrameBytes;
    if (limit !== null && !resultFits(o.body.length, limit)) {
      // Sent, it would close the tunnel (and every unit on it); the node answers the client 413.
      return this.onFailure(id, entry, new CgnError('payload_too_large', `the DService's answer (${o.body.length} bytes) is larger than the node accepts from a miner (${limit}-byte frames, ${RESULT_FRAME_ROOM_BYTES} of them for all but the body)`));
    }
    const result = this.sendableResult(id, o);
    if (result instanceof CgnError) return this.onFailure(id, entry, result);
    this.inFlight.delete(id);
    const c = entry.conn;
    c.unacked.delete(id);
    c.out.push(result);
    this.stats.workDone++;
    if (this.listenerCount('work-done') > 0) this.emit('work-done', { id, status: o.status, execUs: o.execUs, cpuUs: o.cpuUs });
    this.afterUnit(c);
  }

  /**
   * The result frame for a DService's answer, as the node accepts it (the protocol's result rules:
   * a final status, writable headers within the size bound). Headers HTTP cannot carry are dropped;
   * an answer that still breaks the rules (an interim 1xx status, say) is the DService's failure,
   * reported as a non-retryable error instead of a frame that would get this miner cut off.
   */
  private sendableResult(id: string, o: WorkOutcome): Frame | CgnError {
    const f = frame({
      t: 'result', id, status: o.status, headers: o.headers, body: o.body,
      metering: { execUs: o.execUs, cpuUs: o.cpuUs }, resultHash: o.resultHash,
    });
    const problem = frameProblem(f);
    if (problem === null) return f;
    const kept: string[] = [];
    let bytes = 0;
    for (let i = 0; i + 1 < o.headers.length; i += 2) {
      const name = o.headers[i]!;
      const value = o.headers[i + 1]!;
      if (typeof name !== 'string' || typeof value !== 'string' || !isWritableHeader(name, value)) continue;
      bytes += name.length + value.length + 4;
      if (bytes > LIMITS.maxResultHeaderBytes || kept.length >= LIMITS.maxHeaderCount * 2) break;
      kept.push(name, value);
    }
    f.headers = kept;
    if (frameProblem(f) === null) {
      this.log.warn({ id, dropped: (o.headers.length - kept.length) / 2, reason: excerpt(problem.message) }, 'dropped DService response headers HTTP cannot carry');
      return f;
    }
    return new CgnError('miner_failed', `the DService's answer cannot be sent: ${excerpt(problem.message.replace(/^bad result frame: /, ''), 300)}`);
  }

  private onFailure(id: string, entry: InFlight, err: unknown): void {
    if (this.inFlight.get(id) !== entry) return;
    this.inFlight.delete(id);
    const e = err instanceof CgnError ? err : new CgnError('internal', `the miner failed to run the work: ${errorText(err)}`);
    // A DService that is down or died may well work elsewhere; so may work the miner gave up on.
    const retryable = e.retryable || e.code === 'dservice_unavailable' || e.code === 'unknown_dservice' || e.code === 'draining';
    const message = truncate(e.message, LIMITS.maxMessageLength);
    entry.conn.unacked.delete(id);
    entry.conn.out.push(frame({ t: 'error', id, code: e.code, message, retryable }));
    this.stats.failures++;
    this.log.warn({ id, code: e.code, retryable, err: message }, 'work failed');
    this.emit('work-failed', { id, code: e.code, message, retryable });
    this.afterUnit(entry.conn);
  }

  private onCancel(id: string): void {
    const entry = this.inFlight.get(id);
    if (entry === undefined) return; // already answered: the cancel crossed the result
    this.inFlight.delete(id);
    entry.conn.unacked.delete(id);
    this.stats.cancelled++;
    entry.cancel.cancel(new CgnError('cancelled', 'cancelled by the node'));
    this.emit('work-cancelled', id);
    this.afterUnit(entry.conn);
  }

  private afterUnit(c: Conn): void {
    if (this.inFlight.size > 0) return;
    this.stopSweeper();
    this.emit('idle');
    if (c.drained && c === this.conn && c.phase === 'ready') this.closeConn(c, MINER_CLOSE.normal, 'drained');
  }

  private startSweeper(): void {
    this.sweeper = setInterval(() => {
      const now = performance.now();
      for (const [id, e] of [...this.inFlight]) {
        if (e.deadline > now) continue;
        const err = new CgnError('deadline_exceeded', `work ${id} ran past its timeout`);
        e.cancel.cancel(err);
        // Answered here even if whatever ran it never settles: a slot is never held for good.
        this.onFailure(id, e, err);
      }
    }, SWEEP_MS);
    this.sweeper.unref();
  }

  private stopSweeper(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  private abortAll(c: Conn | null, reason: CgnError): void {
    let any = false;
    for (const [id, e] of this.inFlight) {
      if (c !== null && e.conn !== c) continue;
      this.inFlight.delete(id);
      e.cancel.cancel(reason);
      any = true;
    }
    if (any && this.inFlight.size === 0) {
      this.stopSweeper();
      this.emit('idle');
    }
  }

  // ---- stop ----------------------------------------------------------------------------------

  /**
   * Graceful stop, part one: tells the node (`drain`), takes no new work, and waits for the work
   * in flight, at most `timeoutMs`; what is still running then is abandoned with a retryable
   * `error` frame, so the node runs it elsewhere.
   */
  async drain(reason: string, timeoutMs: number): Promise<void> {
    this.draining = true;
    const c = this.conn;
    if (c?.phase === 'ready') {
      c.out.push(frame({ t: 'drain', reason }));
      c.out.flush();
    }
    if (this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        new Promise<boolean>((r) => this.once('idle', () => r(true))),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (!done) {
        this.log.warn({ inFlight: this.inFlight.size, timeoutMs }, 'work still running after the drain timeout; handing it back to the node');
        for (const e of this.inFlight.values()) e.cancel.cancel(new CgnError('draining', 'the miner is stopping', { retryable: true }));
        // The aborts settle on the next turns; their error frames go out before the close.
        await new Promise<void>((r) => (this.inFlight.size === 0 ? r() : this.once('idle', () => r())));
      }
    }
  }

  /** Graceful stop, part two: closes the tunnel for good (no reconnect). */
  async close(code: number = MINER_CLOSE.goingAway, reason = 'miner stopped'): Promise<void> {
    this.stopped = true;
    this.draining = true;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const c = this.conn;
    if (c === null || c.phase === 'closed') return;
    const closed = new Promise<void>((r) => c.ws.once('close', () => r()));
    if (c.phase === 'connecting') c.ws.terminate();
    else this.closeConn(c, code, reason);
    await closed;
  }
}
