import { useState } from 'preact/hooks';
import { html, fmtTime, fmtMs, announce } from '../../lib.js';
import { api, canMutate } from '../../api.js';
import { Table } from '../../components/Table.js';
import { Notice } from '../../components/Notice.js';
import { usePoll, useSeries, Badge, LoadError } from './common.js';
import { NodeCharts } from './overview.js';

/** The nodes: state, queues per DService and tier, their charts; staff who may change things can drain one. */
export function Nodes() {
  const ov = usePoll('/v1/ops/overview');
  const series = useSeries(60 * 60_000);
  const [error, setError] = useState('');
  const mutate = canMutate();

  const setDraining = async (n, draining) => {
    setError('');
    try {
      await api.patch(`/v1/nodes/${encodeURIComponent(n.id)}`, { draining });
      announce(`Node ${n.id} ${draining ? 'marked draining' : 'taking work again'}`, 'ok');
      ov.reload();
    } catch (err) {
      setError(err.message);
    }
  };

  const nodes = ov.data?.nodes ?? [];
  const queues = nodes.flatMap((n) => n.queues.map((q) => ({ node: n.id, ...q })));
  return html`<section aria-labelledby="nodes-h">
    <h1 id="nodes-h">Nodes</h1>
    <${LoadError} error=${ov.error} />
    <${Notice} kind="error">${error}<//>
    <${Table} caption="Nodes" testid="nodes-table" rowKey=${(n) => n.id}
      columns=${[
        { key: 'id', label: 'Node' },
        { key: 'region', label: 'Region' },
        { key: 'health', label: 'Health', render: (n) => html`<${Badge} value=${n.health} />` },
        { key: 'draining', label: 'Draining', render: (n) => (n.draining ? 'yes' : 'no') },
        { key: 'uptime', label: 'Up for', render: (n) => (n.uptimeS === null ? '—' : fmtMs(n.uptimeS * 1000)) },
        { key: 'seen', label: 'Last seen by the link', render: (n) => fmtTime(n.lastSeenAt || null) },
        { key: 'miners', label: 'Miners', num: true, render: (n) => n.miners.total },
        { key: 'alerts', label: 'Alerts', num: true, render: (n) => n.alertsFiring },
        ...(mutate
          ? [{ key: 'act', label: 'Actions', render: (n) => html`<button type="button" class="secondary" data-testid="node-drain"
                onClick=${() => setDraining(n, !n.draining)}>${n.draining ? 'Resume' : 'Drain'} ${n.id}</button>` }]
          : []),
      ]}
      rows=${nodes} empty="No nodes in the directory." />
    <h2>Queues</h2>
    <${Table} caption="Queued work per DService and tier" rowKey=${(q) => `${q.node}/${q.dservice}/${q.tier}`}
      columns=${[
        { key: 'node', label: 'Node' }, { key: 'dservice', label: 'DService' }, { key: 'tier', label: 'Tier' },
        { key: 'depth', label: 'Depth', num: true }, { key: 'oldestMs', label: 'Oldest', num: true, render: (q) => fmtMs(q.oldestMs) },
      ]}
      rows=${queues} empty="No queue has work waiting." />
    <h2>Errors</h2>
    <${Table} caption="Work that went wrong at each node since it started" testid="errors-table" rowKey=${(n) => n.id}
      columns=${[
        { key: 'id', label: 'Node' },
        { key: 'failed', label: 'Failed', num: true, render: (n) => n.broker?.failed ?? '—' },
        { key: 'deadline', label: 'Past deadline', num: true, render: (n) => n.broker?.deadlineExceeded ?? '—' },
        { key: 'full', label: 'Refused: queue full', num: true, render: (n) => n.broker?.refusedQueueFull ?? '—' },
        { key: 'lost', label: 'Miners lost mid-work', num: true, render: (n) => n.broker?.minersLost ?? '—' },
        { key: 'poll', label: 'Central reading it', render: (n) => (n.poll?.stale ? html`<${Badge} value="stale" /> ${n.poll.lastError ?? ''}` : n.poll ? 'ok' : '—') },
      ]}
      rows=${nodes} empty="No nodes." />
    <h2>Charts (last hour)</h2>
    <${LoadError} error=${series.error} />
    ${series.data ? html`<${NodeCharts} series=${series.data} />` : null}
  </section>`;
}
