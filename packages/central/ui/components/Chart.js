import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from '../lib.js';

const COLORS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0969da', '#57606a'];

/**
 * A time-series chart (uPlot, canvas). `data` is uPlot's columns: [xs in epoch seconds, ...ys];
 * `series` names each y column ([{ label, unit? }]). The figure's caption and an aria-label with the
 * latest values say in words what the canvas shows.
 */
export function Chart({ title, series, data, height = 220, yLabel, testid }) {
  const box = useRef(null);
  const plot = useRef(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const opts = {
      width: Math.max(200, el.clientWidth),
      height,
      // spanGaps: several nodes' samples are taken at different times, so each line has nulls at
      // the others' times; points are drawn while they are few (uPlot's default), so a lone sample shows.
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: s.color ?? COLORS[i % COLORS.length], width: 2, spanGaps: true }))],
      axes: [{}, { label: yLabel, size: 60 }],
      scales: { x: { time: true } },
      legend: { show: true },
    };
    plot.current = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, height, yLabel]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  const xs = data[0] ?? [];
  const last = xs.length === 0 ? 'no samples yet' : series.map((s, i) => `${s.label} ${fmt(data[i + 1]?.[xs.length - 1])}${s.unit ?? ''}`).join(', ');
  return html`<figure class="chart" data-testid=${testid} data-points=${xs.length}>
    <figcaption>${title}</figcaption>
    <div ref=${box} class="chart-box" role="img" aria-label=${`${title}: ${last}`}></div>
  </figure>`;
}

function fmt(v) {
  return v === null || v === undefined ? '—' : Number.isInteger(v) ? String(v) : v.toFixed(2);
}
