/**
 * The miner side of the DService link (`@cgn/sdk`'s `link-frames.ts`): one unix socket
 * connection to a DService built with the kit, work units as request frames, answers matched by
 * id. What `runWork` does over HTTP, without HTTP: same outcome, same errors.
 *
 * The connection is opened on first use and again after it drops; a drop fails the units in
 * flight with `dservice_unavailable` (retryable), so the node re-runs them elsewhere.
 */
import { connect, type Socket } from 'node:net';
import { CgnError, LIMITS, excerpt, type HeaderList } from '@cgn/protocol';
import { LINK_REQUEST, LINK_RESPONSE, LinkFrameReader, LinkWriter, MAX_LINK_META_BYTES, type LinkFrame } from '@cgn/sdk';
import { resultHash, type ProxyLimits, type ProxyRequest, type WorkOutcome } from './proxy.js';
import { dropRequestHeaders, isHopByHop } from './headers.js';
import type { Cancellation } from './cancellation.js';

/** A frame goes at once when nothing went over the link for this long (light load): see `LinkWriter`. */
const WRITE_AT_ONCE_WHEN_QUIET_MS = 1;

interface Pending {
  resolve: (o: WorkOutcome) => void;
  reject: (e: CgnError) => void;
  limits: ProxyLimits;
  cancel: Cancellation | undefined;
  start: bigint;
}

interface ResponseMeta {
  s: number;
  h: Record<string, string>;
  c: number;
}

function parseResponseMeta(meta: string): ResponseMeta | null {
  try {
    const v = JSON.parse(meta) as Partial<ResponseMeta>;
    if (!Number.isInteger(v.s) || v.s! < 100 || v.s! > 999) return null;
    if (typeof v.h !== 'object' || v.h === null || Array.isArray(v.h)) return null;
    return { s: v.s!, h: v.h, c: Number.isSafeInteger(v.c) && v.c! >= 0 ? v.c! : 0 };
  } catch {
    return null;
  }
}

function unavailable(detail: string): CgnError {
  return new CgnError('dservice_unavailable', `DService unavailable: ${detail}`, { retryable: true });
}

export class DServiceLink {
  private socket: Socket | null = null;
  private writer: LinkWriter | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    readonly socketPath: string,
    /** Largest response body the miner takes (frames longer than this plus meta are refused). */
    private readonly maxBodyBytes: number,
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  run(work: ProxyRequest, limits: ProxyLimits, cancel?: Cancellation): Promise<WorkOutcome> {
    return new Promise<WorkOutcome>((resolve, reject) => {
      if (cancel?.reason) return reject(cancel.reason);
      if (this.closed) return reject(unavailable('the link is closed'));
      const writer = this.writer ?? this.open();
      const id = this.nextId;
      this.nextId = id >= 0xffffffff ? 1 : id + 1;
      const p: Pending = { resolve, reject, limits, cancel, start: process.hrtime.bigint() };
      cancel?.onCancel((reason) => {
        if (this.pending.delete(id)) reject(reason);
      });
      this.pending.set(id, p);
      const meta = JSON.stringify({ m: work.method, u: work.path, h: dropRequestHeaders(work.headers) });
      writer.write(LINK_REQUEST, id, meta, work.body);
    });
  }

  /** Fails what is in flight and refuses new work. */
  close(): void {
    this.closed = true;
    this.drop('the link was closed');
  }

  private open(): LinkWriter {
    const socket = connect(this.socketPath);
    socket.setNoDelay?.(true);
    const reader = new LinkFrameReader(this.maxBodyBytes + MAX_LINK_META_BYTES + 64, this.onFrame);
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        socket.destroy();
        this.drop(`the DService sent a bad frame (${(err as Error).message})`);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.drop(`${err.code ?? 'error'}: ${err.message}`, socket));
    socket.on('close', () => this.drop('the connection closed', socket));
    this.socket = socket;
    this.writer = new LinkWriter(socket, { writeAtOnceWhenQuietMs: WRITE_AT_ONCE_WHEN_QUIET_MS });
    return this.writer;
  }

  /** Forgets the connection (if it is `socket`) and fails every unit in flight on it. */
  private drop(detail: string, socket: Socket | null = this.socket): void {
    if (socket !== this.socket) return;
    this.socket?.destroy();
    this.socket = null;
    this.writer = null;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      p.cancel?.onCancel(null);
      p.reject(unavailable(detail));
    }
  }

  private readonly onFrame = (f: LinkFrame): void => {
    if (f.kind !== LINK_RESPONSE) throw new Error(`unexpected frame kind ${f.kind}`);
    const p = this.pending.get(f.id);
    if (p === undefined) return; // cancelled; its answer is not wanted
    this.pending.delete(f.id);
    p.cancel?.onCancel(null);
    const meta = parseResponseMeta(f.meta);
    // The unit is settled whatever the DService sent: a malformed answer is its failure, not a hang.
    if (meta === null) return p.reject(new CgnError('miner_failed', `the DService answered with malformed metadata (needs a status 100-999 and a header map): ${excerpt(f.meta, 200)}`));
    const execUs = Number((process.hrtime.bigint() - p.start) / 1000n);
    if (f.body.length > p.limits.maxBodyBytes) {
      return p.reject(new CgnError('payload_too_large', `the DService answered with more than ${p.limits.maxBodyBytes} bytes`));
    }
    const headers: HeaderList = [];
    let bytes = 0;
    for (const name in meta.h) {
      const value = meta.h[name];
      const lower = name.toLowerCase();
      if (typeof value !== 'string' || isHopByHop(lower)) continue;
      headers.push(lower, value);
      bytes += lower.length + value.length;
    }
    if (headers.length > LIMITS.maxHeaderCount * 2 || bytes > LIMITS.maxHeaderBytes) {
      return p.reject(new CgnError('miner_failed', `the DService answered with more headers than a result may carry (${LIMITS.maxHeaderCount} headers, ${LIMITS.maxHeaderBytes} bytes)`));
    }
    p.resolve({ status: meta.s, headers, body: f.body, execUs, cpuUs: meta.c, resultHash: resultHash(meta.s, f.body) });
  };
}
