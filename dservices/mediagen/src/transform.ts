/**
 * Runs a `TransformPlan` with sharp.
 *
 * Most plans are one libvips pipeline from the encoded input to the encoded output (JPEG
 * shrink-on-load included). A plan is cut into stages, joined by raw pixel buffers, only where
 * one sharp pipeline would not do the operations in the documented order (sharp applies them in
 * its own order, partly dependent on call order; the tests compare combined plans with their
 * steps run one by one):
 * - rotate/flip/flop after a crop: sharp rotates before cropping, or loses the rotation when a
 *   resize follows;
 * - flip/flop after a rotation: sharp mirrors before rotating;
 * - watermarks: they are drawn on the finished image, whose exact size the overlays need.
 */
import sharp, { type Metadata, type OutputInfo, type OverlayOptions, type ResizeOptions, type Sharp } from 'sharp';
import type { MediaGenConfig } from './config.js';
import { encode, outputFormat } from './encode.js';
import { BadParameterError, ImageTooLargeError } from './errors.js';
import { planGeometry, type Size } from './geometry.js';
import type { Operation, OutputFormat, ResizeOp, TransformPlan } from './plan.js';
import { fromSharpError } from './sharp-errors.js';
import { requireSupported } from './sniff.js';
import { textOverlaySvg } from './text.js';

export interface TransformResult {
  data: Buffer;
  format: OutputFormat;
  width: number;
  height: number;
}

/** Largest side each encoder can write. */
const MAX_SIDE: Readonly<Record<OutputFormat, number>> = { jpeg: 65535, png: 10_000_000, webp: 16383, avif: 65536 };

type Overlay = Extract<Operation, { op: 'watermark' | 'text' }>;
const isOverlay = (op: Operation): op is Overlay => op.op === 'watermark' || op.op === 'text';

/** Pixels handed from one stage to the next. */
interface RawImage {
  data: Buffer;
  raw: { width: number; height: number; channels: 1 | 2 | 3 | 4 };
}

/** Cuts the operations into stages (see the module comment). */
export function splitStages(operations: readonly Operation[]): Operation[][] {
  const stages: Operation[][] = [[]];
  for (const op of operations) {
    const current = stages[stages.length - 1]!;
    const has = (name: Operation['op']) => current.some((o) => o.op === name);
    const mirror = op.op === 'flip' || op.op === 'flop';
    const cut =
      ((op.op === 'rotate' || mirror) && has('crop')) ||
      (mirror && has('rotate')) ||
      (isOverlay(op) && current.some((o) => !isOverlay(o)));
    if (cut) stages.push([op]);
    else current.push(op);
  }
  return stages;
}

function resizeOptions(op: ResizeOp): ResizeOptions {
  const o: ResizeOptions = { fit: op.fit, position: op.position, withoutEnlargement: op.withoutEnlargement, background: op.background };
  if (op.width !== undefined) o.width = op.width;
  if (op.height !== undefined) o.height = op.height;
  return o;
}

function apply(img: Sharp, op: Operation): Sharp {
  switch (op.op) {
    case 'crop':
      return img.extract(op.region);
    case 'rotate':
      return img.rotate(op.angle, { background: op.background });
    case 'flip':
      return img.flip();
    case 'flop':
      return img.flop();
    case 'resize':
      return img.resize(resizeOptions(op));
    case 'blur':
      return img.blur(op.sigma);
    case 'sharpen':
      return op.sigma === undefined ? img.sharpen() : img.sharpen({ sigma: op.sigma });
    case 'grayscale':
      // One channel out: sharp's greyscale alone still writes three identical ones.
      return img.grayscale().toColourspace('b-w');
    case 'watermark':
    case 'text':
      return img; // drawn by `overlays`
  }
}

interface Header extends Size {
  hasAlpha: boolean;
}

export class Transformer {
  constructor(private readonly config: MediaGenConfig) {}

  private open(source: Buffer | RawImage): Sharp {
    const img = Buffer.isBuffer(source)
      ? sharp(source, { failOn: 'error', limitInputPixels: this.config.maxPixels, autoOrient: true })
      : sharp(source.data, { raw: source.raw, limitInputPixels: false });
    return img.timeout({ seconds: this.config.timeoutSeconds });
  }

  private async run(img: Sharp, subject: string): Promise<{ data: Buffer; info: OutputInfo }> {
    try {
      return await img.toBuffer({ resolveWithObject: true });
    } catch (err) {
      throw fromSharpError(err, subject, this.config);
    }
  }

  /** Size after EXIF orientation, and alpha, from the header only; refuses too many pixels. */
  private async header(data: Buffer, subject: string): Promise<Header> {
    let meta: Metadata;
    try {
      meta = await sharp(data, { limitInputPixels: false }).metadata();
    } catch (err) {
      throw fromSharpError(err, subject, this.config);
    }
    const { width, height } = meta.autoOrient ?? meta;
    if (width * height > this.config.maxPixels) {
      throw new ImageTooLargeError(
        `the ${subject} is ${width}x${height} = ${width * height} pixels, more than the limit of ${this.config.maxPixels}`,
      );
    }
    return { width, height, hasAlpha: meta.hasAlpha };
  }

  private async overlays(ops: readonly Overlay[], base: Size): Promise<OverlayOptions[]> {
    const out: OverlayOptions[] = [];
    for (const op of ops) {
      if (op.op === 'text') {
        out.push({ input: textOverlaySvg(op, base), top: 0, left: 0 });
        continue;
      }
      const subject = 'watermark image';
      requireSupported(op.image, subject);
      // Shrunk to fit inside the image if larger; never enlarged.
      const img = this.open(op.image).resize({ width: base.width, height: base.height, fit: 'inside', withoutEnlargement: true }).raw();
      const { data, info } = await this.run(img, subject);
      out.push({ input: data, raw: { width: info.width, height: info.height, channels: info.channels }, gravity: op.gravity });
    }
    return out;
  }

  async transform(input: Buffer, plan: TransformPlan): Promise<TransformResult> {
    const format = outputFormat(plan.format, requireSupported(input, 'image'));
    const header = await this.header(input, 'image');
    const geometry = planGeometry(header, plan.operations);
    if (geometry.largestPixels > this.config.maxPixels) {
      throw new ImageTooLargeError(
        `this transform would make an image of about ${Math.round(geometry.largestPixels)} pixels, more than the limit of ${this.config.maxPixels}`,
      );
    }
    const { width, height } = geometry.output;
    if (Math.max(width, height) > MAX_SIDE[format]) {
      throw new BadParameterError('format', `${format} images are at most ${MAX_SIDE[format]} pixels a side; this output would be about ${width}x${height}`);
    }

    const stages = splitStages(plan.operations);
    let source: Buffer | RawImage = input;
    let size: Size = header;
    let hasAlpha = header.hasAlpha;
    for (let i = 0; i < stages.length; i++) {
      const stage = stages[i]!;
      let img = this.open(source);
      for (const op of stage) img = apply(img, op);
      const overlayOps = stage.filter(isOverlay);
      if (overlayOps.length > 0) {
        img = img.composite(await this.overlays(overlayOps, size));
        // Compositing adds an alpha channel; an opaque image stays opaque.
        if (!hasAlpha) img = img.removeAlpha();
      }
      if (i === stages.length - 1) {
        const { data, info } = await this.run(encode(img, format, plan.quality), 'image');
        return { data, format, width: info.width, height: info.height };
      }
      const { data, info } = await this.run(img.raw({ depth: 'uchar' }), 'image');
      source = { data, raw: { width: info.width, height: info.height, channels: info.channels } };
      size = { width: info.width, height: info.height };
      hasAlpha = info.hasAlpha;
    }
    throw new Error('unreachable: a plan has at least one stage');
  }
}
