// A QR code as an SVG (uqr encodes it; nothing is drawn from outside this origin, so the strict
// CSP holds). The text it encodes is always shown beside it too.
import { encode } from 'uqr';
import { html } from '../../lib.js';

export function QrCode({ text, label, size = 200, testid }) {
  const qr = encode(text, { ecc: 'M', border: 2 });
  const n = qr.size;
  let d = '';
  qr.data.forEach((row, y) => row.forEach((on, x) => {
    if (on) d += `M${x} ${y}h1v1h-1z`;
  }));
  return html`<svg class="qr" role="img" aria-label=${label} width=${size} height=${size} viewBox=${`0 0 ${n} ${n}`} shape-rendering="crispEdges" data-testid=${testid} data-modules=${n}>
    <rect width=${n} height=${n} fill="#ffffff" />
    <path d=${d} fill="#000000" />
  </svg>`;
}
