import { html } from '../../lib.js';
import { Table } from '../../components/Table.js';
import { usePoll, Badge, LoadError } from './common.js';

/** Firing alerts: the nodes' own rules (queue age, error rate, miners lost, anchoring, accounts near empty) and central's. */
export function Alerts() {
  const a = usePoll('/v1/ops/alerts');
  return html`<section aria-labelledby="alerts-h">
    <h1 id="alerts-h">Alerts</h1>
    <p>Nodes evaluate their alert rules and notify their webhook; this page shows what is firing now, and central adds an alert for every node whose status it cannot read.</p>
    <${LoadError} error=${a.error} />
    <${Table} caption="Firing alerts, most severe first" testid="alerts-table" rowKey=${(x) => `${x.source}/${x.rule}/${x.summary}`}
      columns=${[
        { key: 'severity', label: 'Severity', render: (x) => html`<${Badge} value=${x.severity} />` },
        { key: 'rule', label: 'Rule' },
        { key: 'source', label: 'From' },
        { key: 'summary', label: 'Summary' },
        { key: 'since', label: 'Since', render: (x) => x.since.replace('T', ' ').slice(0, 19) },
      ]}
      rows=${a.data?.alerts ?? []} empty="Nothing is firing." />
  </section>`;
}
