/**
 * Image sizes along a plan, computed from the input's header before any pixel is decoded: the
 * crop is checked against the image, and the largest image the plan would create is known in
 * advance, so that a tiny input cannot ask for a huge output (see `transform.ts`). Sizes of
 * rotations and resizes are estimates within a pixel of what libvips makes, which is enough for
 * a limit.
 */
import { BadParameterError } from './errors.js';
import type { Operation, ResizeOp } from './plan.js';

export interface Size {
  width: number;
  height: number;
}

export interface PlannedGeometry {
  output: Size;
  /** Pixels of the largest image along the way: input, intermediates, output. */
  largestPixels: number;
}

const pixels = (s: Size): number => s.width * s.height;

function rotated(s: Size, angle: number): Size {
  if (angle === 90 || angle === 270) return { width: s.height, height: s.width };
  if (angle % 180 === 0) return s;
  const rad = (angle * Math.PI) / 180;
  const cos = Math.abs(Math.cos(rad));
  const sin = Math.abs(Math.sin(rad));
  return { width: Math.ceil(s.width * cos + s.height * sin), height: Math.ceil(s.width * sin + s.height * cos) };
}

function resized(s: Size, op: ResizeOp): Size {
  const { width: w, height: h } = op;
  if (w !== undefined && h !== undefined && (op.fit === 'fill' || op.fit === 'cover' || op.fit === 'contain')) {
    return { width: w, height: h };
  }
  let scale: number;
  if (w !== undefined && h !== undefined) {
    scale = op.fit === 'inside' ? Math.min(w / s.width, h / s.height) : Math.max(w / s.width, h / s.height);
  } else if (w !== undefined) {
    scale = w / s.width;
  } else {
    scale = h! / s.height;
  }
  if (op.withoutEnlargement && scale > 1) return s;
  return { width: Math.max(1, Math.round(s.width * scale)), height: Math.max(1, Math.round(s.height * scale)) };
}

/** Walks the plan from the (auto-oriented) input size. Throws when the crop does not fit. */
export function planGeometry(input: Size, operations: readonly Operation[]): PlannedGeometry {
  let size = input;
  let largestPixels = pixels(size);
  for (const op of operations) {
    if (op.op === 'crop') {
      const { left, top, width, height } = op.region;
      if (left + width > size.width || top + height > size.height) {
        throw new BadParameterError(
          'crop',
          `crop ${left},${top},${width},${height} does not fit in the ${size.width}x${size.height} image (after EXIF orientation): left+width must be at most ${size.width} and top+height at most ${size.height}`,
        );
      }
      size = { width, height };
    } else if (op.op === 'rotate') {
      size = rotated(size, op.angle);
    } else if (op.op === 'resize') {
      size = resized(size, op);
    }
    largestPixels = Math.max(largestPixels, pixels(size));
  }
  return { output: size, largestPixels };
}
