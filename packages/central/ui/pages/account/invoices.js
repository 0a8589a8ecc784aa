// Invoices: what the account was charged in each closed billing cycle, and per DService on demand.
import { useState } from 'preact/hooks';
import { html, fmtMicros, fmtTokens, fmtCount, fmtTime } from '../../lib.js';
import { api } from '../../api.js';
import { Notice } from '../../components/Notice.js';
import { Table } from '../../components/Table.js';
import { accountId, loadProblem, useLoad, AccountPicker } from './common.js';

function rate(r) {
  return r ? `${r.num}/${r.den} base units per µUSD` : '—';
}

function InvoiceDetail({ acc, cycle }) {
  const inv = useLoad(() => api.get(`/v1/accounts/${encodeURIComponent(acc)}/invoices/${cycle}`), [acc, cycle]);
  if (inv.error) return html`<${Notice} kind="error">${inv.error.message}<//>`;
  if (!inv.data) return html`<p>Loading…</p>`;
  const d = inv.data;
  return html`<div data-testid=${`invoice-${cycle}`}>
    <h2 id="inv-detail-h">Cycle ${d.cycle}: ${fmtTime(d.openedAt)} – ${fmtTime(d.closedAt)} UTC</h2>
    <p>Rate: ${rate(d.rate)}${d.rateSource ? ` (from ${d.rateSource})` : ''}.</p>
    <${Table} caption=${`Cycle ${d.cycle} per DService`} rowKey=${(r) => r.key} rows=${d.byDservice} empty="No work in this cycle."
      columns=${[
        { key: 'key', label: 'DService' },
        { key: 'records', label: 'Requests', num: true, render: (r) => fmtCount(r.records) },
        { key: 'priceMicros', label: 'Cost', num: true, render: (r) => fmtMicros(r.priceMicros) },
        { key: 'tokens', label: 'Charged', num: true, render: (r) => fmtTokens(r.tokens) },
      ]} />
    <p><strong>Total: ${fmtMicros(d.priceMicros)} = ${fmtTokens(d.tokens)}</strong></p>
  </div>`;
}

export function InvoicesPage({ query, path }) {
  const acc = accountId(query);
  const list = useLoad(() => api.get(`/v1/accounts/${encodeURIComponent(acc)}/invoices`), [acc]);
  const [open, setOpen] = useState(null);
  const rows = [...(list.data?.invoices ?? [])].reverse();
  return html`<section aria-labelledby="inv-h">
    <h1 id="inv-h">Invoices</h1>
    <${AccountPicker} query=${query} path=${path} />
    <p>One invoice per closed billing cycle: what your account's work cost and what was charged from your balance, newest first.</p>
    <${Notice} kind="error">${loadProblem(list.error, 'the invoices')}<//>
    <${Table} caption="Invoices per cycle" testid="invoices" rowKey=${(r) => r.cycle} rows=${rows} empty=${list.loading ? 'Loading…' : 'No billing cycle has closed yet.'}
      columns=${[
        { key: 'cycle', label: 'Cycle', num: true },
        { key: 'closedAt', label: 'Closed (UTC)', render: (r) => fmtTime(r.closedAt) },
        { key: 'records', label: 'Requests', num: true, render: (r) => fmtCount(r.records) },
        { key: 'priceMicros', label: 'Cost', num: true, render: (r) => fmtMicros(r.priceMicros) },
        { key: 'tokens', label: 'Charged', num: true, render: (r) => fmtTokens(r.tokens) },
        {
          key: 'detail', label: 'Per DService',
          render: (r) => html`<button type="button" class="secondary" aria-expanded=${open === r.cycle} onClick=${() => setOpen(open === r.cycle ? null : r.cycle)}>
            ${open === r.cycle ? 'Hide' : 'Show'}<span class="sr-only"> cycle ${r.cycle}</span></button>`,
        },
      ]} />
    ${open !== null ? html`<${InvoiceDetail} acc=${acc} cycle=${open} />` : null}
  </section>`;
}
