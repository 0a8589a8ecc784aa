// Two-factor sign-in (TOTP): start enrolment, scan the QR code (or type the secret), confirm with
// a current code, and keep the recovery codes shown once.
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html, announce } from '../../lib.js';
import { api, getSession, setSession } from '../../api.js';
import { Field } from '../../components/Field.js';
import { Notice } from '../../components/Notice.js';
import { QrCode } from './qr.js';
import { CopyButton } from './common.js';

async function refreshMe() {
  const me = await api.get('/v1/me');
  setSession({ ...getSession(), user: me.user, me });
  return me;
}

export function SecurityPage() {
  const me = getSession()?.me;
  const [enrolment, setEnrolment] = useState(null);
  const [code, setCode] = useState('');
  const [codes, setCodes] = useState(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const state = codes ? 'on' : me?.totp ?? 'off';
  // The button that started enrolment (or confirmed it) is gone: the focus goes to what replaced it,
  // as it renders (a layout effect), so a code typed into the field at once keeps the focus.
  const step = useRef(null);
  useLayoutEffect(() => step.current?.focus(), [enrolment !== null, codes !== null]);

  const start = async () => {
    setBusy(true);
    setError('');
    try {
      setEnrolment(await api.post('/v1/me/totp'));
      announce('Scan the QR code with your authenticator app, then enter the code it shows.');
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  const confirm = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const r = await api.post('/v1/me/totp/confirm', { code: code.trim() });
      setCodes(r.recoveryCodes);
      setEnrolment(null);
      await refreshMe();
      announce('Two-factor sign-in is on. Save your recovery codes now.', 'ok');
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };

  return html`<section aria-labelledby="sec-h">
    <h1 id="sec-h">Sign-in security</h1>
    <p>Two-factor sign-in: <strong data-testid="totp-state">${state === 'on' ? 'on' : 'off'}</strong>${state === 'on' && !codes ? html` (${me?.recoveryCodesLeft ?? 0} recovery codes left)` : null}.</p>
    ${codes
      ? html`<div class="card wide" data-testid="recovery-codes">
          <h2 tabindex="-1" ref=${step}>Your recovery codes</h2>
          <${Notice} kind="warn">Save these now: they are shown only this once. Each one signs you in once if you lose your authenticator.<//>
          <pre id="recovery-codes" class="mono codes">${codes.join('\n')}</pre>
          <${CopyButton} text=${codes.join('\n')} targetId="recovery-codes" label="Copy the codes" />
        </div>`
      : null}
    ${state !== 'on' && enrolment === null
      ? html`<p>With two-factor sign-in, your password alone no longer signs in: you also enter a code from an authenticator app (any TOTP app).</p>
          <button type="button" onClick=${start} disabled=${busy} data-testid="totp-start">Set up two-factor sign-in</button>`
      : null}
    ${enrolment
      ? html`<form class="card wide" onSubmit=${confirm} data-testid="totp-enrol">
          <h2 tabindex="-1" ref=${step}>1. Add CGN to your authenticator</h2>
          <${QrCode} text=${enrolment.uri} label="QR code of the authenticator link (the same link is written below)" testid="totp-qr" />
          <p>Can't scan? Add it by hand with this secret:</p>
          <p><code id="totp-secret" data-testid="totp-secret">${enrolment.secret}</code> <${CopyButton} text=${enrolment.secret} targetId="totp-secret" label="Copy the secret" /></p>
          <details><summary>The full link</summary><p><code id="totp-uri" class="wrap" data-testid="totp-uri">${enrolment.uri}</code></p></details>
          <h2>2. Confirm with a code</h2>
          <${Field} label="Code from your authenticator" name="totp-code" value=${code} onInput=${setCode} inputmode="numeric" autocomplete="one-time-code" required
            hint="The 6 digits it shows now; they change every 30 seconds." />
          <${Notice} kind="error">${error}<//>
          <button type="submit" disabled=${busy || code.trim() === ''}>Turn on two-factor sign-in</button>
        </form>`
      : html`<${Notice} kind="error">${error}<//>`}
  </section>`;
}
