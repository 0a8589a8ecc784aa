/**
 * Colour values of query parameters: hex `rgb`, `rgba`, `rrggbb` or `rrggbbaa` (with or without a
 * leading `#`, which must be sent as `%23`), or one of a few names.
 */

export interface Rgba {
  r: number;
  g: number;
  b: number;
  /** 0 (transparent) to 1 (opaque). */
  alpha: number;
}

const NAMED: Readonly<Record<string, Rgba>> = {
  black: { r: 0, g: 0, b: 0, alpha: 1 },
  white: { r: 255, g: 255, b: 255, alpha: 1 },
  gray: { r: 128, g: 128, b: 128, alpha: 1 },
  grey: { r: 128, g: 128, b: 128, alpha: 1 },
  red: { r: 255, g: 0, b: 0, alpha: 1 },
  green: { r: 0, g: 128, b: 0, alpha: 1 },
  blue: { r: 0, g: 0, b: 255, alpha: 1 },
  yellow: { r: 255, g: 255, b: 0, alpha: 1 },
  transparent: { r: 0, g: 0, b: 0, alpha: 0 },
};

export const COLOUR_SYNTAX = `a hex colour (rgb, rgba, rrggbb or rrggbbaa, optionally after "#" sent as %23) or one of ${Object.keys(NAMED).join(', ')}`;

/** The colour, or null when the text is not one. */
export function parseColour(text: string): Rgba | null {
  const named = NAMED[text.toLowerCase()];
  if (named !== undefined) return { ...named };
  const hex = text.startsWith('#') ? text.slice(1) : text;
  if (!/^(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/.test(hex)) return null;
  const full = hex.length <= 4 ? [...hex].map((c) => c + c).join('') : hex;
  const byte = (i: number) => parseInt(full.slice(i * 2, i * 2 + 2), 16);
  const alpha = full.length === 8 ? Math.round((byte(3) / 255) * 1000) / 1000 : 1;
  return { r: byte(0), g: byte(1), b: byte(2), alpha };
}

/** CSS notation for SVG attributes. */
export function cssRgb(c: Rgba): string {
  return `rgb(${c.r},${c.g},${c.b})`;
}
