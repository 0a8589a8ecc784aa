import { html } from '../lib.js';

let seq = 0;

/** A labelled input. `hint` is tied to the input with aria-describedby. */
export function Field({ label, id, type = 'text', value, onInput, hint, ...rest }) {
  const fid = id ?? (rest.name ? `f-${rest.name}` : `f-${++seq}`);
  const hid = hint ? `${fid}-hint` : undefined;
  return html`<div class="field">
    <label for=${fid}>${label}</label>
    <input id=${fid} type=${type} value=${value} onInput=${(e) => onInput?.(e.currentTarget.value)} aria-describedby=${hid} ...${rest} />
    ${hint ? html`<small id=${hid} class="hint">${hint}</small>` : null}
  </div>`;
}

/** A labelled select; `options` is [{ value, label }]. */
export function Select({ label, id, value, onChange, options, ...rest }) {
  const fid = id ?? (rest.name ? `f-${rest.name}` : `f-${++seq}`);
  return html`<div class="field">
    <label for=${fid}>${label}</label>
    <select id=${fid} value=${value} onChange=${(e) => onChange?.(e.currentTarget.value)} ...${rest}>
      ${options.map((o) => html`<option value=${o.value}>${o.label}</option>`)}
    </select>
  </div>`;
}
