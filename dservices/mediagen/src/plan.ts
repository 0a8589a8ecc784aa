/**
 * A transform request, validated: the operations to run, always in this order (whatever the order
 * of the query parameters), then the encoding of the output.
 *
 *   auto-orient (EXIF) -> crop -> rotate -> flip -> flop -> resize -> blur -> sharpen
 *   -> grayscale -> image watermark -> text watermark -> encode
 */
import type { Rgba } from './colour.js';

export const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
export type Fit = (typeof FITS)[number];

export const GRAVITIES = ['north', 'northeast', 'east', 'southeast', 'south', 'southwest', 'west', 'northwest', 'centre'] as const;
export type Gravity = (typeof GRAVITIES)[number];

/** Where `fit=cover|contain` keeps the image: a gravity, or (cover only) a saliency strategy. */
export const STRATEGIES = ['entropy', 'attention'] as const;
export type Position = Gravity | (typeof STRATEGIES)[number];

export const OUTPUT_FORMATS = ['jpeg', 'png', 'webp', 'avif'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface ResizeOp {
  op: 'resize';
  width?: number;
  height?: number;
  fit: Fit;
  position: Position;
  withoutEnlargement: boolean;
  /** Fill of the letterbox bars of `fit=contain`. */
  background: Rgba;
}

export interface TextOp {
  op: 'text';
  text: string;
  color: Rgba;
  /** Font size in pixels; absent: 6 % of the shorter side of the image (at least 8). */
  size?: number;
  gravity: Gravity;
}

export type Operation =
  | { op: 'crop'; region: Region }
  /** `angle` in 1..359, clockwise; `background` fills the corners of non-right angles. */
  | { op: 'rotate'; angle: number; background: Rgba }
  | { op: 'flip' }
  | { op: 'flop' }
  | ResizeOp
  | { op: 'blur'; sigma: number }
  /** Without `sigma`: sharp's fast, mild sharpen. */
  | { op: 'sharpen'; sigma?: number }
  | { op: 'grayscale' }
  | { op: 'watermark'; image: Buffer; gravity: Gravity }
  | TextOp;

export type OperationName = Operation['op'];

export interface TransformPlan {
  operations: Operation[];
  /** Absent: the input's format when it is an output format, else PNG. */
  format?: OutputFormat;
  /** Encoder quality 1..100; for PNG it turns on palette quantisation. */
  quality?: number;
}
