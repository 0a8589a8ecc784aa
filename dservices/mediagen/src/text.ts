/**
 * Text watermark as an SVG overlay the size of the image, placed by gravity with a margin.
 * Sizing the overlay to the image means the text never needs measuring (which would need the
 * font's metrics); text longer than the image is clipped at its edge.
 *
 * Rendering goes through librsvg and fontconfig with the generic `sans-serif` family, so the
 * pixels are the same for the same machine, fonts and sharp version, not across machines whose
 * fonts differ.
 */
import { cssRgb } from './colour.js';
import type { Size } from './geometry.js';
import type { TextOp } from './plan.js';

const XML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

/** Default font size: 6 % of the shorter side, at least 8 px. */
export function defaultTextSize(image: Size): number {
  return Math.max(8, Math.round(Math.min(image.width, image.height) * 0.06));
}

export function textOverlaySvg(op: TextOp, image: Size): Buffer {
  const size = op.size ?? defaultTextSize(image);
  const margin = Math.round(size / 2);
  const g = op.gravity;
  const [x, anchor] = g.endsWith('west')
    ? [margin, 'start']
    : g.endsWith('east')
      ? [image.width - margin, 'end']
      : [image.width / 2, 'middle'];
  // y is the baseline: below the ascent at the top, above the descent at the bottom.
  const y = g.startsWith('north')
    ? margin + size * 0.8
    : g.startsWith('south')
      ? image.height - margin - size * 0.25
      : image.height / 2 + size * 0.35;
  const c = op.color;
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${image.height}">` +
      `<text x="${x}" y="${y.toFixed(2)}" font-family="sans-serif" font-size="${size}" text-anchor="${anchor}"` +
      ` fill="${cssRgb(c)}" fill-opacity="${c.alpha}" xml:space="preserve">${escapeXml(op.text)}</text></svg>`,
  );
}
