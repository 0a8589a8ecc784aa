/**
 * The account pages' routes (central's web app, #/account/...), in the route table's shape
 * (http/routes.ts registers them with the rest): usage series, end users, balance and top-up, the
 * developer view. Sessions only; staff and the account's owner (access.ts).
 */
import type { RouteDef } from '../http/routes.js';
import { obj, str, params, DSERVICE_NAME } from '../http/schemas.js';
import type { Role } from '../store/store.js';
import { CentralError } from '../errors.js';
import type { Actor } from '../service.js';
import type { AccountPages } from './pages.js';

const ALL_ROLES: readonly Role[] = ['administrator', 'operator', 'user', 'monitor'];
const DAY = str(10, { pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' });
const WHOLE = str(9, { pattern: '^[0-9]{1,9}$' });
const NOTE = 'Amounts are decimal strings: priceMicros in µUSD, tokens in CGN base units (10^18 per CGN). Staff and the account owner. 503 when central has no ledger.';

const need = (a: Actor | null): Actor => {
  if (a === null) throw new CentralError('unauthorized', 'authentication required');
  return a;
};

export function accountPageRoutes(pages: AccountPages): RouteDef[] {
  return [
    {
      method: 'GET', url: '/v1/accounts/:account/usage/series',
      summary: `Usage over time for charts: one series per DService or end user (by; the top N by price, the rest as "(others)"), per UTC day (from..to inclusive, default the last 30 days, at most 92) or per billing cycle (bucket=cycle, the last cycles=N, default 12). ${NOTE}`,
      tag: 'billing', auth: 'session', roles: ALL_ROLES, params: params('account'),
      query: obj({ by: { type: 'string', enum: ['dservice', 'end-user'] }, bucket: { type: 'string', enum: ['day', 'cycle'] }, from: DAY, to: DAY, cycles: WHOLE, top: WHOLE }),
      handler: async ({ actor, params: p, query, ctx }) => pages.usageSeries(need(actor), p['account']!, query, ctx),
    },
    {
      method: 'GET', url: '/v1/accounts/:account/usage/end-users',
      summary: `The account's end users with their usage, most expensive first, a page at a time (offset, limit up to 200; from/to days inclusive, cycle, dservice). ${NOTE}`,
      tag: 'billing', auth: 'session', roles: ALL_ROLES, params: params('account'),
      query: obj({ from: DAY, to: DAY, cycle: WHOLE, offset: WHOLE, limit: WHOLE, dservice: DSERVICE_NAME }),
      handler: async ({ actor, params: p, query, ctx }) => pages.endUsers(need(actor), p['account']!, query, ctx),
    },
    {
      method: 'GET', url: '/v1/accounts/:account/balance',
      summary: `The account's prepaid balance (deposited, spent, available), linked wallet addresses, recent deposits and withdrawals, and how to top up (the escrow contract and the commands). ${NOTE}`,
      tag: 'billing', auth: 'session', roles: ALL_ROLES, params: params('account'),
      handler: async ({ actor, params: p, ctx }) => pages.balance(need(actor), p['account']!, ctx),
    },
    {
      method: 'GET', url: '/v1/accounts/:account/developer',
      summary: `A DService developer's view: its DServices (every version) with approval state, rejection reason and prices; the developer share it earned per closed cycle; each DService's revenue per cycle. Without a ledger the DServices are listed and "unavailable" says why the rest is missing. ${NOTE}`,
      tag: 'dservices', auth: 'session', roles: ALL_ROLES, params: params('account'),
      handler: async ({ actor, params: p, ctx }) => pages.developer(need(actor), p['account']!, ctx),
    },
  ];
}
