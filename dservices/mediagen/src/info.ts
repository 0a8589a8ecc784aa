/**
 * `POST /info`: what the image header says. Only the header is read (no pixel is decoded), so the
 * pixel limit does not apply and a truncated image may still be described.
 */
import sharp, { type Metadata } from 'sharp';
import type { MediaGenConfig } from './config.js';
import { fromSharpError } from './sharp-errors.js';
import { requireSupported, type InputFormat } from './sniff.js';

export interface ImageInfo {
  format: InputFormat;
  /** Stored size, before EXIF orientation. */
  width: number;
  height: number;
  /** Size after EXIF orientation: what `crop` coordinates refer to. */
  oriented: { width: number; height: number };
  channels: number;
  /** libvips colour space, e.g. srgb, b-w, cmyk. */
  space: string;
  hasAlpha: boolean;
  /** EXIF orientation 1..8; 1 (upright) when the image has none. */
  orientation: number;
  /** Pixels per inch, or null when the header has none. */
  density: number | null;
  /** Bytes of the encoded image. */
  size: number;
  /** Frames or pages, only present when there is more than one (animated GIF/WebP, multi-page TIFF). */
  pages?: number;
}

export async function imageInfo(data: Buffer, config: MediaGenConfig): Promise<ImageInfo> {
  const format = requireSupported(data, 'image');
  let meta: Metadata;
  try {
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw fromSharpError(err, 'image', config);
  }
  // Fixed key order: the JSON (and so its ETag) is the same for the same image.
  const info: ImageInfo = {
    format,
    width: meta.width,
    height: meta.height,
    oriented: meta.autoOrient ? { width: meta.autoOrient.width, height: meta.autoOrient.height } : { width: meta.width, height: meta.height },
    channels: meta.channels,
    space: meta.space,
    hasAlpha: meta.hasAlpha,
    orientation: meta.orientation ?? 1,
    density: meta.density ?? null,
    size: data.length,
  };
  if (meta.pages !== undefined && meta.pages > 1) info.pages = meta.pages;
  return info;
}
