// Shared helpers for every page: `html` (htm bound to Preact), formatting of times, money and
// hashes, and the live region every status change is announced in.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

/** Epoch ms -> "2026-12-07 05:01:02" (UTC, sortable, unambiguous). */
export function fmtTime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms))) return '—';
  return new Date(Number(ms)).toISOString().replace('T', ' ').slice(0, 19);
}

/** Milliseconds -> "12 ms" / "1.2 s". */
export function fmtMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(Number(ms))) return '—';
  const n = Number(ms);
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(n < 10_000 ? 2 : 1)} s`;
}

/** A µUSD amount (integer or decimal string) -> "$1.234567"; exact, no floats. */
export function fmtMicros(micros) {
  if (micros === null || micros === undefined) return '—';
  let s = String(micros);
  const neg = s.startsWith('-');
  if (neg) s = s.slice(1);
  s = s.padStart(7, '0');
  return `${neg ? '-' : ''}$${s.slice(0, -6)}.${s.slice(-6)}`;
}

/** CGN base units (10^18 per CGN, decimal string) -> "1.5 CGN", trailing zeros dropped; exact. */
export function fmtTokens(units) {
  if (units === null || units === undefined) return '—';
  const s = String(units).padStart(19, '0');
  const frac = s.slice(-18).replace(/0+$/, '');
  return `${s.slice(0, -18).replace(/^0+(?=\d)/, '')}${frac ? `.${frac}` : ''} CGN`;
}

export function fmtCount(n) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return '—';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** "0x1234…abcd" for long hex identifiers; the full value stays in the title. */
export function shortHash(s, keep = 8) {
  if (typeof s !== 'string') return '—';
  return s.length > 2 * keep + 3 ? `${s.slice(0, keep + 2)}…${s.slice(-keep)}` : s;
}

// ------------------------------------------------------------ the aria-live status region
const listeners = new Set();
/** Announces a status change (screen readers read it; the page shows it in the status bar). */
export function announce(message, kind = 'info') {
  for (const l of listeners) l({ message, kind, at: Date.now() });
}
export function onAnnounce(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
