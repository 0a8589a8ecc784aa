import { useState } from 'preact/hooks';
import { html, fmtTime, shortHash, announce } from '../../lib.js';
import { api, getSession } from '../../api.js';
import { Table } from '../../components/Table.js';
import { Select } from '../../components/Field.js';
import { Notice } from '../../components/Notice.js';
import { usePoll, Badge, LoadError } from './common.js';

const STATES = [{ value: '', label: 'any' }, { value: 'pending', label: 'pending' }, { value: 'approved', label: 'approved' }, { value: 'rejected', label: 'rejected' }];

/** Every registered DService version and its approval; administrators approve or reject pending ones. */
export function DServices() {
  const [state, setState] = useState('pending');
  const list = usePoll(`/v1/dservices${state ? `?state=${state}` : ''}`, 15_000);
  const [error, setError] = useState('');
  // Approval is the administrators' decision (PUT .../approval); operators and monitors see the list.
  const admin = getSession()?.user.role === 'administrator';

  const decide = async (d, to) => {
    setError('');
    try {
      await api.put(`/v1/dservices/${encodeURIComponent(d.name)}/${encodeURIComponent(d.version)}/approval`, { state: to });
      announce(`${d.name}@${d.version} ${to}`, 'ok');
      list.reload();
    } catch (err) {
      setError(err.message);
    }
  };

  return html`<section aria-labelledby="ds-h">
    <h1 id="ds-h">DServices</h1>
    <div class="toolbar"><${Select} label="Approval" name="state" value=${state} onChange=${setState} options=${STATES} /></div>
    <${LoadError} error=${list.error} />
    <${Notice} kind="error">${error}<//>
    <${Table} caption="Registered DService versions" testid="dservices-table" rowKey=${(d) => `${d.name}@${d.version}`}
      columns=${[
        { key: 'name', label: 'DService', render: (d) => `${d.name}@${d.version}` },
        { key: 'developer', label: 'Developer', render: (d) => html`<span class="mono">${d.developer}</span>` },
        { key: 'state', label: 'Approval', render: (d) => html`<${Badge} value=${d.state} />` },
        { key: 'digest', label: 'Digest', render: (d) => html`<span class="mono" title=${d.digest}>${shortHash(d.digest, 6)}</span>` },
        { key: 'res', label: 'Resources', render: (d) => `${d.resources.cpus} CPU, ${d.resources.memoryMb} MB` },
        { key: 'submittedAt', label: 'Submitted', render: (d) => fmtTime(d.submittedAt) },
        ...(admin
          ? [{ key: 'act', label: 'Actions', render: (d) => (d.state !== 'pending' ? '—' : html`
              <button type="button" data-testid="ds-approve" onClick=${() => decide(d, 'approved')}>Approve<span class="sr-only"> ${d.name}@${d.version}</span></button>
              ${' '}<button type="button" class="danger" onClick=${() => decide(d, 'rejected')}>Reject<span class="sr-only"> ${d.name}@${d.version}</span></button>`) }]
          : []),
      ]}
      rows=${list.data?.dservices ?? []} empty=${state ? `No ${state} DService versions.` : 'No DService registered yet.'} />
  </section>`;
}
