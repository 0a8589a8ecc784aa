import { html, fmtMicros, fmtTokens, fmtTime, fmtCount, shortHash } from '../../lib.js';
import { Table } from '../../components/Table.js';
import { usePoll, Badge, LoadError } from './common.js';

function TxLink({ tx, template }) {
  if (!tx) return '—';
  // Only an http(s) template becomes a link (central checks it too; a page never trusts an href blindly).
  if (!template || !/^https?:\/\//.test(template)) return html`<span class="mono" title=${tx}>${shortHash(tx)}</span>`;
  return html`<a class="mono" href=${template.replace('{tx}', encodeURIComponent(tx))} rel="noopener noreferrer" target="_blank" title=${tx}>${shortHash(tx)}</a>`;
}

/** Revenue per DService and the billing cycles with the transactions that anchored them. */
export function Billing() {
  const rev = usePoll('/v1/ops/revenue', 30_000);
  const cyc = usePoll('/v1/ops/cycles', 30_000);
  const tpl = cyc.data?.explorerTxUrl ?? null;
  return html`<section aria-labelledby="billing-h">
    <h1 id="billing-h">Revenue and billing cycles</h1>
    <h2>Revenue per DService</h2>
    <${LoadError} error=${rev.error} />
    <${Table} caption="All recorded work, over all accounts" testid="revenue-table" rowKey=${(d) => d.dservice}
      columns=${[
        { key: 'dservice', label: 'DService' },
        { key: 'records', label: 'Requests', num: true, render: (d) => fmtCount(d.records) },
        { key: 'priceMicros', label: 'Charged (USD)', num: true, render: (d) => fmtMicros(d.priceMicros) },
        { key: 'tokens', label: 'Tokens', num: true, render: (d) => fmtTokens(d.tokens) },
      ]}
      rows=${rev.data?.dservices ?? []} empty="No work recorded yet." />
    <h2>Billing cycles</h2>
    <${LoadError} error=${cyc.error} />
    <${Table} caption="Cycles, newest first" testid="cycles-table" rowKey=${(c) => c.id}
      columns=${[
        { key: 'id', label: 'Cycle', num: true },
        { key: 'state', label: 'State', render: (c) => html`<${Badge} value=${c.anchor ? 'anchored' : c.sealedAt ? 'sealed' : c.closedAt ? 'closed' : 'open'} />` },
        { key: 'openedAt', label: 'Opened', render: (c) => fmtTime(c.openedAt) },
        { key: 'closedAt', label: 'Closed', render: (c) => fmtTime(c.closedAt) },
        { key: 'records', label: 'Records', num: true, render: (c) => (c.records === null ? '—' : fmtCount(c.records)) },
        { key: 'priceMicros', label: 'Charged (USD)', num: true, render: (c) => fmtMicros(c.priceMicros) },
        { key: 'tokens', label: 'Tokens', num: true, render: (c) => fmtTokens(c.tokens) },
        { key: 'payoutRoot', label: 'Payout root', render: (c) => (c.payoutRoot ? html`<span class="mono" title=${c.payoutRoot}>${shortHash(c.payoutRoot)}</span>` : '—') },
        { key: 'anchor', label: 'Anchor transaction', render: (c) => (c.anchor ? html`<${TxLink} tx=${c.anchor.tx} template=${tpl} /> <small>${fmtTime(c.anchor.anchoredAt)}</small>` : '—') },
      ]}
      rows=${cyc.data?.cycles ?? []} empty="No billing cycles yet." />
  </section>`;
}
