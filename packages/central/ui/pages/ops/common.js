// Helpers shared by the operator pages: polling, badges, and aligning per-node samples for charts.
import { useEffect, useState, useRef } from 'preact/hooks';
import { html } from '../../lib.js';
import { api } from '../../api.js';

/**
 * GETs `path` now and every `everyMs` while the page is shown: { data, error, reload }.
 * A failed refresh keeps the last data and shows the error beside it.
 */
export function usePoll(path, everyMs = 5000) {
  const [state, setState] = useState({ data: null, error: null });
  const alive = useRef(true);
  const load = () =>
    api.get(path).then(
      (data) => alive.current && setState({ data, error: null }),
      (err) => alive.current && setState((s) => ({ data: s.data, error: err })),
    );
  useEffect(() => {
    alive.current = true;
    load();
    const t = everyMs > 0 ? setInterval(load, everyMs) : null;
    return () => {
      alive.current = false;
      if (t) clearInterval(t);
    };
  }, [path, everyMs]);
  return { ...state, reload: load };
}

const KIND = {
  up: 'ok', idle: 'ok', open: 'ok', ok: 'ok', busy: 'warn', draining: 'warn', degraded: 'warn', connecting: 'warn', warning: 'warn',
  down: 'bad', offline: 'muted', closed: 'bad', critical: 'bad', unknown: 'muted', info: 'muted', stale: 'bad',
};

export function Badge({ value }) {
  return html`<span class=${`badge badge-${KIND[value] ?? 'muted'}`}>${value}</span>`;
}

export function Tile({ label, value, testid }) {
  return html`<div class="tile" data-testid=${testid}><div class="v">${value}</div><div class="k">${label}</div></div>`;
}

/**
 * uPlot columns from per-node samples: [xs (s), ...one column per node] for `field`, on the union
 * of sample times (rounded to the second), null where a node has no sample.
 */
export function alignSeries(nodes, field) {
  const times = new Set();
  for (const n of nodes) for (const s of n.samples) times.add(Math.round(s.t / 1000));
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const cols = nodes.map((n) => {
    const col = new Array(xs.length).fill(null);
    for (const s of n.samples) col[index.get(Math.round(s.t / 1000))] = s[field];
    return col;
  });
  return [xs, ...cols];
}

/** An error box for a failed load (a 403 says which roles may see it). */
export function LoadError({ error }) {
  if (!error) return null;
  return html`<div class="notice notice-error" role="alert">${error.message}</div>`;
}
