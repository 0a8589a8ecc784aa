import { html, fmtCount, fmtMs, fmtTime } from '../../lib.js';
import { Chart } from '../../components/Chart.js';
import { Table } from '../../components/Table.js';
import { useMemo, useState } from 'preact/hooks';
import { Select } from '../../components/Field.js';
import { usePoll, useSeries, Badge, Tile, alignSeries, LoadError, WINDOWS } from './common.js';

function sum(obj) {
  return Object.values(obj ?? {}).reduce((a, b) => a + b, 0);
}

export function NodeCharts({ series, nodeIds }) {
  const nodes = (series?.nodes ?? []).filter((n) => nodeIds === undefined || nodeIds.includes(n.nodeId));
  const labels = nodes.map((n) => ({ label: n.nodeId }));
  const withSuffix = (suffix) => nodes.map((n) => ({ label: `${n.nodeId} ${suffix}` }));
  // Computed once per new set of samples, so each chart redraws only when its data changed.
  const cols = useMemo(() => {
    const p = (f) => alignSeries(nodes, f);
    const a = p('p50Ms');
    const b = p('p95Ms');
    return { throughput: p('throughput'), queued: p('queued'), errors: p('errors'), latency: [a[0], ...a.slice(1), ...b.slice(1)] };
  }, [series, nodeIds]);
  return html`<div class="charts">
    <${Chart} testid="chart-throughput" title="Throughput (answers/s)" series=${labels} data=${cols.throughput} yLabel="req/s" />
    <${Chart} testid="chart-latency" title="Latency p50 / p95 (ms)" series=${[...withSuffix('p50'), ...withSuffix('p95')]} data=${cols.latency} yLabel="ms" />
    <${Chart} testid="chart-queue" title="Queued work units" series=${labels} data=${cols.queued} yLabel="units" />
    <${Chart} testid="chart-errors" title="Errors (5xx answers/s)" series=${labels} data=${cols.errors} yLabel="err/s" />
  </div>`;
}

export function Overview() {
  const ov = usePoll('/v1/ops/overview');
  const [windowMs, setWindowMs] = useState(WINDOWS[2].value);
  // The whole hour is held; the window only filters it.
  const all = useSeries(60 * 60_000);
  const series = useMemo(() => {
    const cutoff = Date.now() - Number(windowMs);
    return { error: all.error, data: all.data && { ...all.data, nodes: all.data.nodes.map((n) => ({ ...n, samples: n.samples.filter((s) => s.t >= cutoff) })) } };
  }, [all, windowMs]);
  const alerts = usePoll('/v1/ops/alerts');
  const o = ov.data;
  const queued = o ? o.nodes.reduce((n, x) => n + x.queues.reduce((a, q) => a + q.depth, 0), 0) : null;
  return html`<section aria-labelledby="ov-h">
    <h1 id="ov-h">Overview</h1>
    <${LoadError} error=${ov.error} />
    ${o
      ? html`<div class="tiles">
          <${Tile} testid="tile-nodes" label="Nodes up" value=${`${o.nodes.filter((n) => n.health === 'up').length} / ${o.nodes.length}`} />
          <${Tile} testid="tile-miners" label="Miners connected" value=${fmtCount(o.miners.total - (o.miners.byState.offline ?? 0))} />
          <${Tile} label="Busy miners" value=${fmtCount(o.miners.byState.busy ?? 0)} />
          <${Tile} label="Queued work" value=${fmtCount(queued)} />
          <${Tile} testid="tile-alerts" label="Alerts firing" value=${alerts.data ? alerts.data.alerts.length : '…'} />
        </div>
        <h2>Miners by tier and region</h2>
        <div class="tiles">
          ${Object.entries(o.miners.byTier).map(([k, v]) => html`<${Tile} label=${`tier ${k}`} value=${v} />`)}
          ${Object.entries(o.miners.byRegion).map(([k, v]) => html`<${Tile} label=${`region ${k}`} value=${v} />`)}
        </div>`
      : html`<p>Loading…</p>`}
    <h2>Over time</h2>
    <div class="toolbar"><${Select} label="Charts show" name="window" value=${windowMs} onChange=${setWindowMs} options=${WINDOWS} /></div>
    <${LoadError} error=${series.error} />
    ${series.data ? html`<${NodeCharts} series=${series.data} />` : null}
    <h2>Nodes</h2>
    ${o
      ? html`<${Table} caption="Nodes and their last status" testid="nodes-table" rowKey=${(n) => n.id}
          columns=${[
            { key: 'id', label: 'Node' },
            { key: 'region', label: 'Region' },
            { key: 'health', label: 'Health', render: (n) => html`<${Badge} value=${n.draining ? 'draining' : n.health} />` },
            { key: 'link', label: 'Link', render: (n) => (n.link ? html`<${Badge} value=${n.link.state} />` : '—') },
            { key: 'poll', label: 'Last status', render: (n) => (n.poll === null ? '—' : n.poll.stale ? html`<${Badge} value="stale" /> <small>${n.poll.lastError ?? ''}</small>` : fmtTime(n.poll.readAt)) },
            { key: 'miners', label: 'Miners', num: true, render: (n) => n.miners.total },
            { key: 'tiers', label: 'By tier', render: (n) => Object.entries(n.miners.byTier).map(([k, v]) => `${k} ${v}`).join(', ') || '—' },
            { key: 'queued', label: 'Queued', num: true, render: (n) => n.queues.reduce((a, q) => a + q.depth, 0) },
            { key: 'oldest', label: 'Oldest queued', num: true, render: (n) => fmtMs(n.queues.reduce((a, q) => Math.max(a, q.oldestMs), 0)) },
            { key: 'failed', label: 'Failed work', num: true, render: (n) => (n.broker ? n.broker.failed : '—') },
          ]}
          rows=${o.nodes} empty="No nodes in the directory yet." />`
      : null}
    ${o?.polling ? html`<p class="hint">Central reads every node's status every ${o.polling.intervalMs / 1000} s and keeps ${o.polling.samplesKept} samples per node.</p>` : null}
    ${o && sum(o.miners.byTier) === 0 ? html`<p>No miner is connected to any node.</p>` : null}
  </section>`;
}
