// The DService developer's view: its DServices (every version) with approval state and prices,
// where its earnings are paid, what it earned per closed cycle and each DService's revenue.
import { useState } from 'preact/hooks';
import { html, announce, fmtMicros, fmtTokens, fmtCount, fmtTime } from '../../lib.js';
import { api } from '../../api.js';
import { Chart } from '../../components/Chart.js';
import { Field } from '../../components/Field.js';
import { Notice } from '../../components/Notice.js';
import { Table } from '../../components/Table.js';
import { accountId, loadProblem, tokenScale, useLoad, AccountPicker } from './common.js';

const BADGE = { approved: 'badge-ok', pending: 'badge-warn', rejected: 'badge-bad' };

function PayoutAddress({ acc, current, onSaved }) {
  const [address, setAddress] = useState(current ?? '');
  const [error, setError] = useState('');
  const save = async (e) => {
    e.preventDefault();
    setError('');
    try {
      await api.put(`/v1/accounts/${encodeURIComponent(acc)}/payout-address`, { address: address.trim() === '' ? null : address.trim() });
      announce(address.trim() === '' ? 'Payout address cleared: earnings are held until you set one' : 'Payout address saved: nodes learn it now', 'ok');
      onSaved();
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<form class="toolbar" onSubmit=${save} aria-label="Payout address">
    <${Field} label="Payout address (your wallet, 0x…)" name="payout-address" value=${address} onInput=${setAddress} size="46" spellcheck="false"
      hint="Your developer share of every request is paid here. Without one it is held (never lost) and paid once you set it." />
    <button type="submit">Save</button>
    <${Notice} kind="error">${error}<//>
  </form>`;
}

export function DeveloperPage({ query, path }) {
  const acc = accountId(query);
  const dev = useLoad(() => api.get(`/v1/accounts/${encodeURIComponent(acc)}/developer`), [acc]);
  const d = dev.data;
  const earnings = d?.earnings ?? [];
  const scale = tokenScale([earnings.map((e) => e.tokens)]);
  return html`<section aria-labelledby="dev-h">
    <h1 id="dev-h">Your DServices</h1>
    <${AccountPicker} query=${query} path=${path} />
    <${Notice} kind="error">${loadProblem(dev.error, 'the DServices and earnings')}<//>
    ${d && !d.developer ? html`<${Notice} kind="info">This account is not a developer account: ask CGN to add the developer kind to publish DServices.<//>` : null}
    ${d
      ? html`
        <${Table} caption="DService versions and their approval" testid="dservices" rowKey=${(r) => `${r.name}@${r.version}`} rows=${d.dservices}
          empty="No DService registered yet: cgn dservice init NAME, then cgn dservice register."
          columns=${[
            { key: 'name', label: 'DService', render: (r) => html`<code>${r.name}@${r.version}</code>` },
            { key: 'state', label: 'Approval', render: (r) => html`<span class=${`badge ${BADGE[r.state] ?? 'badge-muted'}`}>${r.state}</span>${r.rejectionReason ? html` <span>${r.rejectionReason}</span>` : null}` },
            { key: 'priceText', label: 'Price (µUSD per request / CPU second / MB)' },
            { key: 'submittedAt', label: 'Submitted (UTC)', render: (r) => fmtTime(r.submittedAt) },
            { key: 'decidedAt', label: 'Decided (UTC)', render: (r) => fmtTime(r.decidedAt) },
          ]} />
        <h2>Earnings</h2>
        <${PayoutAddress} acc=${acc} current=${d.payoutAddress} onSaved=${dev.reload} />
        ${d.unavailable ? html`<${Notice} kind="warn">Earnings are not available right now: ${d.unavailable}<//>` : null}
        ${earnings.length > 0
          ? html`<div class="charts"><${Chart} title=${`Your share per cycle (${scale.unit})`} yLabel=${scale.unit} testid="chart-earnings" series=${[{ label: 'earned', unit: ` ${scale.unit}` }]}
              data=${[earnings.map((e) => Math.floor((e.closedAt ?? e.openedAt) / 1000)), earnings.map((e) => scale.of(e.tokens))]} /></div>`
          : null}
        <${Table} caption="Your developer share per closed cycle" testid="earnings" rowKey=${(r) => r.cycle} rows=${[...earnings].reverse()} empty="Nothing earned in a closed cycle yet."
          columns=${[
            { key: 'cycle', label: 'Cycle', num: true },
            { key: 'closedAt', label: 'Closed (UTC)', render: (r) => fmtTime(r.closedAt) },
            { key: 'records', label: 'Requests', num: true, render: (r) => fmtCount(r.records) },
            { key: 'tokens', label: 'Earned', num: true, render: (r) => fmtTokens(r.tokens) },
            { key: 'held', label: 'Held (no address yet)', num: true, render: (r) => (r.held === '0' ? '—' : fmtTokens(r.held)) },
            { key: 'address', label: 'Paid to', render: (r) => (r.address ? html`<code>${r.address}</code>` : '—') },
          ]} />
        <${Table} caption="Revenue of your DServices per closed cycle (what all accounts paid for them)" testid="revenue" rowKey=${(r) => `${r.cycle}-${r.dservice}`}
          rows=${[...(d.revenue ?? [])].reverse()} empty="No revenue in a closed cycle yet."
          columns=${[
            { key: 'cycle', label: 'Cycle', num: true },
            { key: 'dservice', label: 'DService' },
            { key: 'records', label: 'Requests', num: true, render: (r) => fmtCount(r.records) },
            { key: 'priceMicros', label: 'Revenue', num: true, render: (r) => fmtMicros(r.priceMicros) },
            { key: 'tokens', label: 'In CGN', num: true, render: (r) => fmtTokens(r.tokens) },
          ]} />`
      : dev.loading ? html`<p>Loading…</p>` : null}
  </section>`;
}
