/**
 * Every route x every role over real HTTP. The expectations are this file's own table (not the
 * server's), and the table must name exactly the operations of the served OpenAPI document, so a
 * new route without an expectation fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { SqliteLedgerStore } from '@cgn/ledger';
import { startTestCentral, call, TEST_ADMIN, type TestCentral } from '../testing.js';

type Who = 'anonymous' | 'administrator' | 'operator' | 'monitor' | 'owner' | 'member';
const WHO: Who[] = ['anonymous', 'administrator', 'operator', 'monitor', 'owner', 'member'];
const SESSIONS: Who[] = ['administrator', 'operator', 'monitor', 'owner', 'member'];
const ALL: Who[] = WHO;
const STAFF: Who[] = ['administrator', 'operator', 'monitor'];

interface World {
  c: TestCentral;
  sys: string;
  acme: string;
  pw: Record<Who, string>;
  login: Record<Who, string>;
  clientKey: { id: string; key: string };
  approved: { name: string; version: string };
  nodeId: string;
  /** A miner of acme (registered by its owner). */
  minerId: string;
  memberToken(): Promise<string>;
  as(who: Who): Promise<{ call: TestCentral['admin']['call'] }>;
}

interface Case {
  method: string;
  path: string;
  allowed: Who[];
  /** Statuses that count as "allowed" (default: any 2xx). */
  ok?: number[];
  body?: (w: World, who: Who) => unknown;
  /** Path parameters made fresh for this call (by someone allowed to make them). */
  prepare?: (w: World, who: Who) => Promise<Record<string, string>>;
  headers?: Record<string, string>;
  after?: (w: World, who: Who, status: number) => void;
}

const uniq = () => randomBytes(4).toString('hex');
const hex64 = () => randomBytes(32).toString('hex');

const CASES: Case[] = [
  { method: 'GET', path: '/healthz', allowed: ALL },
  { method: 'GET', path: '/openapi.json', allowed: ALL },
  { method: 'GET', path: '/.well-known/jwks.json', allowed: ALL },
  {
    method: 'POST', path: '/oauth/token', allowed: ALL,
    body: (w) => ({ grant_type: 'client_credentials', client_id: w.clientKey.id, client_secret: w.clientKey.key }),
  },
  { method: 'POST', path: '/v1/auth/login', allowed: ALL, body: (w) => ({ login: w.login.member, password: w.pw.member }) },
  { method: 'POST', path: '/v1/select/miner', allowed: ALL, body: () => ({ offers: ['echo'] }) },
  { method: 'POST', path: '/v1/auth/logout', allowed: SESSIONS },
  { method: 'GET', path: '/v1/me', allowed: SESSIONS },
  {
    method: 'PUT', path: '/v1/me/password', allowed: SESSIONS,
    body: (w, who) => ({ currentPassword: w.pw[who], newPassword: `Next-${uniq()}!Pw` }),
    after: () => undefined, // handled in the runner (remembers the new password)
  },
  { method: 'POST', path: '/v1/me/totp', allowed: SESSIONS },
  // A wrong code: allowed roles get 400 (past the role check), others 401/403.
  { method: 'POST', path: '/v1/me/totp/confirm', allowed: SESSIONS, ok: [400], body: () => ({ code: '000000' }) },
  { method: 'GET', path: '/v1/status', allowed: STAFF },
  { method: 'GET', path: '/v1/audit', allowed: ['administrator', 'operator'] },
  { method: 'GET', path: '/v1/accounts', allowed: STAFF },
  {
    method: 'POST', path: '/v1/accounts', allowed: ['administrator'],
    body: () => ({ name: `co-${uniq()}`, kinds: ['enterprise'], owner: { login: `own-${uniq()}`, password: 'Own3r-Passw0rd!' } }),
  },
  { method: 'GET', path: '/v1/accounts/{account}', allowed: [...STAFF, 'owner', 'member'], prepare: async (w) => ({ account: w.acme }) },
  { method: 'PATCH', path: '/v1/accounts/{account}', allowed: ['administrator'], prepare: async (w) => ({ account: w.acme }), body: () => ({ allowedRegions: null }) },
  {
    method: 'PUT', path: '/v1/accounts/{account}/payout-address', allowed: ['administrator', 'owner'], prepare: async (w) => ({ account: w.acme }),
    body: () => ({ address: `0x${'ab'.repeat(20)}` }),
  },
  { method: 'GET', path: '/v1/accounts/{account}/users', allowed: ['administrator', 'operator', 'owner'], prepare: async (w) => ({ account: w.acme }) },
  {
    method: 'POST', path: '/v1/accounts/{account}/users', allowed: ['administrator', 'owner'], prepare: async (w) => ({ account: w.acme }),
    body: () => ({ login: `eu-${uniq()}`, password: 'EndUs3r-Passw0rd!' }),
  },
  {
    method: 'PUT', path: '/v1/users/{user}/role', allowed: ['administrator'],
    prepare: async (w) => {
      const r = await (await w.as('administrator')).call('POST', `/v1/accounts/${w.sys}/users`, { login: `staff-${uniq()}`, password: 'Staff-Passw0rd!', role: 'monitor' });
      return { user: r.body.id };
    },
    body: () => ({ role: 'operator' }),
  },
  // Billing (read from the ledger): staff and the account owner; not the account's other users.
  { method: 'GET', path: '/v1/accounts/{account}/usage', allowed: [...STAFF, 'owner'], prepare: async (w) => ({ account: w.acme }) },
  { method: 'GET', path: '/v1/accounts/{account}/invoices', allowed: [...STAFF, 'owner'], prepare: async (w) => ({ account: w.acme }) },
  { method: 'GET', path: '/v1/accounts/{account}/invoices/{cycle}', allowed: [...STAFF, 'owner'], prepare: async (w) => ({ account: w.acme, cycle: '1' }) },
  { method: 'GET', path: '/v1/miners/{miner}/earnings', allowed: [...STAFF, 'owner'], prepare: async (w) => ({ miner: w.minerId }) },
  // The account pages (account-pages/): staff and the account owner, like usage and invoices.
  { method: 'GET', path: '/v1/accounts/{account}/usage/series', allowed: [...STAFF, 'owner'], prepare: async (w) => ({ account: w.acme }) },
  { method: 'GET', path: '/v1/accounts/{account}/usage/end-users', allowed: [...STAFF, 'owner'], prepare: async (w) => ({ account: w.acme }) },
  { method: 'GET', path: '/v1/accounts/{account}/balance', allowed: [...STAFF, 'owner'], prepare: async (w) => ({ account: w.acme }) },
  { method: 'GET', path: '/v1/accounts/{account}/developer', allowed: [...STAFF, 'owner'], prepare: async (w) => ({ account: w.acme }) },
  { method: 'GET', path: '/v1/accounts/{account}/keys', allowed: ['administrator', 'operator', 'owner', 'member'], prepare: async (w) => ({ account: w.acme }) },
  { method: 'POST', path: '/v1/accounts/{account}/keys', allowed: ['owner', 'member'], prepare: async (w) => ({ account: w.acme }), body: () => ({ name: `k-${uniq()}` }) },
  {
    method: 'DELETE', path: '/v1/accounts/{account}/keys/{key}', allowed: ['administrator', 'owner', 'member'],
    prepare: async (w) => {
      const r = await call(w.c.url, await w.memberToken(), 'POST', `/v1/accounts/${w.acme}/keys`, { name: `m-${uniq()}` });
      return { account: w.acme, key: r.body.id };
    },
  },
  { method: 'GET', path: '/v1/dservices', allowed: SESSIONS },
  {
    // What an account publishes and operates is its owner's decision, not any member's.
    method: 'POST', path: '/v1/dservices', allowed: ['administrator', 'owner'],
    body: (w) => ({ name: 'matrix-svc', version: `1.0.${uniq()}`, digest: `sha256:${hex64()}`, developer: w.acme }),
  },
  { method: 'GET', path: '/v1/dservices/{name}/{version}', allowed: SESSIONS, prepare: async (w) => ({ ...w.approved }) },
  {
    method: 'PUT', path: '/v1/dservices/{name}/{version}/approval', allowed: ['administrator'],
    prepare: async (w) => {
      const v = `2.0.${uniq()}`;
      const r = await (await w.as('administrator')).call('POST', '/v1/dservices', { name: 'matrix-svc', version: v, digest: `sha256:${hex64()}`, developer: w.acme });
      expect(r.status).toBe(201);
      return { name: 'matrix-svc', version: v };
    },
    body: () => ({ state: 'approved' }),
  },
  { method: 'GET', path: '/v1/nodes', allowed: STAFF },
  {
    method: 'POST', path: '/v1/nodes', allowed: ['administrator', 'operator'],
    body: (w) => nodeBody(`n-${uniq()}`, w.sys),
  },
  { method: 'PATCH', path: '/v1/nodes/{node}', allowed: ['administrator', 'operator'], prepare: async (w) => ({ node: w.nodeId }), body: () => ({ health: 'up' }) },
  {
    method: 'DELETE', path: '/v1/nodes/{node}', allowed: ['administrator'],
    prepare: async (w) => {
      const id = `d-${uniq()}`;
      expect((await (await w.as('administrator')).call('POST', '/v1/nodes', nodeBody(id, w.sys))).status).toBe(201);
      return { node: id };
    },
  },
  { method: 'GET', path: '/v1/miners', allowed: SESSIONS },
  { method: 'POST', path: '/v1/miners', allowed: ['owner'], body: () => ({ publicKey: hex64(), name: `rig-${uniq()}` }) },
  {
    method: 'DELETE', path: '/v1/miners/{miner}', allowed: ['administrator', 'owner'],
    prepare: async (w) => {
      const pk = hex64();
      const r = await (await w.as('owner')).call('POST', '/v1/miners', { publicKey: pk, name: 'to-revoke' });
      expect(r.status).toBe(201);
      return { miner: pk };
    },
  },
  { method: 'PUT', path: '/v1/miners/{miner}/tier', allowed: ['administrator', 'operator'], prepare: async (w) => ({ miner: w.minerId }), body: () => ({ tier: 'open' }) },
  {
    method: 'PUT', path: '/v1/miners/{miner}/attestation-key', allowed: ['administrator', 'owner'], prepare: async (w) => ({ miner: w.minerId }),
    body: () => ({ attestationKey: null }),
  },
  { method: 'GET', path: '/v1/attestation/runtimes', allowed: STAFF },
  { method: 'POST', path: '/v1/attestation/runtimes', allowed: ['administrator'], body: () => ({ digest: hex64(), note: 'test runtime' }) },
  {
    method: 'DELETE', path: '/v1/attestation/runtimes/{digest}', allowed: ['administrator'],
    prepare: async (w) => {
      const digest = hex64();
      expect((await (await w.as('administrator')).call('POST', '/v1/attestation/runtimes', { digest, note: 'to remove' })).status).toBe(201);
      return { digest };
    },
  },
  // DService packages: the developer's owner (or an administrator) uploads (400 here: no archive
  // sent); anyone downloads an approved version's package (404 here: none uploaded).
  { method: 'PUT', path: '/v1/dservices/{name}/{version}/package', allowed: ['administrator', 'owner'], ok: [400], prepare: async (w) => ({ name: w.approved.name, version: w.approved.version }), body: () => ({}) },
  { method: 'GET', path: '/v1/packages/{digest}', allowed: ALL, ok: [404], prepare: async () => ({ digest: '0'.repeat(64) }) },
  { method: 'POST', path: '/v1/select', allowed: SESSIONS, body: (w) => ({ dservices: [w.approved.name], lat: 52.5, lon: 13.4 }) },
  // The operator dashboard's data: staff only, the monitor role included (all of it is read-only).
  { method: 'GET', path: '/v1/ops/overview', allowed: STAFF },
  { method: 'GET', path: '/v1/ops/miners', allowed: STAFF },
  { method: 'GET', path: '/v1/ops/series', allowed: STAFF },
  { method: 'GET', path: '/v1/ops/alerts', allowed: STAFF },
  { method: 'GET', path: '/v1/ops/revenue', allowed: STAFF },
  { method: 'GET', path: '/v1/ops/cycles', allowed: STAFF },
];

function nodeBody(id: string, operatorAccount: string) {
  return {
    id, operatorAccount, region: 'eu-central', lat: 50.1, lon: 8.7,
    urls: { work: 'http://127.0.0.1:1/v1/d/', miner: 'ws://127.0.0.1:1', status: 'http://127.0.0.1:1/v1/status', central: 'wss://127.0.0.1:1' },
  };
}

describe('access matrix: every route x every role over HTTP', () => {
  let w: World;
  const ledger = new SqliteLedgerStore({ path: ':memory:' });

  beforeAll(async () => {
    ledger.closeCycle(); // cycle 1: closed and sealed (empty)
    const c = await startTestCentral({ ledger });
    const me = await c.admin.call('GET', '/v1/me');
    const sys = me.body.account.id as string;
    const pw = {} as Record<Who, string>;
    const login = {} as Record<Who, string>;
    pw.administrator = TEST_ADMIN.password;
    login.administrator = TEST_ADMIN.login;
    for (const role of ['operator', 'monitor'] as const) {
      login[role] = `${role}-1`;
      pw[role] = 'Staff-Passw0rd!';
      expect((await c.admin.call('POST', `/v1/accounts/${sys}/users`, { login: login[role], password: pw[role], role })).status).toBe(201);
    }
    login.owner = 'acme-owner';
    pw.owner = 'Acme-Own3r-Pw!';
    const acc = await c.admin.call('POST', '/v1/accounts', { name: 'acme', kinds: ['enterprise', 'developer', 'miner'], owner: { login: login.owner, password: pw.owner } });
    expect(acc.status).toBe(201);
    const acme = acc.body.account.id as string;
    const owner = await c.login(login.owner, pw.owner);
    login.member = 'acme-member';
    pw.member = 'Acme-Memb3r-Pw!';
    expect((await owner.call('POST', `/v1/accounts/${acme}/users`, { login: login.member, password: pw.member })).status).toBe(201);
    const k = await owner.call('POST', `/v1/accounts/${acme}/keys`, { name: 'client', scopes: ['work', 'select', 'token'] });
    expect(k.status).toBe(201);
    const d = await owner.call('POST', '/v1/dservices', { name: 'echo', version: '1.0.0', digest: `sha256:${'a'.repeat(64)}` });
    expect(d.status).toBe(201);
    expect((await c.admin.call('PUT', '/v1/dservices/echo/1.0.0/approval', { state: 'approved' })).status).toBe(200);
    expect((await c.admin.call('POST', '/v1/nodes', nodeBody('node-a', sys))).status).toBe(201);
    const minerId = hex64();
    expect((await owner.call('POST', '/v1/miners', { publicKey: minerId, name: 'earner' })).status).toBe(201);
    w = {
      c, sys, acme, pw, login, clientKey: { id: k.body.id, key: k.body.key }, approved: { name: 'echo', version: '1.0.0' }, nodeId: 'node-a', minerId,
      memberToken: async () => (await c.login(login.member, pw.member)).token,
      as: (who) => c.login(login[who], pw[who]),
    };
  });
  afterAll(async () => {
    await w?.c.stop();
    ledger.close();
  });

  it('the table covers exactly the operations of /openapi.json', async () => {
    const doc = (await call(w.c.url, null, 'GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    const served = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort();
    const table = CASES.map((c) => `${c.method} ${c.path}`).sort();
    expect(table).toEqual(served);
  });

  for (const c of CASES) {
    it(`${c.method} ${c.path}`, async () => {
      const results: string[] = [];
      const expected: string[] = [];
      for (const who of WHO) {
        const params = c.prepare ? await c.prepare(w, who) : {};
        const path = c.path.replace(/\{(\w+)\}/g, (_m, k: string) => encodeURIComponent(params[k]!));
        const token = who === 'anonymous' ? null : (await w.c.login(w.login[who], w.pw[who])).token;
        const body = c.body?.(w, who);
        const r = await call(w.c.url, token, c.method, path, body, c.headers);
        const allowed = c.allowed.includes(who);
        const okStatus = c.ok ? c.ok.includes(r.status) : r.status >= 200 && r.status < 300;
        const denyStatus = who === 'anonymous' ? 401 : 403;
        results.push(`${who}:${okStatus ? 'allowed' : r.status === denyStatus ? 'denied' : `unexpected ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`}`);
        expected.push(`${who}:${allowed ? 'allowed' : 'denied'}`);
        if (r.status >= 400) expect(r.headers.get('content-type')).toContain('application/problem+json');
        if (c.path === '/v1/me/password' && okStatus) w.pw[who] = (body as { newPassword: string }).newPassword;
      }
      expect(results).toEqual(expected);
    });
  }

  it('denials are in the audit log', async () => {
    const r = await (await w.as('administrator')).call('GET', '/v1/audit?type=access_denied&limit=5');
    expect(r.status).toBe(200);
    expect(r.body.events.length).toBeGreaterThan(0);
    expect(r.body.events[0].outcome).toBe('denied');
  });
});
