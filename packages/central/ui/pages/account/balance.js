// Balance: what the account deposited, spent and has left, its deposits and withdrawals, the
// wallets linked to it, and how to top up (the escrow contract and the commands).
import { html, fmtTime, shortHash } from '../../lib.js';
import { api } from '../../api.js';
import { Notice } from '../../components/Notice.js';
import { Table } from '../../components/Table.js';
import { accountId, CopyButton, loadProblem, tokens as fmtTokens, useLoad, AccountPicker } from './common.js';

function Tile({ k, v, testid }) {
  return html`<div class="tile" data-testid=${testid}><div class="v">${v}</div><div class="k">${k}</div></div>`;
}

function TopUp({ t }) {
  return html`<section aria-labelledby="topup-h" data-testid="top-up">
    <h2 id="topup-h">How to top up</h2>
    ${t.escrow
      ? html`<p>Deposits go into the settlement escrow contract <code data-testid="escrow-address">${t.escrow.settlement}</code> (chain id ${t.escrow.chainId}), in CGN (token <code>${t.escrow.token}</code>)${t.escrow.rpcUrl ? html`, over <code>${t.escrow.rpcUrl}</code>` : null}.</p>`
      : html`<p>Deposits go into the network's settlement escrow contract; its address is in the deployment's contracts file (<code>--contracts</code>).</p>`}
    <ol class="steps">
      ${t.steps.map((s, i) => html`<li>
        <p>${s.what}</p>
        ${s.command ? html`<p><code id=${`step-${i}`} class="wrap">${s.command}</code> <${CopyButton} text=${s.command} targetId=${`step-${i}`} label="Copy" /></p>` : null}
      </li>`)}
    </ol>
    <p class="hint">${t.note}</p>
  </section>`;
}

export function BalancePage({ query, path }) {
  const acc = accountId(query);
  const b = useLoad(() => api.get(`/v1/accounts/${encodeURIComponent(acc)}/balance`), [acc]);
  const d = b.data;
  const low = d && BigInt(d.balance.available) <= 0n;
  return html`<section aria-labelledby="bal-h">
    <h1 id="bal-h">Balance and deposits</h1>
    <${AccountPicker} query=${query} path=${path} />
    <p>Your account prepays its work: nodes accept work up to the available balance (past it they answer 402).</p>
    <${Notice} kind="error">${loadProblem(b.error, 'the balance')}<//>
    ${d
      ? html`<div class="tiles">
          <${Tile} k="Available" v=${fmtTokens(d.balance.available)} testid="balance-available" />
          <${Tile} k="Deposited" v=${fmtTokens(d.balance.deposited)} testid="balance-deposited" />
          <${Tile} k="Spent" v=${fmtTokens(d.balance.spent)} />
        </div>
        ${low ? html`<${Notice} kind="warn">Nothing is available: new work is refused until you deposit (see below).<//>` : null}
        <${Table} caption="Deposits, newest first" testid="deposits" rowKey=${(r) => `${r.at}-${r.memo}`} rows=${d.deposits} empty="No deposits yet."
          columns=${[
            { key: 'at', label: 'Credited (UTC)', render: (r) => fmtTime(r.at) },
            { key: 'amount', label: 'Amount', num: true, render: (r) => fmtTokens(r.amount) },
            { key: 'memo', label: 'What', render: (r) => (r.memo?.startsWith('chain deposit ') ? html`on chain, <code title=${r.memo.slice(14)}>${shortHash(r.memo.slice(14))}</code>` : r.memo ?? 'credit') },
          ]} />
        <${Table} caption="Wallets linked to this account (deposits from them credit it)" testid="links" rowKey=${(r) => r.address} rows=${d.links} empty="No wallet linked yet."
          columns=${[{ key: 'address', label: 'Address', render: (r) => html`<code>${r.address}</code>` }, { key: 'linkedAt', label: 'Linked (UTC)', render: (r) => fmtTime(r.linkedAt) }]} />
        <${Table} caption="Withdrawals, newest first" rowKey=${(r) => r.id} rows=${d.withdrawals} empty="No withdrawals."
          columns=${[
            { key: 'requestedAt', label: 'Asked (UTC)', render: (r) => fmtTime(r.requestedAt) },
            { key: 'address', label: 'To', render: (r) => html`<code>${shortHash(r.address)}</code>` },
            { key: 'amount', label: 'Amount', num: true, render: (r) => fmtTokens(r.amount) },
            { key: 'state', label: 'State', render: (r) => (r.postedAt ? `posted for cycle ${r.cycle}: withdraw it with cgn wallet withdraw` : 'waiting for the next anchor') },
          ]} />
        <${TopUp} t=${d.topUp} />`
      : b.loading ? html`<p>Loading…</p>` : null}
  </section>`;
}
