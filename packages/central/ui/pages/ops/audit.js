import { useState } from 'preact/hooks';
import { html, fmtTime } from '../../lib.js';
import { Table } from '../../components/Table.js';
import { Field } from '../../components/Field.js';
import { usePoll, Badge, LoadError } from './common.js';

/** Central's security audit log (administrators and operators), newest first. */
export function Audit() {
  const [type, setType] = useState('');
  const [applied, setApplied] = useState('');
  const q = new URLSearchParams({ limit: '200', ...(applied ? { type: applied } : {}) });
  const log = usePoll(`/v1/audit?${q}`, 15_000);
  return html`<section aria-labelledby="audit-h">
    <h1 id="audit-h">Audit log</h1>
    <form class="toolbar" onSubmit=${(e) => (e.preventDefault(), setApplied(type.trim()))}>
      <${Field} label="Event type" name="type" value=${type} onInput=${setType} placeholder="e.g. login_failed" pattern="[a-z_]*" />
      <button type="submit">Filter</button>
    </form>
    <${LoadError} error=${log.error} />
    <${Table} caption="Security events, newest first (at most 200)" testid="audit-table" rowKey=${(e) => e.seq}
      columns=${[
        { key: 'at', label: 'When', render: (e) => fmtTime(e.at) },
        { key: 'type', label: 'Event' },
        { key: 'outcome', label: 'Outcome', render: (e) => html`<${Badge} value=${e.outcome === 'ok' ? 'ok' : e.outcome === 'denied' ? 'warning' : e.outcome === 'failure' ? 'critical' : e.outcome} />` },
        { key: 'actor', label: 'Actor', render: (e) => html`<span class="mono">${e.actor}</span>` },
        { key: 'ip', label: 'IP' },
        { key: 'details', label: 'Details', render: (e) => (e.details ? html`<code>${JSON.stringify(e.details).slice(0, 160)}</code>` : '—') },
      ]}
      rows=${log.data?.events ?? []} empty="No events." />
  </section>`;
}
