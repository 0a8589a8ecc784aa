import { html } from '../lib.js';

/**
 * A data table with a caption. `columns`: [{ key, label, render?(row), num? }] (num: right-aligned).
 * `rowKey(row)` gives a stable key; `empty` is shown when there are no rows.
 */
export function Table({ caption, columns, rows, rowKey, empty = 'Nothing yet.', testid }) {
  return html`<div class="table-wrap">
    <table data-testid=${testid}>
      ${caption ? html`<caption>${caption}</caption>` : null}
      <thead><tr>${columns.map((c) => html`<th scope="col" class=${c.num ? 'num' : ''}>${c.label}</th>`)}</tr></thead>
      <tbody>
        ${rows.length === 0
          ? html`<tr><td colspan=${columns.length} class="empty">${empty}</td></tr>`
          : rows.map((r, i) => html`<tr key=${rowKey ? rowKey(r) : i}>
              ${columns.map((c) => html`<td class=${c.num ? 'num' : ''}>${c.render ? c.render(r) : r[c.key] ?? '—'}</td>`)}
            </tr>`)}
      </tbody>
    </table>
  </div>`;
}
