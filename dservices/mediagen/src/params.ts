/**
 * Strict parsing of the query string into a `TransformPlan`. Every wrong value, unknown or
 * repeated parameter, or parameter that has no effect in its context is a `BadParameterError`
 * naming it and saying what is allowed.
 */
import { COLOUR_SYNTAX, parseColour, type Rgba } from './colour.js';
import { BadParameterError } from './errors.js';
import {
  FITS, GRAVITIES, OUTPUT_FORMATS, STRATEGIES,
  type Fit, type Gravity, type Operation, type Position, type Region, type ResizeOp, type TextOp, type TransformPlan,
} from './plan.js';

export const MAX_DIMENSION = 16384;
export const MAX_TEXT_LENGTH = 200;
export const MAX_TEXT_SIZE = 1000;

export const TRANSFORM_PARAMS = [
  'width', 'height', 'fit', 'position', 'withoutEnlargement', 'background',
  'crop', 'rotate', 'flip', 'flop',
  'blur', 'sharpen', 'grayscale',
  'text', 'textColor', 'textSize', 'gravity', 'watermarkGravity',
  'format', 'quality',
] as const;
type TransformParam = (typeof TRANSFORM_PARAMS)[number];

const TRANSPARENT: Rgba = { r: 0, g: 0, b: 0, alpha: 0 };
const DEFAULT_TEXT_COLOUR: Rgba = { r: 255, g: 255, b: 255, alpha: 0.8 };
const DEFAULT_GRAVITY: Gravity = 'southeast';

const show = (v: string): string => JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);

/** The query with unknown and repeated parameters refused; one value per known name. */
function singleValues<P extends string>(query: URLSearchParams, allowed: readonly P[]): Map<P, string> {
  const values = new Map<P, string>();
  const unknown: string[] = [];
  for (const [name, value] of query) {
    if (!(allowed as readonly string[]).includes(name)) {
      if (!unknown.includes(name)) unknown.push(name);
      continue;
    }
    if (values.has(name as P)) throw new BadParameterError(name, `${name} is given more than once; give it at most once`);
    values.set(name as P, value);
  }
  if (unknown.length > 0) {
    const names = unknown.map(show).join(', ');
    const allowedText = allowed.length > 0 ? `allowed: ${allowed.join(', ')}` : 'this endpoint takes no query parameters';
    throw new BadParameterError(unknown[0]!, `unknown query parameter${unknown.length > 1 ? 's' : ''} ${names}; ${allowedText}`);
  }
  return values;
}

function integer(name: string, value: string, min: number, max: number): number {
  const n = /^[+-]?[0-9]{1,12}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new BadParameterError(name, `${name} must be an integer from ${min} to ${max} (got ${show(value)})`);
  return n;
}

function decimal(name: string, value: string, min: number, max: number, expected = `a number from ${min} to ${max}`): number {
  const n = /^(?:[0-9]{1,12}(?:\.[0-9]{1,12})?|\.[0-9]{1,12})$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new BadParameterError(name, `${name} must be ${expected} (got ${show(value)})`);
  return n;
}

function boolean(name: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new BadParameterError(name, `${name} must be true or false (got ${show(value)})`);
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new BadParameterError(name, `${name} must be one of ${allowed.join(', ')} (got ${show(value)})`);
}

function colour(name: string, value: string): Rgba {
  const c = parseColour(value);
  if (c === null) throw new BadParameterError(name, `${name} must be ${COLOUR_SYNTAX} (got ${show(value)})`);
  return c;
}

function gravity(name: string, value: string): Gravity {
  return oneOf(name, value === 'center' ? 'centre' : value, GRAVITIES);
}

function region(name: string, value: string): Region {
  const m = /^([0-9]{1,9}),([0-9]{1,9}),([0-9]{1,9}),([0-9]{1,9})$/.exec(value);
  const [left, top, width, height] = m ? m.slice(1).map(Number) : [];
  if (left === undefined || top === undefined || width === undefined || height === undefined || width < 1 || height < 1) {
    throw new BadParameterError(name, `${name} must be left,top,width,height in pixels, integers with width and height at least 1 (got ${show(value)})`);
  }
  return { left, top, width, height };
}

function text(name: string, value: string): string {
  if (value.length === 0) throw new BadParameterError(name, `${name} must not be empty`);
  if ([...value].length > MAX_TEXT_LENGTH) throw new BadParameterError(name, `${name} must be at most ${MAX_TEXT_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\ufffe\uffff]/.test(value)) throw new BadParameterError(name, `${name} must not contain control characters`);
  return value;
}

/** A parameter that only means something together with another one. */
function requires(p: Map<TransformParam, string>, name: TransformParam, ok: boolean, what: string): void {
  if (p.has(name) && !ok) throw new BadParameterError(name, `${name} has no effect without ${what}`);
}

function parseResize(p: Map<TransformParam, string>): Omit<ResizeOp, 'background'> | null {
  const w = p.get('width');
  const h = p.get('height');
  const sized = w !== undefined || h !== undefined;
  for (const name of ['fit', 'position', 'withoutEnlargement'] as const) requires(p, name, sized, 'width or height');
  if (!sized) return null;
  const f = p.get('fit');
  const fit: Fit = f === undefined ? 'cover' : oneOf('fit', f, FITS);
  const pos = p.get('position');
  let position: Position = 'centre';
  if (pos !== undefined) {
    if (fit !== 'cover' && fit !== 'contain') throw new BadParameterError('position', `position only applies to fit=cover or fit=contain (fit is ${fit})`);
    const allowed: readonly Position[] = fit === 'cover' ? [...GRAVITIES, ...STRATEGIES] : GRAVITIES;
    position = oneOf('position', pos === 'center' ? 'centre' : pos, allowed);
  }
  const op: Omit<ResizeOp, 'background'> = {
    op: 'resize',
    fit,
    position,
    withoutEnlargement: p.has('withoutEnlargement') ? boolean('withoutEnlargement', p.get('withoutEnlargement')!) : false,
  };
  if (w !== undefined) op.width = integer('width', w, 1, MAX_DIMENSION);
  if (h !== undefined) op.height = integer('height', h, 1, MAX_DIMENSION);
  return op;
}

function parseText(p: Map<TransformParam, string>): TextOp | null {
  const t = p.get('text');
  for (const name of ['textColor', 'textSize'] as const) requires(p, name, t !== undefined, 'text');
  if (t === undefined) return null;
  const op: TextOp = {
    op: 'text',
    text: text('text', t),
    color: p.has('textColor') ? colour('textColor', p.get('textColor')!) : DEFAULT_TEXT_COLOUR,
    gravity: p.has('gravity') ? gravity('gravity', p.get('gravity')!) : DEFAULT_GRAVITY,
  };
  if (p.has('textSize')) op.size = integer('textSize', p.get('textSize')!, 1, MAX_TEXT_SIZE);
  return op;
}

/**
 * Parses the query of `POST /transform`. `watermark` is the watermark image framed into the body
 * (see `framing.ts`), or null.
 */
export function parseTransformQuery(query: URLSearchParams, watermark: Buffer | null): TransformPlan {
  const p = singleValues(query, TRANSFORM_PARAMS);
  const ops: Operation[] = [];

  if (p.has('crop')) ops.push({ op: 'crop', region: region('crop', p.get('crop')!) });

  const angle = p.has('rotate') ? ((integer('rotate', p.get('rotate')!, -1e9, 1e9) % 360) + 360) % 360 : 0;
  const resize = parseResize(p);
  const arbitraryAngle = angle % 90 !== 0;
  requires(p, 'background', arbitraryAngle || resize?.fit === 'contain', 'a rotate angle that is not a multiple of 90 or fit=contain');
  const background = p.has('background') ? colour('background', p.get('background')!) : TRANSPARENT;
  if (angle !== 0) ops.push({ op: 'rotate', angle, background });

  if (p.has('flip') && boolean('flip', p.get('flip')!)) ops.push({ op: 'flip' });
  if (p.has('flop') && boolean('flop', p.get('flop')!)) ops.push({ op: 'flop' });
  if (resize !== null) ops.push({ ...resize, background });

  if (p.has('blur')) ops.push({ op: 'blur', sigma: decimal('blur', p.get('blur')!, 0.3, 1000) });
  const sharpen = p.get('sharpen');
  if (sharpen === 'true') ops.push({ op: 'sharpen' });
  else if (sharpen !== undefined && sharpen !== 'false') {
    ops.push({ op: 'sharpen', sigma: decimal('sharpen', sharpen, 0.000001, 10, 'true, false or a sigma from 0.000001 to 10') });
  }
  if (p.has('grayscale') && boolean('grayscale', p.get('grayscale')!)) ops.push({ op: 'grayscale' });

  const textOp = parseText(p);
  requires(p, 'gravity', textOp !== null || watermark !== null, 'text or a watermark image');
  requires(p, 'watermarkGravity', watermark !== null, 'a watermark image (x-watermark-length)');
  if (watermark !== null) {
    const from = p.has('watermarkGravity') ? 'watermarkGravity' : 'gravity';
    const g = p.get(from);
    ops.push({ op: 'watermark', image: watermark, gravity: g === undefined ? DEFAULT_GRAVITY : gravity(from, g) });
  }
  if (textOp !== null) ops.push(textOp);

  const plan: TransformPlan = { operations: ops };
  if (p.has('format')) plan.format = oneOf('format', p.get('format')!, OUTPUT_FORMATS);
  if (p.has('quality')) plan.quality = integer('quality', p.get('quality')!, 1, 100);
  return plan;
}

/** `POST /info` takes no parameters. */
export function parseInfoQuery(query: URLSearchParams): void {
  singleValues(query, []);
}
