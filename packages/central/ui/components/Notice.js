import { html } from '../lib.js';

/** A message box: errors are announced at once (role=alert), other kinds politely (role=status). */
export function Notice({ kind = 'info', children }) {
  if (children === null || children === undefined || children === '') return null;
  return html`<div class=${`notice notice-${kind}`} role=${kind === 'error' ? 'alert' : 'status'}>${children}</div>`;
}
