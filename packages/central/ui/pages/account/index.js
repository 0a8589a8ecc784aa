// The account and developer pages. `routes`: hash path -> component; `nav`: links shown to every
// signed-in user (app.js imports both).
import { SecurityPage } from './security.js';
import { KeysPage } from './keys.js';
import { UsagePage } from './usage.js';
import { InvoicesPage } from './invoices.js';
import { BalancePage } from './balance.js';
import { DeveloperPage } from './developer.js';

// The pages' own stylesheet, from this origin (the CSP allows 'self' styles, not inline ones).
if (typeof document !== 'undefined' && !document.querySelector('link[data-account-css]')) {
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = new URL('./account.css', import.meta.url).pathname;
  link.dataset.accountCss = '';
  document.head.append(link);
}

export const routes = {
  '/account/usage': UsagePage,
  '/account/invoices': InvoicesPage,
  '/account/balance': BalancePage,
  '/account/keys': KeysPage,
  '/account/security': SecurityPage,
  '/account/developer': DeveloperPage,
};

export const nav = [
  { href: '#/account/usage', label: 'Usage' },
  { href: '#/account/invoices', label: 'Invoices' },
  { href: '#/account/balance', label: 'Balance and deposits' },
  { href: '#/account/keys', label: 'API keys' },
  { href: '#/account/security', label: 'Sign-in security' },
  { href: '#/account/developer', label: 'DServices and earnings' },
];
