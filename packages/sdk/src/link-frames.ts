/**
 * The DService link: how a miner talks to a DService built with this kit on the same machine.
 *
 * HTTP/1.1 between them costs a request parse, a response serialisation and one socket write per
 * work unit on each side. The link carries the same requests and responses as length-prefixed
 * frames over one unix socket, and each side writes what it has in an event-loop turn in one go
 * (see `LinkWriter`), so under load a socket write carries many work units.
 *
 * A frame: `u32 rest length | u8 kind | u32 id | u32 meta length | meta (UTF-8 JSON) | body`.
 * - request (kind 1): meta `{ m: method, u: path with query, h: [name, value, ...] }`
 * - response (kind 2): meta `{ s: status, h: { name: value }, c: CPU microseconds }`
 */
import type { Socket } from 'node:net';

/** A body held in pieces, in order (the shape of `@cgn/protocol`'s `ChunkedBody`). */
export interface LinkBodyPieces {
  readonly chunks: readonly Uint8Array[];
  /** Total bytes of `chunks`. */
  readonly length: number;
}

export const LINK_REQUEST = 1;
export const LINK_RESPONSE = 2;
/** kind + id + meta length. */
const FIXED = 9;
/** Largest meta section a peer may send: headers are bounded far below this. */
export const MAX_LINK_META_BYTES = 256 * 1024;

export interface LinkFrame {
  kind: number;
  id: number;
  meta: string;
  body: Buffer;
}

export class LinkFrameError extends Error {
  constructor(message: string) {
    super(`bad link frame: ${message}`);
    this.name = 'LinkFrameError';
  }
}

/** The frame's head (length, kind, id, meta); the body goes out as its own buffer, uncopied. */
export function encodeLinkHead(kind: number, id: number, meta: string, bodyLength: number): Buffer {
  const metaLength = Buffer.byteLength(meta);
  const head = Buffer.allocUnsafe(4 + FIXED + metaLength);
  head.writeUInt32BE(FIXED + metaLength + bodyLength, 0);
  head.writeUInt8(kind, 4);
  head.writeUInt32BE(id, 5);
  head.writeUInt32BE(metaLength, 9);
  head.write(meta, 13, 'utf8');
  return head;
}

/**
 * Reassembles frames from socket chunks. A frame inside one chunk is a view of it (no copy); one
 * spread over several chunks is copied once. A frame longer than `maxFrameBytes`, or with a meta
 * section that does not fit, is an error: the peer is not speaking the link.
 */
export class LinkFrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (f: LinkFrame) => void,
  ) {}

  /** Feeds a chunk; calls `onFrame` for each frame completed. Throws `LinkFrameError`. */
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const rest = this.peekLength();
      if (rest < FIXED || rest > this.maxFrameBytes) throw new LinkFrameError(`length ${rest} is outside ${FIXED}..${this.maxFrameBytes}`);
      if (this.buffered < 4 + rest) return;
      const frame = this.take(4 + rest);
      const kind = frame.readUInt8(4);
      const id = frame.readUInt32BE(5);
      const metaLength = frame.readUInt32BE(9);
      if (metaLength > rest - FIXED || metaLength > MAX_LINK_META_BYTES) throw new LinkFrameError(`meta length ${metaLength} does not fit`);
      const metaEnd = 13 + metaLength;
      this.onFrame({ kind, id, meta: frame.toString('utf8', 13, metaEnd), body: frame.subarray(metaEnd) });
    }
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32BE(0);
    return Buffer.concat(this.chunks, this.buffered).readUInt32BE(0);
  }

  /** Removes and returns the next `n` bytes. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const used = Math.min(c.length, n - at);
      c.copy(out, at, 0, used);
      at += used;
      if (used === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(used);
    }
    return out;
  }
}

export interface LinkWriterOptions {
  /**
   * Write a frame at once when the last flush was at least this long ago, ms. Default 0: never
   * (always wait for the turn's end). At light load there is nothing to batch a frame with, and the
   * wait for `setImmediate` is one more trip round the event loop on every hop.
   */
  writeAtOnceWhenQuietMs?: number;
  /** Clock, ms (tests). Default performance.now. */
  now?: () => number;
}

/**
 * Writes frames to a socket, everything written in one event-loop turn leaving in one `writev`:
 * the socket is corked at the turn's first frame and uncorked on `setImmediate`. With
 * `writeAtOnceWhenQuietMs`, a frame written after a quiet spell leaves at once instead.
 */
export class LinkWriter {
  private corked = false;
  private lastFlushAt = -Infinity;
  private readonly quietMs: number;
  private readonly now: () => number;

  constructor(
    private readonly socket: Socket,
    options: LinkWriterOptions = {},
  ) {
    this.quietMs = options.writeAtOnceWhenQuietMs ?? 0;
    this.now = options.now ?? (() => performance.now());
  }

  /** Writes one frame; a body may be given as the pieces it is held in (written as they are). */
  write(kind: number, id: number, meta: string, body: Uint8Array | LinkBodyPieces | undefined): void {
    const s = this.socket;
    if (s.destroyed) return;
    const atOnce = !this.corked && this.quietMs > 0 && this.now() - this.lastFlushAt >= this.quietMs;
    if (!this.corked) {
      this.corked = true;
      s.cork();
      if (!atOnce) setImmediate(this.uncork);
    }
    const length = body?.length ?? 0;
    s.write(encodeLinkHead(kind, id, meta, length));
    if (length > 0) {
      if (body instanceof Uint8Array) s.write(body);
      else for (const piece of body!.chunks) s.write(piece);
    }
    if (atOnce) this.uncork();
  }

  private readonly uncork = (): void => {
    this.corked = false;
    if (this.quietMs > 0) this.lastFlushAt = this.now();
    this.socket.uncork();
  };
}
