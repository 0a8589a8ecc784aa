// Usage over time: cost and requests per DService or per end user, per day or per billing cycle
// (charts), and the end users page by page (table).
import { useState } from 'preact/hooks';
import { html, fmtMicros, fmtTokens, fmtCount } from '../../lib.js';
import { api } from '../../api.js';
import { Chart } from '../../components/Chart.js';
import { Field, Select } from '../../components/Field.js';
import { Notice } from '../../components/Notice.js';
import { Table } from '../../components/Table.js';
import { accountId, isoDay, loadProblem, moneyScale, useLoad, AccountPicker } from './common.js';

const PAGE = 25;

function SeriesCharts({ set, what }) {
  const xs = set.buckets.map((b) => Math.floor(b.start / 1000));
  const names = set.series.map((s) => ({ label: s.key }));
  if (set.series.length === 0) return html`<p class="empty" data-testid="usage-empty">No recorded work in this window.</p>`;
  const money = moneyScale(set.series.map((s) => s.priceMicros));
  return html`<div class="charts">
    <${Chart} title=${`Cost per ${what} (${money.unit})`} yLabel=${money.unit} testid="chart-cost" series=${names.map((n) => ({ ...n, unit: ` ${money.unit}` }))}
      data=${[xs, ...set.series.map((s) => s.priceMicros.map(money.of))]} />
    <${Chart} title=${`Requests per ${what}`} yLabel="requests" testid="chart-requests" series=${names} data=${[xs, ...set.series.map((s) => s.records)]} />
  </div>`;
}

function SeriesTable({ set, what }) {
  const rows = set.series.map((s) => ({
    key: s.key,
    records: s.records.reduce((a, b) => a + b, 0),
    priceMicros: s.priceMicros.reduce((a, b) => a + BigInt(b), 0n).toString(),
    tokens: s.tokens.reduce((a, b) => a + BigInt(b), 0n).toString(),
  }));
  return html`<${Table} caption=${`Totals per ${what} in the window`} testid="usage-totals" rowKey=${(r) => r.key} rows=${rows} columns=${[
    { key: 'key', label: what === 'end user' ? 'End user' : 'DService', render: (r) => (r.key === '-' ? html`<em>none given</em>` : r.key) },
    { key: 'records', label: 'Requests', num: true, render: (r) => fmtCount(r.records) },
    { key: 'priceMicros', label: 'Cost', num: true, render: (r) => fmtMicros(r.priceMicros) },
    { key: 'tokens', label: 'Charged', num: true, render: (r) => fmtTokens(r.tokens) },
  ]} />`;
}

function EndUsers({ acc, from, to }) {
  const [offset, setOffset] = useState(0);
  const page = useLoad(() => api.get(`/v1/accounts/${encodeURIComponent(acc)}/usage/end-users?from=${from}&to=${to}&offset=${offset}&limit=${PAGE}`), [acc, from, to, offset]);
  const d = page.data;
  return html`<section aria-labelledby="eu-h">
    <h2 id="eu-h">End users, most expensive first</h2>
    <${Notice} kind="error">${loadProblem(page.error, 'the usage')}<//>
    <${Table} caption=${d ? `${fmtCount(d.total)} end users; ${d.total === 0 ? 0 : offset + 1}–${offset + d.lines.length} shown` : 'End users'} testid="end-users" rowKey=${(r) => r.key}
      rows=${d?.lines ?? []} empty=${page.loading ? 'Loading…' : 'No end users in this window (work sent without an end user counts as “none given”).'}
      columns=${[
        { key: 'key', label: 'End user', render: (r) => (r.key === '-' ? html`<em>none given</em>` : r.key) },
        { key: 'records', label: 'Requests', num: true, render: (r) => fmtCount(r.records) },
        { key: 'cpuUs', label: 'CPU seconds', num: true, render: (r) => fmtCount(r.cpuUs / 1e6) },
        { key: 'priceMicros', label: 'Cost', num: true, render: (r) => fmtMicros(r.priceMicros) },
      ]} />
    <div class="toolbar">
      <button type="button" class="secondary" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - PAGE))}>Previous page</button>
      <button type="button" class="secondary" disabled=${d?.next === null || d === null} onClick=${() => setOffset(d.next)}>Next page</button>
    </div>
  </section>`;
}

export function UsagePage({ query, path }) {
  const acc = accountId(query);
  const today = Date.now();
  const [by, setBy] = useState('dservice');
  const [bucket, setBucket] = useState('day');
  const [from, setFrom] = useState(isoDay(today - 29 * 86400_000));
  const [to, setTo] = useState(isoDay(today));
  const [applied, setApplied] = useState({ from, to });
  const q = bucket === 'day' ? `bucket=day&from=${applied.from}&to=${applied.to}` : 'bucket=cycle&cycles=24';
  const set = useLoad(() => api.get(`/v1/accounts/${encodeURIComponent(acc)}/usage/series?by=${by}&${q}&top=8`), [acc, by, q]);
  const what = by === 'dservice' ? 'DService' : 'end user';

  return html`<section aria-labelledby="usage-h">
    <h1 id="usage-h">Usage</h1>
    <${AccountPicker} query=${query} path=${path} />
    <p>What your DApps' requests cost, per ${what}, from the nodes' metering ledger. Amounts are in US dollars as priced; “Charged” is what the ledger charged in CGN at each cycle's rate.</p>
    <form class="toolbar" onSubmit=${(e) => { e.preventDefault(); setApplied({ from, to }); }} aria-label="Usage window">
      <${Select} label="Group by" name="usage-by" value=${by} onChange=${setBy} options=${[{ value: 'dservice', label: 'DService' }, { value: 'end-user', label: 'End user' }]} />
      <${Select} label="Over" name="usage-bucket" value=${bucket} onChange=${setBucket} options=${[{ value: 'day', label: 'Days' }, { value: 'cycle', label: 'Billing cycles' }]} />
      ${bucket === 'day'
        ? html`<${Field} label="From (UTC day)" name="usage-from" type="date" value=${from} onInput=${setFrom} />
            <${Field} label="To (UTC day, inclusive)" name="usage-to" type="date" value=${to} onInput=${setTo} />
            <button type="submit">Show</button>`
        : null}
    </form>
    <${Notice} kind="error">${loadProblem(set.error, 'the usage')}<//>
    ${set.data ? html`<${SeriesCharts} set=${set.data} what=${what} /><${SeriesTable} set=${set.data} what=${what} />
      ${set.data.keys > set.data.series.filter((s) => s.key !== '(others)').length ? html`<p class="hint">The ${set.data.top} most expensive of ${fmtCount(set.data.keys)} are drawn; the rest are summed as “(others)”.</p>` : null}` : set.loading ? html`<p>Loading…</p>` : null}
    ${bucket === 'day' && set.error?.status !== 403 ? html`<${EndUsers} acc=${acc} from=${applied.from} to=${applied.to} />` : null}
  </section>`;
}
