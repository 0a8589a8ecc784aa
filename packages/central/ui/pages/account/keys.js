// API keys: create one (the key is shown once, with a copy button and a warning), list them with
// prefix, created and last used, and revoke one after a confirmation.
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html, announce, fmtTime } from '../../lib.js';
import { api } from '../../api.js';
import { Field, Select } from '../../components/Field.js';
import { Notice } from '../../components/Notice.js';
import { Table } from '../../components/Table.js';
import { accountId, CopyButton, loadProblem, useLoad, AccountPicker } from './common.js';

const SCOPE_SETS = [
  { value: 'work,select,token', label: 'Send work, find nodes, get access tokens (default)' },
  { value: 'work,select', label: 'Send work and find nodes' },
  { value: 'work', label: 'Send work only' },
];
const EXPIRY = [
  { value: '', label: 'Never' },
  { value: String(30 * 86400), label: 'In 30 days' },
  { value: String(90 * 86400), label: 'In 90 days' },
  { value: String(365 * 86400), label: 'In a year' },
];

function state(k, now) {
  if (k.revokedAt !== null) return html`<span class="badge badge-bad">revoked ${fmtTime(k.revokedAt)}</span>`;
  if (k.expiresAt !== null && k.expiresAt <= now) return html`<span class="badge badge-muted">expired</span>`;
  return html`<span class="badge badge-ok">active</span>`;
}

/** "Yes, revoke" / "Cancel", focused on arrival (the Revoke… button it replaces is gone); Escape cancels. */
function ConfirmRevoke({ k, busy, onConfirm, onCancel }) {
  const yes = useRef(null);
  useLayoutEffect(() => yes.current?.focus(), []);
  return html`<span role="group" aria-label=${`Confirm revoking ${k.name}`} onKeyDown=${(e) => e.key === 'Escape' && onCancel()}>
    <button type="button" class="danger" ref=${yes} onClick=${onConfirm} disabled=${busy} data-testid=${`revoke-confirm-${k.prefix}`}>Yes, revoke ${k.name}</button>
    ${' '}<button type="button" class="secondary" onClick=${onCancel}>Cancel</button>
  </span>`;
}

export function KeysPage({ query, path }) {
  const acc = accountId(query);
  const keys = useLoad(() => api.get(`/v1/accounts/${encodeURIComponent(acc)}/keys`), [acc]);
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState(SCOPE_SETS[0].value);
  const [expires, setExpires] = useState('');
  const [created, setCreated] = useState(null);
  const [confirming, setConfirming] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const create = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const body = { name: name.trim(), scopes: scopes.split(',') };
      if (expires !== '') body.expiresInS = Number(expires);
      const k = await api.post(`/v1/accounts/${encodeURIComponent(acc)}/keys`, body);
      setCreated(k);
      setName('');
      announce(`Key ${k.name} created: copy it now, it is shown only once`, 'ok');
      keys.reload();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  const revoke = async (k) => {
    setBusy(true);
    setError('');
    try {
      await api.del(`/v1/accounts/${encodeURIComponent(acc)}/keys/${encodeURIComponent(k.id)}`);
      setConfirming(null);
      if (created?.id === k.id) setCreated(null);
      announce(`Key ${k.name} (${k.prefix}…) revoked: nodes refuse it from now on`, 'ok');
      keys.reload();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };

  const now = Date.now();
  const rows = keys.data?.keys ?? [];
  const columns = [
    { key: 'name', label: 'Name' },
    { key: 'prefix', label: 'Key starts with', render: (k) => html`<code>${k.prefix}…</code>` },
    { key: 'scopes', label: 'Scopes', render: (k) => k.scopes.join(', ') },
    { key: 'createdAt', label: 'Created (UTC)', render: (k) => fmtTime(k.createdAt) },
    { key: 'lastUsedAt', label: 'Last used (UTC)', render: (k) => (k.lastUsedAt === null ? 'never' : fmtTime(k.lastUsedAt)) },
    { key: 'expiresAt', label: 'Expires (UTC)', render: (k) => (k.expiresAt === null ? 'never' : fmtTime(k.expiresAt)) },
    { key: 'state', label: 'State', render: (k) => state(k, now) },
    {
      key: 'actions', label: 'Actions',
      render: (k) => k.revokedAt !== null
        ? null
        : confirming === k.id
          ? html`<${ConfirmRevoke} k=${k} busy=${busy} onConfirm=${() => revoke(k)} onCancel=${() => setConfirming(null)} />`
          : html`<button type="button" class="secondary" onClick=${() => setConfirming(k.id)} aria-label=${`Revoke ${k.name} (${k.prefix}…)`} data-testid=${`revoke-${k.prefix}`}>Revoke…</button>`,
    },
  ];

  return html`<section aria-labelledby="keys-h">
    <h1 id="keys-h">API keys</h1>
    <${AccountPicker} query=${query} path=${path} />
    <p>Your DApp sends its work with an API key (<code>Authorization: Bearer cgn_…</code>). Keep keys secret; revoke one the moment it may have leaked — nodes refuse it at once.</p>
    ${created
      ? html`<div class="card wide once" data-testid="new-key">
          <h2>Your new key “${created.name}”</h2>
          <${Notice} kind="warn">Copy this key now. It is shown only this once: CGN keeps only its hash and cannot show it again.<//>
          <p><code id="new-key-value" class="wrap" data-testid="new-key-value">${created.key}</code></p>
          <p><${CopyButton} text=${created.key} targetId="new-key-value" label="Copy the key" testid="copy-key" />
          ${' '}<button type="button" class="secondary" onClick=${() => setCreated(null)}>I have saved it</button></p>
        </div>`
      : null}
    <form class="toolbar" onSubmit=${create} aria-label="Create an API key">
      <${Field} label="Name of the new key" name="key-name" value=${name} onInput=${setName} required maxlength="100" hint="Where it is used, e.g. “web shop production”." />
      <${Select} label="What it may do" name="key-scopes" value=${scopes} onChange=${setScopes} options=${SCOPE_SETS} />
      <${Select} label="Expires" name="key-expiry" value=${expires} onChange=${setExpires} options=${EXPIRY} />
      <button type="submit" disabled=${busy || name.trim() === ''} data-testid="create-key">Create key</button>
    </form>
    <${Notice} kind="error">${error}<//>
    <${Notice} kind="error">${loadProblem(keys.error, 'the keys')}<//>
    <${Table} caption="Keys of this account" columns=${columns} rows=${rows} rowKey=${(k) => k.id} empty=${keys.loading ? 'Loading…' : 'No keys yet.'} testid="keys-table" />
  </section>`;
}
