// Shared by the account pages: loading data with a visible, announced error, the signed-in
// account's id, and a copy-to-clipboard button.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { html, announce, fmtTokens } from '../../lib.js';
import { getSession, isStaff } from '../../api.js';
import { Field } from '../../components/Field.js';

/** The account a page shows: the signed-in user's own, or for staff the one in `?account=`. */
export function accountId(query) {
  const s = getSession();
  const own = s?.user?.accountId ?? '';
  return isStaff(s) && typeof query?.account === 'string' && query.account !== '' ? query.account : own;
}

/** Staff only: which account's pages to look at (`#/account/...?account=ID`). */
export function AccountPicker({ query, path }) {
  const s = getSession();
  const [value, setValue] = useState(query?.account ?? '');
  if (!isStaff(s)) return null;
  const go = (e) => {
    e.preventDefault();
    const v = value.trim();
    location.hash = v === '' ? `#${path}` : `#${path}?account=${encodeURIComponent(v)}`;
  };
  return html`<form class="toolbar" onSubmit=${go} aria-label="Account to look at (staff)">
    <${Field} label="Account id (staff: look at any account)" name="staff-account" value=${value} onInput=${setValue} spellcheck="false"
      hint=${`Empty: your own account (${s.user.accountId}).`} />
    <button type="submit" class="secondary">Look at it</button>
    ${query?.account
      ? html`<nav aria-label="This account's other pages"><ul class="inline">
          ${STAFF_PAGES.map(([href, label]) => html`<li><a href=${`#${href}?account=${encodeURIComponent(query.account)}`} aria-current=${href === path ? 'page' : undefined}>${label}</a></li>`)}
        </ul></nav>`
      : null}
  </form>`;
}

/** The pages a staff member may look at for another account (sign-in security is one's own). */
const STAFF_PAGES = [
  ['/account/usage', 'Usage'], ['/account/invoices', 'Invoices'], ['/account/balance', 'Balance'], ['/account/keys', 'Keys'], ['/account/developer', 'DServices'],
];

/** Whether the signed-in user owns their account (money pages are the owner's). */
export function isOwner() {
  const u = getSession()?.user;
  return u?.role === 'user' && u?.owner === true;
}

/** `load()` runs now and whenever `deps` change; `reload()` runs it again. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const run = useCallback(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (err) => {
        if (!live) return;
        setState({ data: null, error: err, loading: false });
        announce(err.message, 'error');
      },
    );
    return () => {
      live = false;
    };
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

/** What a refused or failed load means for the reader. */
export function loadProblem(err, what) {
  if (!err) return null;
  if (err.status === 403) return `Only the account's owner (and CGN staff) may see ${what}. Ask your account's owner.`;
  if (err.status === 503) return `${what[0].toUpperCase()}${what.slice(1)} are not available right now: ${err.problem?.detail ?? err.message}`;
  return err.message;
}

/** A button that copies `text`; where the clipboard is not allowed, it selects `targetId`'s text instead. */
export function CopyButton({ text, label = 'Copy', targetId, testid }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
      announce('Copied to the clipboard', 'ok');
    } catch {
      const el = targetId ? document.getElementById(targetId) : null;
      if (el) {
        const r = document.createRange();
        r.selectNodeContents(el);
        const sel = getSelection();
        sel.removeAllRanges();
        sel.addRange(r);
      }
      announce('The browser did not allow copying: the text is selected, press Ctrl+C', 'info');
    }
  };
  return html`<button type="button" class="secondary" onClick=${copy} data-testid=${testid}>${done ? 'Copied' : label}</button>`;
}

/** A day as YYYY-MM-DD (UTC). */
export const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

/** CGN base units (decimal string, possibly negative: work may run past the deposits) -> "-1.5 CGN"; exact. */
export function tokens(units) {
  if (units === null || units === undefined) return '—';
  const s = String(units);
  return s.startsWith('-') ? `-${fmtTokens(s.slice(1))}` : fmtTokens(s);
}

/**
 * How to draw µUSD amounts (decimal strings) on a chart: in USD when the largest is at least a
 * cent, else in µUSD, so a small account's axis does not read 0, 0, 0.
 */
export function moneyScale(columns) {
  let max = 0;
  for (const col of columns) for (const v of col) max = Math.max(max, Number(v));
  return max >= 10_000 ? { unit: 'USD', of: (m) => Number(m) / 1e6 } : { unit: 'µUSD', of: (m) => Number(m) };
}

/** The same for CGN base units: in CGN from a thousandth of one, else in base units. */
export function tokenScale(columns) {
  let max = 0n;
  for (const col of columns) for (const v of col) if (BigInt(v) > max) max = BigInt(v);
  return max >= 10n ** 15n ? { unit: 'CGN', of: (u) => Number(BigInt(u) / 10n ** 12n) / 1e6 } : { unit: 'base units', of: (u) => Number(u) };
}
