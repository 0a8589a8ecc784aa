/**
 * Two images in one body, without multipart: with the header `x-watermark-length: N`, the first
 * N bytes of the body are the watermark image and the rest is the image to transform. Both parts
 * are views of the body (no copies).
 */
import { BadParameterError } from './errors.js';

export const WATERMARK_LENGTH_HEADER = 'x-watermark-length';

export interface FramedBody {
  image: Buffer;
  watermark: Buffer | null;
}

export function splitBody(body: Buffer, header: string | string[] | undefined): FramedBody {
  if (header === undefined) return { image: body, watermark: null };
  const name = WATERMARK_LENGTH_HEADER;
  if (Array.isArray(header)) throw new BadParameterError(name, `${name} is given more than once; give it at most once`);
  const n = /^[0-9]{1,12}$/.test(header) ? Number(header) : NaN;
  if (!(n >= 1)) throw new BadParameterError(name, `${name} must be a positive integer, the byte length of the watermark image at the start of the body (got ${JSON.stringify(header.slice(0, 40))})`);
  if (n >= body.length) {
    throw new BadParameterError(name, `${name} is ${n} but the body has ${body.length} bytes; the body must hold the watermark image (first ${n} bytes) followed by the image to transform`);
  }
  return { watermark: body.subarray(0, n), image: body.subarray(n) };
}
