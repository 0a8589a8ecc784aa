import { useState } from 'preact/hooks';
import { html, fmtMs, shortHash, announce } from '../../lib.js';
import { api, canMutate } from '../../api.js';
import { Table } from '../../components/Table.js';
import { Select } from '../../components/Field.js';
import { Notice } from '../../components/Notice.js';
import { usePoll, Badge, LoadError } from './common.js';

const ANY = { value: '', label: 'any' };
const opts = (values) => [ANY, ...[...new Set(values)].sort().map((v) => ({ value: v, label: v }))];

/** Every miner (connected or offline), filterable by tier, region and state; staff who may change things set its granted tier. */
export function Miners() {
  // 10 s: with thousands of miners the list is the heaviest answer (bench/dashboard.mjs: 1.4 MB for 5000).
  const list = usePoll('/v1/ops/miners', 10_000);
  const [tier, setTier] = useState('');
  const [region, setRegion] = useState('');
  const [state, setState] = useState('');
  const [error, setError] = useState('');
  const mutate = canMutate();
  const all = list.data?.miners ?? [];
  const rows = all.filter((m) => (!tier || (m.tier ?? 'offline') === tier) && (!region || (m.region ?? 'offline') === region) && (!state || m.state === state));

  const grant = async (m, to) => {
    setError('');
    try {
      await api.put(`/v1/miners/${encodeURIComponent(m.id)}/tier`, { tier: to });
      announce(`Miner ${m.name ?? shortHash(m.id)} granted the ${to} tier`, 'ok');
      list.reload();
    } catch (err) {
      setError(err.message);
    }
  };

  return html`<section aria-labelledby="miners-h">
    <h1 id="miners-h">Miners</h1>
    <${LoadError} error=${list.error} />
    <${Notice} kind="error">${error}<//>
    <div class="toolbar" role="group" aria-label="Filter miners">
      <${Select} label="Tier" name="tier" value=${tier} onChange=${setTier} options=${opts(all.map((m) => m.tier ?? 'offline'))} />
      <${Select} label="Region" name="region" value=${region} onChange=${setRegion} options=${opts(all.map((m) => m.region ?? 'offline'))} />
      <${Select} label="State" name="state" value=${state} onChange=${setState} options=${opts(all.map((m) => m.state))} />
      <span aria-live="polite">${rows.length} of ${all.length} miners</span>
    </div>
    <${Table} caption="Miners" testid="miners-table" rowKey=${(m) => `${m.nodeId}/${m.id}`}
      columns=${[
        { key: 'id', label: 'Miner', render: (m) => html`<span class="mono" title=${m.id} data-miner-id=${m.id}>${m.name ? `${m.name} · ` : ''}${shortHash(m.id, 6)}</span>` },
        { key: 'nodeId', label: 'Node' },
        { key: 'region', label: 'Region' },
        { key: 'tier', label: 'Tier', render: (m) => m.tier ?? '—' },
        { key: 'grantedTier', label: 'Granted', render: (m) => m.grantedTier ?? 'not registered' },
        { key: 'state', label: 'State', render: (m) => html`<${Badge} value=${m.state} />` },
        { key: 'slots', label: 'Slots (busy)', num: true, render: (m) => `${m.slots} (${m.inUse})` },
        { key: 'latencyMs', label: 'Latency', num: true, render: (m) => fmtMs(m.latencyMs) },
        { key: 'completed', label: 'Done', num: true },
        { key: 'failed', label: 'Failed', num: true },
        { key: 'dservices', label: 'DServices', render: (m) => m.dservices.join(', ') || '—' },
        ...(mutate
          ? [{ key: 'act', label: 'Actions', render: (m) => (m.grantedTier === null ? '—' : html`<button type="button" class="secondary" data-testid="miner-tier"
                onClick=${() => grant(m, m.grantedTier === 'dedicated' ? 'open' : 'dedicated')}>
                ${m.grantedTier === 'dedicated' ? 'Back to open' : 'Grant dedicated'}<span class="sr-only"> to ${m.name ?? m.id}</span></button>`) }]
          : []),
      ]}
      rows=${rows} empty="No miner matches." />
  </section>`;
}
