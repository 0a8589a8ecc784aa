/**
 * Input format detection from magic bytes. Only these raster formats reach libvips: SVG, PDF,
 * HEIC and libvips' own formats are refused before any decoder sees them.
 */
import { BadImageError } from './errors.js';

export type InputFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

export const INPUT_FORMATS: readonly InputFormat[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'];

function ascii(buf: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...buf.subarray(start, end));
}

/** AVIF is an ISO-BMFF file whose `ftyp` box lists the `avif` or `avis` brand. */
function isAvif(buf: Uint8Array): boolean {
  if (buf.length < 16 || ascii(buf, 4, 8) !== 'ftyp') return false;
  const boxSize = ((buf[0]! << 24) >>> 0) + (buf[1]! << 16) + (buf[2]! << 8) + buf[3]!;
  const end = Math.min(boxSize, buf.length, 4096);
  const brands = [ascii(buf, 8, 12)];
  for (let at = 16; at + 4 <= end; at += 4) brands.push(ascii(buf, at, at + 4));
  return brands.includes('avif') || brands.includes('avis');
}

/** The format of an encoded image, or null when it is none that MediaGen accepts. */
export function sniffFormat(buf: Uint8Array): InputFormat | null {
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'jpeg';
  if (buf.length >= 8 && ascii(buf, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (buf.length >= 12 && ascii(buf, 0, 4) === 'RIFF' && ascii(buf, 8, 12) === 'WEBP') return 'webp';
  if (buf.length >= 6 && (ascii(buf, 0, 6) === 'GIF87a' || ascii(buf, 0, 6) === 'GIF89a')) return 'gif';
  if (buf.length >= 4 && (ascii(buf, 0, 4) === 'II*\0' || ascii(buf, 0, 4) === 'MM\0*')) return 'tiff';
  if (isAvif(buf)) return 'avif';
  return null;
}

/** The format of request data that must be an image; `subject` names it in the error. */
export function requireSupported(data: Buffer, subject: string): InputFormat {
  if (data.length === 0) throw new BadImageError(`the ${subject} is empty; send the image bytes as the request body`);
  const format = sniffFormat(data);
  if (format === null) {
    throw new BadImageError(`the ${subject} is not a supported image; send one of ${INPUT_FORMATS.join(', ')}`);
  }
  return format;
}
