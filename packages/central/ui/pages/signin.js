import { useState } from 'preact/hooks';
import { html, announce } from '../lib.js';
import { signIn } from '../api.js';
import { Field } from '../components/Field.js';
import { Notice } from '../components/Notice.js';

/**
 * Sign in with a central account: login and password, then the TOTP code (or a recovery code)
 * when central answers that this user has a second factor.
 */
export function SignIn({ onDone }) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [useRecovery, setUseRecovery] = useState(false);
  const [needCode, setNeedCode] = useState(false);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      const second = needCode && code ? (useRecovery ? { recoveryCode: code.trim() } : { totp: code.trim() }) : {};
      const me = await signIn({ login: login.trim(), password, ...second });
      announce(`Signed in as ${me.user.login}`, 'ok');
      onDone?.(me);
    } catch (err) {
      if (err.code === 'mfa_required') {
        setNeedCode(true);
        setError('');
        announce('This account has a second factor: enter the code from your authenticator app.');
      } else {
        setError(err.message);
      }
    } finally {
      setBusy(false);
    }
  };

  return html`<main class="signin" aria-labelledby="signin-title">
    <form onSubmit=${submit} class="card" novalidate>
      <h1 id="signin-title">Sign in to CGN central</h1>
      <${Field} label="Login" name="login" value=${login} onInput=${setLogin} autocomplete="username" required autofocus />
      <${Field} label="Password" name="password" type="password" value=${password} onInput=${setPassword} autocomplete="current-password" required />
      ${needCode
        ? html`<${Field}
              label=${useRecovery ? 'Recovery code' : 'Authenticator code (TOTP)'}
              name="code" value=${code} onInput=${setCode} autocomplete="one-time-code"
              inputmode=${useRecovery ? 'text' : 'numeric'} required autofocus
              hint=${useRecovery ? 'One of the codes you saved when you enrolled; each works once.' : 'The 6-digit code your authenticator app shows now.'} />
            <button type="button" class="link" onClick=${() => setUseRecovery(!useRecovery)}>
              ${useRecovery ? 'Use an authenticator code instead' : 'Use a recovery code instead'}
            </button>`
        : null}
      <${Notice} kind="error">${error}<//>
      <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`;
}
