/**
 * Encoding and decoding of tunnel messages. A message is one or more MessagePack frames back to
 * back (one WebSocket message; a sender may send it as several fragments, see
 * `encodeMessageParts`, and the receiver sees it whole). `decodeMessage` validates every frame and throws a `CgnError('bad_frame')` on anything
 * malformed: truncated MessagePack, a non-map, an unknown type, a wrong field.
 */
import { Packr, Unpackr } from 'msgpackr';
import { CgnError } from './errors.js';
import { PROTOCOL_VERSION, type Frame, type FrameInput, type OutgoingFrame } from './frames.js';
import { bodyOf, bodyPieces, type Body } from './body.js';
import { validateFrame } from './validate.js';

const packr = new Packr({ useRecords: false, variableMapSize: true, encodeUndefinedAsNil: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/**
 * msgpackr packs into one buffer it keeps and returns views of it; a frame that does not fit makes
 * it about four times the frame's size, and it stays that size for every later frame. One
 * capability probe (a 1 MiB payload) then held 4 MiB in each node and miner for good. Once the
 * buffer has grown past this, the packer starts again on a small one; the large one lives only as
 * long as the views of the frames in it. (Frames of up to ~256 KiB keep their buffer: regrowing it
 * for each would cost an allocation and copies per frame.)
 */
export const MAX_KEPT_PACK_BUFFER = 1024 * 1024;
const PACK_BUFFER_BYTES = 8192;

function pack(value: unknown): Buffer {
  const b = packr.pack(value);
  if (b.buffer.byteLength > MAX_KEPT_PACK_BUFFER) packr.useBuffer(Buffer.allocUnsafeSlow(PACK_BUFFER_BYTES));
  return b;
}

/**
 * Adds the protocol version to a frame literal, in place (an object spread here costs several
 * microseconds per frame on the hot path). Pass a fresh literal: `frame({ t: 'ack', id })`.
 */
export function frame<F extends FrameInput>(f: F): F & { v: number } {
  (f as F & { v: number }).v = PROTOCOL_VERSION;
  return f as F & { v: number };
}

export function encodeFrame(f: Frame): Buffer {
  return pack(f);
}

/** Encodes several frames into one message (their encodings back to back). */
export function encodeMessage(frames: readonly Frame[]): Buffer {
  if (frames.length === 1) return pack(frames[0]);
  return Buffer.concat(frames.map((f) => pack(f)));
}

/**
 * A body at least this large is sent as its own part of the message, uncopied (see
 * `encodeMessageParts`). Below it, one copy into the encoding is cheaper than another WebSocket frame.
 */
export const SEPARATE_BODY_BYTES = 64 * 1024;

/** Bytes of a MessagePack bin8 of length 0, as packr writes an empty body. */
const EMPTY_BIN = [0xc4, 0x00] as const;
const EMPTY_BODY = new Uint8Array(0);

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
}

/**
 * The head of a frame whose body is sent apart: the frame's fields with the body moved last,
 * ending in the body's bin32 header. Head and body back to back are exactly the MessagePack
 * encoding of the frame, so a receiver decodes them like any other message; the sender only avoids
 * copying a large body into the encoding (a copy, and a fresh buffer four times the body's size
 * for msgpackr to grow into, for every upload that goes through the node).
 */
function headWithoutBody(f: OutgoingFrame & { body: Body }): Buffer {
  const { body, ...rest } = f;
  (rest as Record<string, unknown>)['body'] = EMPTY_BODY;
  const packed = pack(rest);
  const n = packed.length;
  if (packed[n - 2] !== EMPTY_BIN[0] || packed[n - 1] !== EMPTY_BIN[1]) throw new Error('codec: an empty body did not encode as the last field');
  const head = Buffer.allocUnsafe(n - 2 + 5);
  packed.copy(head, 0, 0, n - 2);
  head[n - 2] = 0xc6; // bin32
  head.writeUInt32BE(body.length, n - 1);
  return head;
}

/**
 * Encodes frames into one message given as parts to send back to back (as the fragments of one
 * WebSocket message): small frames packed together, and each body of `SEPARATE_BODY_BYTES` or more
 * (or still in chunks) in parts of its own, uncopied. `Buffer.concat(parts)` decodes to the same
 * frames as `encodeMessage`.
 */
export function encodeMessageParts(frames: readonly OutgoingFrame[]): Buffer[] {
  const parts: Buffer[] = [];
  let small: Buffer[] = [];
  for (const f of frames) {
    if ((f.t === 'work' || f.t === 'result') && f.body.length >= SEPARATE_BODY_BYTES) {
      small.push(headWithoutBody(f));
      parts.push(small.length === 1 ? small[0]! : Buffer.concat(small));
      for (const piece of bodyPieces(f.body)) parts.push(asBuffer(piece));
      small = [];
    } else if (f.t === 'work' && !(f.body instanceof Uint8Array)) {
      // A small body that still came in chunks: join it (cheap) and pack as usual.
      small.push(pack({ ...f, body: Buffer.concat(f.body.chunks as Uint8Array[], f.body.length) }));
    } else {
      small.push(pack(f));
    }
  }
  if (small.length > 0) parts.push(small.length === 1 ? small[0]! : Buffer.concat(small));
  return parts;
}

/** Decodes and validates every frame of one message. */
export function decodeMessage(data: Uint8Array): Frame[] {
  return unpackValues(data).map(validateFrame);
}

function unpackValues(data: Uint8Array): unknown[] {
  if (data.length === 0) throw new CgnError('bad_frame', 'bad frame: empty message');
  let values: unknown[];
  try {
    values = unpackr.unpackMultiple(data) as unknown[];
  } catch (cause) {
    throw new CgnError('bad_frame', `bad frame: not valid MessagePack (${(cause as Error).message})`, { cause });
  }
  if (!Array.isArray(values) || values.length === 0) throw new CgnError('bad_frame', 'bad frame: no frame in message');
  return values;
}

/**
 * Decodes a message received as WebSocket fragments (`ws` with `binaryType: 'fragments'`): the
 * same frames as `decodeMessage(Buffer.concat(fragments))`, but a work frame's body sent apart (the
 * layout `encodeMessageParts` writes) stays in the fragments it came in, as a `ChunkedBody`, so the
 * miner does not copy every upload once more into a joined message. Any other layout, and
 * anything malformed, is joined and decoded as one buffer (which also gives the error).
 */
export function decodeMessageFragments(fragments: readonly Buffer[]): Frame[] {
  if (fragments.length === 1) return decodeMessage(fragments[0]!);
  return decodeSeparateBodies(fragments) ?? decodeMessage(Buffer.concat(fragments as Buffer[]));
}

/**
 * Reads `fragments` as heads, each ending in a bin32 header and followed by fragments holding
 * exactly that many bytes, then at most one fragment of whole frames. A head decodes with the bin32
 * header replaced by an empty bin: that decodes, up to that point, exactly as the joined message
 * does, and if the empty bin is then the value of the last frame's last key `body`, that frame's
 * body in the joined message is the bytes that follow. Null when the fragments are not laid out so.
 */
function decodeSeparateBodies(fragments: readonly Buffer[]): Frame[] | null {
  const out: Frame[] = [];
  let i = 0;
  while (i < fragments.length) {
    const head = fragments[i]!;
    const n = head.length;
    if (n < 5 || head[n - 5] !== 0xc6) {
      if (i !== fragments.length - 1) return null;
      const values = tryUnpack(head);
      if (values === null) return null;
      for (const v of values) out.push(validateFrame(v));
      return out;
    }
    const bodyLength = head.readUInt32BE(n - 4);
    let j = i + 1;
    let got = 0;
    while (j < fragments.length && got < bodyLength) got += fragments[j++]!.length;
    if (got !== bodyLength || j === i + 1) return null;
    const values = tryUnpack(withEmptyBin(head));
    if (values === null) return null;
    const last = values[values.length - 1] as Record<string, unknown> | null;
    if (last === null || typeof last !== 'object' || Array.isArray(last)) return null;
    const keys = Object.keys(last);
    const empty = last['body'];
    if (keys[keys.length - 1] !== 'body' || !(empty instanceof Uint8Array) || empty.length !== 0) return null;
    for (const v of values) out.push(validateFrame(v));
    const pieces = fragments.slice(i + 1, j);
    // Only a work frame's body may stay in pieces (`Body`); any other frame gets its bytes joined.
    last['body'] = last['t'] === 'work' ? bodyOf(pieces, bodyLength) : Buffer.concat(pieces, bodyLength);
    i = j;
  }
  return out;
}

function tryUnpack(data: Uint8Array): unknown[] | null {
  try {
    const values = unpackr.unpackMultiple(data) as unknown[];
    return Array.isArray(values) && values.length > 0 ? values : null;
  } catch {
    return null;
  }
}

/** `head` with its final bin32 header (5 bytes) replaced by an empty bin8 (2 bytes). */
function withEmptyBin(head: Buffer): Buffer {
  const n = head.length;
  const out = Buffer.allocUnsafe(n - 3);
  head.copy(out, 0, 0, n - 5);
  out[n - 5] = EMPTY_BIN[0];
  out[n - 4] = EMPTY_BIN[1];
  return out;
}
