/**
 * Central's side of the central <-> node link: one outgoing WebSocket over mutual TLS to each
 * node of the directory. Central presents its certificate (CN `central`), requires the node's to
 * be signed by the network CA and to name that node (CN `node:<id>`, plus the usual host name
 * check), says hello, then answers the node's requests (verify a key, approved descriptors, the
 * JWKS, a miner's standing), pushes changes (revoked keys; tokens to refuse, and all recent ones
 * when the link opens; DService approvals) and asks the node for its status every
 * `statusIntervalMs`, which feeds the directory's health and capacity. A dropped link is redialled with exponential
 * backoff and jitter; the node is marked `down` until it answers again.
 *
 * Central listens on nothing here: it only dials out.
 */
import { EventEmitter } from 'node:events';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import WebSocket, { type ClientOptions } from 'ws';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { CentralService } from '../service.js';
import { revocationEntry, revocationWindowMs } from '../auth/token-revocations.js';
import type { NodeRecord } from '../store/store.js';
import { CentralError } from '../errors.js';
import {
  CENTRAL_CERT_NAME, LINK_MAX_FRAME_BYTES, LINK_MAX_REVOCATIONS, LINK_PACKAGE_CHUNK_BYTES, LINK_SUBPROTOCOL, decodeLinkFrame, encodeLinkFrame, nodeCertName, parseNodeLinkStatus,
  type LinkDescriptor, type LinkFrame,
} from '@cgn/protocol';

export interface LinkTls {
  /** PEM: central's private key, its certificate, the network CA certificate. */
  key: string | Buffer;
  cert: string | Buffer;
  ca: string | Buffer;
}

export interface NodeLinksOptions {
  tls: LinkTls;
  clock: Clock;
  log?: Logger;
  /** Id central gives in its hello. Default "central". */
  centralId?: string;
  /** How often to ask each node for its status, ms. Default 5000. 0 = never (tests call pollStatus). */
  statusIntervalMs?: number;
  /** How often to re-read the directory for added or removed nodes, ms. Default 30 000. */
  directoryIntervalMs?: number;
  /** Redial backoff, ms. Default 250 .. 30 000. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  requestTimeoutMs?: number;
  handshakeTimeoutMs?: number;
}

export type LinkState = 'connecting' | 'open' | 'closed';

export interface LinkInfo {
  nodeId: string;
  url: string;
  state: LinkState;
  since: number;
  attempts: number;
  lastError: string | null;
}

interface Events {
  open: [nodeId: string];
  close: [nodeId: string, reason: string];
  /** A dial that did not get to an open link (refused, TLS failure, wrong node...). */
  failed: [nodeId: string, reason: string];
  status: [nodeId: string];
}

class NodeLink {
  ws: WebSocket | null = null;
  state: LinkState = 'closed';
  since: number;
  attempts = 0;
  lastError: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private stopped = false;
  private helloSeen = false;

  constructor(readonly node: NodeRecord, private readonly owner: NodeLinks) {
    this.since = owner.clock.now();
  }

  get url(): string {
    return this.node.urls.central;
  }

  connect(): void {
    if (this.stopped) return;
    const o = this.owner.opts;
    this.state = 'connecting';
    this.since = this.owner.clock.now();
    this.attempts++;
    this.helloSeen = false;
    const expected = nodeCertName(this.node.id);
    const ws = new WebSocket(this.url, LINK_SUBPROTOCOL, {
      key: o.tls.key, cert: o.tls.cert, ca: o.tls.ca,
      rejectUnauthorized: true,
      maxPayload: LINK_MAX_FRAME_BYTES,
      handshakeTimeout: o.handshakeTimeoutMs ?? 10_000,
      perMessageDeflate: false,
      // node:tls calls this with the peer certificate and wants an Error or undefined (ws's
      // typings describe an older signature).
      checkServerIdentity: ((host: string, cert: PeerCertificate): Error | undefined => {
        const err = checkServerIdentity(host, cert);
        if (err) return err;
        const cn = cert.subject?.CN;
        if (cn !== expected) return new Error(`node certificate names "${String(cn)}", expected "${expected}"`);
        return undefined;
      }) as unknown as NonNullable<ClientOptions['checkServerIdentity']>,
    });
    this.ws = ws;
    ws.on('open', () => {
      ws.send(encodeLinkFrame({ t: 'hello', from: 'central', id: o.centralId ?? CENTRAL_CERT_NAME }));
    });
    ws.on('message', (data, isBinary) => {
      let f: LinkFrame;
      try {
        f = decodeLinkFrame(isBinary ? (data as Buffer) : data.toString());
      } catch (err) {
        this.owner.log?.warn({ node: this.node.id, err: (err as Error).message }, 'bad frame from node; closing link');
        ws.close(1008, 'bad frame');
        return;
      }
      void this.onFrame(f);
    });
    ws.on('error', (err) => {
      this.lastError = err.message;
    });
    ws.on('close', (code, reason) => {
      const why = `${code}${reason.length ? ' ' + reason.toString() : ''}${this.lastError ? ` (${this.lastError})` : ''}`;
      const wasOpen = this.state === 'open';
      this.state = 'closed';
      this.since = this.owner.clock.now();
      this.ws = null;
      for (const [, p] of this.pending) (clearTimeout(p.timer), p.reject(new Error('link closed')));
      this.pending.clear();
      if (wasOpen) this.owner.emit('close', this.node.id, why);
      else this.owner.emit('failed', this.node.id, why);
      void this.owner.service.reportNodeState(this.node.id, { health: 'down' }).catch(() => undefined);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.stopped || this.timer !== null) return;
    const o = this.owner.opts;
    const min = o.backoffMinMs ?? 250;
    const max = o.backoffMaxMs ?? 30_000;
    const exp = Math.min(max, min * 2 ** Math.min(16, Math.max(0, this.attempts - 1)));
    const delay = exp / 2 + Math.random() * (exp / 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
    this.timer.unref();
  }

  private async onFrame(f: LinkFrame): Promise<void> {
    const ws = this.ws;
    if (ws === null) return;
    if (f.t === 'hello') {
      if (f.from !== 'node' || f.id !== this.node.id) {
        ws.close(1008, 'wrong node');
        return;
      }
      this.helloSeen = true;
      this.state = 'open';
      this.attempts = 0;
      this.lastError = null;
      this.since = this.owner.clock.now();
      this.owner.emit('open', this.node.id);
      void this.sendTokenRevocations(ws);
      void this.pollStatus().catch(() => undefined);
      return;
    }
    if (!this.helloSeen) {
      ws.close(1008, 'hello first');
      return;
    }
    if (f.t === 'res') {
      const p = this.pending.get(f.id);
      if (p === undefined) return;
      this.pending.delete(f.id);
      clearTimeout(p.timer);
      if (f.ok) p.resolve(f.result);
      else p.reject(new Error(`${f.error.code}: ${f.error.message}`));
      return;
    }
    if (f.t === 'push') {
      ws.close(1008, 'nodes do not push');
      return;
    }
    // A request from the node.
    try {
      const result = await this.owner.answer(f.op, f.args);
      if (ws.readyState === WebSocket.OPEN) ws.send(encodeLinkFrame({ t: 'res', id: f.id, ok: true, result }));
    } catch (err) {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(encodeLinkFrame({ t: 'res', id: f.id, ok: false, error: { code: 'internal', message: (err as Error).message } }));
      }
    }
  }

  /**
   * Sends the node every recent token revocation (it may have missed some while away); the last
   * frame says `sync`. Changes after this are pushed as they happen. If the set cannot be read
   * the link is closed, so the node does not take its tokens as checked; the redial tries again.
   */
  private async sendTokenRevocations(ws: WebSocket): Promise<void> {
    try {
      const set = await this.owner.service.tokenRevocations();
      const entries = [...set.keys.map((e) => ['k', e] as const), ...set.accounts.map((e) => ['a', e] as const)];
      for (let i = 0; i === 0 || i < entries.length; i += LINK_MAX_REVOCATIONS) {
        const chunk = entries.slice(i, i + LINK_MAX_REVOCATIONS);
        const frame = encodeLinkFrame({
          t: 'push', kind: 'tokens_revoked', sync: i + LINK_MAX_REVOCATIONS >= entries.length,
          keys: chunk.filter(([k]) => k === 'k').map(([, e]) => e), accounts: chunk.filter(([k]) => k === 'a').map(([, e]) => e),
        });
        if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
        ws.send(frame);
      }
    } catch (err) {
      this.owner.log?.error({ node: this.node.id, err: (err as Error).message }, 'cannot read the token revocations for the node; closing the link to retry');
      if (this.ws === ws) ws.close(1011, 'revocations unavailable');
    }
  }

  request(op: 'status', args: Record<string, unknown> = {}): Promise<unknown> {
    const ws = this.ws;
    if (ws === null || this.state !== 'open') return Promise.reject(new Error('link not open'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${op} timed out`));
      }, this.owner.opts.requestTimeoutMs ?? 5000);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(encodeLinkFrame({ t: 'req', id, op, args }));
    });
  }

  async pollStatus(): Promise<void> {
    try {
      const s = parseNodeLinkStatus(await this.request('status'));
      await this.owner.service.reportNodeState(this.node.id, { health: s.health, draining: s.draining, capacity: s.capacity });
      this.owner.emit('status', this.node.id);
    } catch (err) {
      if (this.state === 'open') {
        this.owner.log?.warn({ node: this.node.id, err: (err as Error).message }, 'node status failed');
        await this.owner.service.reportNodeState(this.node.id, { health: 'degraded' });
      }
    }
  }

  push(frame: string): void {
    if (this.state === 'open' && this.ws?.readyState === WebSocket.OPEN) this.ws.send(frame);
  }

  close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    if (ws === null) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once('close', () => resolve());
      if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) ws.terminate();
      else resolve();
    });
  }
}

export class NodeLinks extends EventEmitter<Events> {
  readonly clock: Clock;
  readonly log: Logger | undefined;
  private readonly links = new Map<string, NodeLink>();
  private statusTimer: NodeJS.Timeout | null = null;
  private dirTimer: NodeJS.Timeout | null = null;
  private readonly onRevoked: (e: { hash: string }) => void;
  private readonly onTokensRevoked: (e: { kind: 'key' | 'account'; id: string; at: number }) => void;
  private readonly onDirectory: () => void;
  private readonly onDServices: () => void;
  private readonly onAttestation: () => void;
  private readonly onMinerChanged: (e: { id: string }) => void;
  private readonly onAccountsChanged: () => void;
  private started = false;

  constructor(readonly service: CentralService, readonly opts: NodeLinksOptions) {
    super();
    this.clock = opts.clock;
    this.log = opts.log;
    this.onRevoked = (e) => this.pushAll(encodeLinkFrame({ t: 'push', kind: 'keys_revoked', hashes: [e.hash] }));
    this.onTokensRevoked = (e) => {
      const entry = revocationEntry(e.id, e.at, this.clock.now(), revocationWindowMs(this.service.tokens.ttlS));
      this.pushAll(encodeLinkFrame({ t: 'push', kind: 'tokens_revoked', sync: false, keys: e.kind === 'key' ? [entry] : [], accounts: e.kind === 'account' ? [entry] : [] }));
    };
    this.onDirectory = () => void this.sync().catch((err: unknown) => this.log?.error({ err }, 'directory sync failed'));
    this.onDServices = () => this.pushAll(encodeLinkFrame({ t: 'push', kind: 'dservices_changed' }));
    this.onAttestation = () => this.pushAll(encodeLinkFrame({ t: 'push', kind: 'attestation_changed' }));
    this.onMinerChanged = (e) => this.pushAll(encodeLinkFrame({ t: 'push', kind: 'miner_changed', id: e.id }));
    this.onAccountsChanged = () => this.pushAll(encodeLinkFrame({ t: 'push', kind: 'accounts_changed' }));
  }

  async start(): Promise<void> {
    this.started = true;
    this.service.on('keyRevoked', this.onRevoked);
    this.service.on('tokensRevoked', this.onTokensRevoked);
    this.service.on('directoryChanged', this.onDirectory);
    this.service.on('dservicesChanged', this.onDServices);
    this.service.on('attestationChanged', this.onAttestation);
    this.service.on('minerChanged', this.onMinerChanged);
    this.service.on('accountsChanged', this.onAccountsChanged);
    await this.sync();
    const si = this.opts.statusIntervalMs ?? 5000;
    if (si > 0) (this.statusTimer = setInterval(() => void this.pollStatus(), si)).unref();
    const di = this.opts.directoryIntervalMs ?? 30_000;
    if (di > 0) (this.dirTimer = setInterval(this.onDirectory, di)).unref();
  }

  /** Dials nodes new to the directory (or whose URL changed) and drops removed ones. */
  async sync(): Promise<void> {
    if (!this.started) return;
    const nodes = await this.service.store.listNodes();
    const want = new Map(nodes.map((n) => [n.id, n]));
    for (const [id, l] of this.links) {
      const n = want.get(id);
      if (n === undefined || n.urls.central !== l.url) {
        this.links.delete(id);
        await l.close();
      }
    }
    for (const n of nodes) {
      if (this.links.has(n.id)) continue;
      const l = new NodeLink(n, this);
      this.links.set(n.id, l);
      l.connect();
    }
  }

  async pollStatus(): Promise<void> {
    await Promise.all([...this.links.values()].map((l) => l.pollStatus()));
  }

  /** Answers a node's request. */
  async answer(op: string, args: Record<string, unknown>): Promise<unknown> {
    switch (op) {
      case 'verify_key':
        return { principal: await this.service.verifyKeyHash(args['hash'] as string) };
      case 'descriptors': {
        const ds = await this.service.approvedDServices();
        const payTo = await this.service.payoutAddresses(ds.map((d) => d.developer));
        const out: LinkDescriptor[] = ds.map((d) => ({
          name: d.name, version: d.version, digest: d.digest, entry: d.entry, developer: d.developer, deterministic: d.deterministic,
          resources: d.resources, maxBodyBytes: d.maxBodyBytes, concurrency: d.concurrency, timeouts: d.timeouts, price: d.price,
          developerAddress: payTo.get(d.developer) ?? null,
          package: this.service.packages?.get(d.digest) ?? null,
        }));
        return { dservices: out };
      }
      case 'package': {
        // Only an approved version's package, as GET /v1/packages/{digest} serves it.
        const digest = args['digest'] as string;
        const offset = args['offset'] as number;
        const approved = (await this.service.approvedDServices()).some((d) => d.digest === digest);
        const stored = approved ? (this.service.packages?.get(digest) ?? null) : null;
        if (stored === null) throw new CentralError('not_found', `no package of an approved DService version has digest ${digest}`);
        if (offset > stored.sizeBytes) throw new CentralError('bad_request', `offset ${offset} is past the archive's end (${stored.sizeBytes} bytes)`);
        const data = await this.service.packages!.slice(digest, offset, Math.min(LINK_PACKAGE_CHUNK_BYTES, stored.sizeBytes - offset));
        return { data: data.toString('base64'), total: stored.sizeBytes };
      }
      case 'jwks':
        return this.service.tokens.jwks();
      case 'miner':
        return this.service.minerStatus(args['id'] as string);
      case 'attestation_policy':
        return this.service.attestationPolicy();
      case 'account_policies':
        return this.service.accountPolicies();
      default:
        throw new Error(`central does not answer ${op}`);
    }
  }

  private pushAll(frame: string): void {
    for (const l of this.links.values()) l.push(frame);
  }

  isOpen(nodeId: string): boolean {
    return this.links.get(nodeId)?.state === 'open';
  }

  /** Resolves when the link to `nodeId` is open (now or later). */
  waitOpen(nodeId: string): Promise<void> {
    if (this.isOpen(nodeId)) return Promise.resolve();
    return new Promise((resolve) => {
      const on = (id: string) => {
        if (id !== nodeId) return;
        this.off('open', on);
        resolve();
      };
      this.on('open', on);
    });
  }

  status(): LinkInfo[] {
    return [...this.links.values()].map((l) => ({ nodeId: l.node.id, url: l.url, state: l.state, since: l.since, attempts: l.attempts, lastError: l.lastError }));
  }

  async stop(): Promise<void> {
    this.started = false;
    this.service.off('keyRevoked', this.onRevoked);
    this.service.off('tokensRevoked', this.onTokensRevoked);
    this.service.off('directoryChanged', this.onDirectory);
    this.service.off('dservicesChanged', this.onDServices);
    this.service.off('attestationChanged', this.onAttestation);
    this.service.off('minerChanged', this.onMinerChanged);
    this.service.off('accountsChanged', this.onAccountsChanged);
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.dirTimer) clearInterval(this.dirTimer);
    await Promise.all([...this.links.values()].map((l) => l.close()));
    this.links.clear();
  }
}
