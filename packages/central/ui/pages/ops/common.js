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
  approved: 'ok', anchored: 'ok', pending: 'warn', sealed: 'warn', rejected: 'bad',
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
 * of sample times, null where a node has no sample (the chart spans those gaps).
 */
export function alignSeries(nodes, field) {
  const times = new Set();
  for (const n of nodes) for (const s of n.samples) times.add(s.t);
  const ts = [...times].sort((a, b) => a - b);
  const index = new Map(ts.map((t, i) => [t, i]));
  const xs = ts.map((t) => t / 1000);
  const cols = nodes.map((n) => {
    const col = new Array(ts.length).fill(null);
    for (const s of n.samples) col[index.get(s.t)] = s[field];
    return col;
  });
  return [xs, ...cols];
}

/**
 * The per-node samples for the charts, fetched incrementally: the first GET takes the whole hour,
 * each later one only what is newer than the last sample held (`since`), so a page left open
 * costs a few hundred bytes per node per poll. Samples older than `windowMs` are dropped.
 */
export function useSeries(windowMs, everyMs = 5000) {
  const [state, setState] = useState({ data: null, error: null });
  const held = useRef(new Map());
  const alive = useRef(true);
  useEffect(() => {
    alive.current = true;
    const load = async () => {
      let last = 0;
      for (const n of held.current.values()) for (const s of n.samples) last = Math.max(last, s.t);
      try {
        const r = await api.get(`/v1/ops/series${last > 0 ? `?since=${last}` : ''}`);
        const cutoff = Date.now() - windowMs;
        const next = new Map();
        for (const n of r.nodes) {
          const old = held.current.get(n.nodeId)?.samples ?? [];
          next.set(n.nodeId, { ...n, samples: [...old, ...n.samples].filter((s) => s.t >= cutoff) });
        }
        held.current = next;
        if (alive.current) setState({ data: { intervalMs: r.intervalMs, nodes: [...next.values()] }, error: null });
      } catch (err) {
        if (alive.current) setState((s) => ({ data: s.data, error: err }));
      }
    };
    load();
    const t = setInterval(load, everyMs);
    return () => {
      alive.current = false;
      clearInterval(t);
    };
  }, [everyMs]);
  // The same object until the next poll: charts redraw when data changes, not on every render.
  return state;
}

export const WINDOWS = [
  { value: String(5 * 60_000), label: 'last 5 minutes' },
  { value: String(15 * 60_000), label: 'last 15 minutes' },
  { value: String(60 * 60_000), label: 'last hour' },
];

/** An error box for a failed load (a 403 says which roles may see it). */
export function LoadError({ error }) {
  if (!error) return null;
  return html`<div class="notice notice-error" role="alert">${error.message}</div>`;
}
