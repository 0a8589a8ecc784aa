/**
 * A request body as the node holds it: either one buffer or the chunks it arrived in, never
 * joined. Joining a large upload would allocate and copy it once more for nothing: the node only
 * forwards it (`encodeMessageParts` sends the chunks as they are), hashes it and counts its bytes.
 * Measured on 527 KB uploads at 32 connections, joining was half the node's allocation outside the
 * V8 heap, and that allocation is what triggers its full garbage collections.
 */
import type { Hash } from 'node:crypto';

export interface ChunkedBody {
  readonly chunks: readonly Uint8Array[];
  /** Total bytes of `chunks`. */
  readonly length: number;
  /**
   * Set when the chunks are borrowed memory (the node's body pool) that is used again once let go:
   * keeps the bytes from reuse until the returned function is called. Whoever reads the chunks
   * later than now (a queued write) holds the body meanwhile.
   */
  readonly hold?: () => () => void;
}

export type Body = Uint8Array | ChunkedBody;

export const EMPTY_BODY_BYTES = new Uint8Array(0);

/** A body made of received chunks: the chunk itself when there is one. */
export function bodyOf(chunks: Uint8Array[], length: number): Body {
  if (chunks.length === 0) return EMPTY_BODY_BYTES;
  if (chunks.length === 1) return chunks[0]!;
  return { chunks, length };
}

export function isChunked(b: Body): b is ChunkedBody {
  return !(b instanceof Uint8Array);
}

/** Holds a borrowed body (see `ChunkedBody.hold`); null for a body that is not borrowed. */
export function holdBody(b: Body): (() => void) | null {
  return isChunked(b) && b.hold !== undefined ? b.hold() : null;
}

/** The body's bytes as a list of pieces, in order (no copy). */
export function bodyPieces(b: Body): readonly Uint8Array[] {
  return isChunked(b) ? b.chunks : [b];
}

/** Feeds every byte of the body to a hash, in order. */
export function updateHashWithBody(h: Hash, b: Body): Hash {
  for (const piece of bodyPieces(b)) h.update(piece);
  return h;
}

/** The body as one buffer (copies a chunked body: for tests and cold paths only). */
export function joinBody(b: Body): Buffer {
  if (!isChunked(b)) return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
  return Buffer.concat(b.chunks as Uint8Array[], b.length);
}
