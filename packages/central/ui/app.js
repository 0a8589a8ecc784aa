// The web app: a hash router, the navigation (operator sections for staff roles, account sections
// for everyone), the sign-in gate and the aria-live status bar. Pages are plain modules exporting
// `routes` (hash path -> component) and `nav` (links).
import { render } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html, onAnnounce, announce } from './lib.js';
import { getSession, onSession, signOut, isStaff, request, setSession } from './api.js';
import { SignIn } from './pages/signin.js';
import * as ops from './pages/ops/index.js';
import * as account from './pages/account/index.js';

const routes = { ...ops.routes, ...account.routes };

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, q = ''] = raw.split('?');
  return { path, query: Object.fromEntries(new URLSearchParams(q)) };
}

function useHash() {
  const [loc, setLoc] = useState(parseHash());
  useEffect(() => {
    const f = () => setLoc(parseHash());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return loc;
}

function useSession() {
  const [s, setS] = useState(getSession());
  useEffect(() => onSession(setS), []);
  return s;
}

/** The page a user lands on: the operator overview for staff, else the first account page. */
function home(session) {
  if (isStaff(session) && ops.nav.length > 0) return ops.nav[0].href;
  return account.nav[0]?.href ?? '#/welcome';
}

function StatusBar() {
  const [msg, setMsg] = useState(null);
  useEffect(() => onAnnounce(setMsg), []);
  return html`<div class=${`statusbar ${msg ? `status-${msg.kind}` : ''}`} role="status" aria-live="polite" aria-atomic="true" data-testid="status">${msg?.message ?? ''}</div>`;
}

/** Links a role may follow: an entry's `roles`, when given, lists the roles that see it. */
const visible = (links, session) => links.filter((l) => l.roles === undefined || l.roles.includes(session.user.role));

function Nav({ session, path }) {
  const link = (l) => html`<li><a href=${l.href} aria-current=${`#${path}` === l.href || `#${path}`.startsWith(`${l.href}/`) ? 'page' : undefined}>${l.label}</a></li>`;
  return html`<nav aria-label="Main">
    ${isStaff(session) && ops.nav.length > 0
      ? html`<h2 class="nav-h">Operations</h2><ul data-testid="nav-ops">${visible(ops.nav, session).map(link)}</ul>`
      : null}
    ${account.nav.length > 0 ? html`<h2 class="nav-h">Account</h2><ul data-testid="nav-account">${visible(account.nav, session).map(link)}</ul>` : null}
  </nav>`;
}

function Welcome({ session }) {
  return html`<section><h1>Welcome, ${session.user.login}</h1><p>You are signed in with the role <strong>${session.user.role}</strong>.</p></section>`;
}

function NotFound({ path }) {
  return html`<section><h1>Not found</h1><p>There is no page <code>${path}</code>. Pick one from the menu.</p></section>`;
}

function App() {
  const session = useSession();
  const { path, query } = useHash();

  // Refresh who we are once per load (role changes and disabled users take effect at once).
  useEffect(() => {
    if (session === null) return;
    request('GET', '/v1/me').then((me) => setSession({ ...getSession(), user: me.user, me })).catch(() => {});
  }, [session?.token]);

  useEffect(() => {
    if (session !== null && (path === '/' || path === '/signin')) location.hash = home(session);
  }, [session?.token, path]);

  // A new page moves the keyboard focus to it (screen readers then read its heading), not left on
  // the link. As it renders (a layout effect), not after the next frame: a field the user (or a
  // test) clicked into on the new page must not lose the focus to it a moment later.
  const first = useRef(true);
  useLayoutEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById('main')?.focus();
  }, [path]);

  if (session === null) return html`<${SignIn} /><${StatusBar} />`;

  const staffOnly = path.startsWith('/ops/') && !isStaff(session);
  const Page = staffOnly ? null : path === '/welcome' ? Welcome : routes[path];
  return html`<div class="layout">
    <header class="top">
      <a class="brand" href=${home(session)}>CGN central</a>
      <span class="who" data-testid="who">${session.user.login} · ${session.user.role}</span>
      <button type="button" class="secondary" onClick=${() => signOut().then(() => announce('Signed out'))}>Sign out</button>
    </header>
    <${Nav} session=${session} path=${path} />
    <main id="main" tabindex="-1">
      ${staffOnly
        ? html`<section><h1>Staff only</h1><p>The operator pages are for the administrator, operator and monitor roles.</p></section>`
        : Page ? html`<${Page} session=${session} query=${query} path=${path} />` : html`<${NotFound} path=${path} />`}
    </main>
    <${StatusBar} />
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
