// The operator pages (staff roles; the monitor role sees them read-only).
import { html } from '../../lib.js';

function Placeholder() {
  return html`<section><h1>Operations</h1><p>Loading…</p></section>`;
}

export const routes = {
  '/ops/overview': Placeholder,
};

export const nav = [
  { href: '#/ops/overview', label: 'Overview' },
];
