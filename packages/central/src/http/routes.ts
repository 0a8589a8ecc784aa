/**
 * Central's HTTP routes as one table: method, path, who may call it, schemas and handler. The
 * server registers them, enforces `auth` and `roles` before the body is even read, and the
 * OpenAPI document is generated from the same table, so the three cannot drift apart.
 *
 * `auth`:
 * * `public`: anyone (still rate-limited per IP);
 * * `session`: a logged-in user (bearer session token from `POST /v1/auth/login`);
 * * `principal`: a session, an API key or an OAuth2 access token.
 * `roles` (sessions only): the roles allowed; the handler then checks ownership (own account,
 * own key). API keys and tokens only ever reach `principal` routes, and those check scopes.
 */
import type { FastifyReply } from 'fastify';
import type { Role } from '../store/store.js';
import type { CentralService, Actor, Ctx } from '../service.js';
import { CentralError } from '../errors.js';
import { BillingReports } from '../billing.js';
import { S, params, passwordNote, type Schema } from './schemas.js';
import { packageRoutes, type PackageDownloadLimits } from '../packages/package-routes.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HandlerInput {
  actor: Actor | null;
  params: Record<string, string>;
  query: Record<string, string>;
  body: any;
  ctx: Ctx;
  reply: FastifyReply;
}

export interface RouteDef {
  method: Method;
  url: string;
  summary: string;
  tag: string;
  auth: 'public' | 'session' | 'principal';
  roles?: readonly Role[];
  body?: Schema;
  params?: Schema;
  query?: Schema;
  /** Body size bound for this route, bytes (default: the server's). */
  bodyLimit?: number;
  /** Extra per-IP bucket for credential-guessing endpoints. */
  limiter?: 'auth';
  status?: number;
  /** Set when the handler writes the reply itself. */
  raw?: boolean;
  handler(i: HandlerInput): Promise<unknown>;
}

const ALL_ROLES: readonly Role[] = ['administrator', 'operator', 'user', 'monitor'];
const STAFF: readonly Role[] = ['administrator', 'operator', 'monitor'];
const need = (a: Actor | null): Actor => {
  if (a === null) throw new CentralError('unauthorized', 'authentication required');
  return a;
};

export function buildRoutes(svc: CentralService, extra: { openapi: () => unknown; linkStatus?: () => unknown; billing?: BillingReports; packageDownloads?: Partial<PackageDownloadLimits> }): RouteDef[] {
  const billing = extra.billing ?? new BillingReports(svc, null);
  const BILLING_NOTE = 'Amounts are decimal strings: priceMicros in µUSD (0.000001 USD), tokens in CGN base units (10^18 per CGN). 503 when central has no ledger.';
  return [
    // ------------------------------------------------------------ public
    {
      method: 'GET', url: '/healthz', summary: 'Liveness', tag: 'meta', auth: 'public',
      handler: async () => ({ ok: true }),
    },
    {
      method: 'GET', url: '/openapi.json', summary: 'This API, as an OpenAPI 3.1 document', tag: 'meta', auth: 'public',
      handler: async () => extra.openapi(),
    },
    {
      method: 'GET', url: '/.well-known/jwks.json', summary: 'Public keys that sign access tokens (JWKS)', tag: 'oauth', auth: 'public',
      handler: async ({ reply }) => {
        void reply.header('cache-control', 'public, max-age=300');
        return svc.tokens.jwks();
      },
    },
    {
      method: 'POST', url: '/oauth/token',
      summary: 'OAuth2 client-credentials grant: client_id = API key id, client_secret = the API key (needs the token scope). Form or JSON body, or HTTP Basic.',
      tag: 'oauth', auth: 'public', body: S.token, bodyLimit: 4096, limiter: 'auth', raw: true,
      handler: async ({ body, ctx, reply, query }) => {
        void query;
        const b = body as { grant_type: string; client_id?: string; client_secret?: string; scope?: string };
        const basic = (reply.request.headers.authorization ?? '').match(/^Basic\s+([A-Za-z0-9+/=]+)$/i);
        let clientId = b.client_id;
        let clientSecret = b.client_secret;
        if (basic) {
          const [id, secret] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
          clientId = decodeURIComponent(id ?? '');
          clientSecret = decodeURIComponent(secret ?? '');
        }
        void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
        if (b.grant_type !== 'client_credentials') {
          return reply.code(400).send({ error: 'unsupported_grant_type', error_description: 'only client_credentials is supported' });
        }
        if (clientId === undefined || clientSecret === undefined) {
          return reply.code(401).header('www-authenticate', 'Basic realm="cgn"').send({ error: 'invalid_client', error_description: 'client_id and client_secret are required' });
        }
        try {
          const t = await svc.issueToken({ clientId, clientSecret, ...(b.scope === undefined ? {} : { scope: b.scope }) }, ctx);
          return reply.code(200).send(t);
        } catch (err) {
          if (err instanceof CentralError && typeof err.details?.['oauthError'] === 'string') {
            const code = err.details['oauthError'];
            return reply.code(code === 'invalid_client' ? 401 : 400).send({ error: code, error_description: err.message });
          }
          throw err;
        }
      },
    },
    {
      method: 'POST', url: '/v1/auth/login', summary: 'Log in with a password (and TOTP code when enrolled); returns a bearer session token', tag: 'auth',
      auth: 'public', body: S.login, bodyLimit: 4096, limiter: 'auth',
      handler: async ({ body, ctx }) => svc.login(body, ctx),
    },
    {
      method: 'POST', url: '/v1/select/miner', summary: 'Nodes a miner should join, biased to nodes short of capacity for what it offers', tag: 'selection',
      auth: 'public', body: S.selectMiner,
      handler: async ({ body, ctx }) => svc.selectForMiner(body, ctx),
    },
    // ------------------------------------------------------------ the logged-in user
    {
      method: 'POST', url: '/v1/auth/logout', summary: 'End this session', tag: 'auth', auth: 'session', roles: ALL_ROLES, status: 204,
      handler: async ({ actor, ctx }) => svc.logout(need(actor), ctx),
    },
    {
      method: 'GET', url: '/v1/me', summary: 'The logged-in user and account', tag: 'auth', auth: 'session', roles: ALL_ROLES,
      handler: async ({ actor }) => svc.me(need(actor)),
    },
    {
      method: 'PUT', url: '/v1/me/password', summary: `Change password (ends all sessions). ${passwordNote}`, tag: 'auth', auth: 'session', roles: ALL_ROLES,
      body: S.changePassword, bodyLimit: 4096, status: 204,
      handler: async ({ actor, body, ctx }) => svc.changePassword(need(actor), body, ctx),
    },
    {
      method: 'POST', url: '/v1/me/totp', summary: 'Start TOTP enrolment: returns the secret and an otpauth:// provisioning URI', tag: 'auth', auth: 'session', roles: ALL_ROLES,
      handler: async ({ actor, ctx }) => svc.beginTotp(need(actor), ctx),
    },
    {
      method: 'POST', url: '/v1/me/totp/confirm', summary: 'Finish TOTP enrolment with a current code; returns one-time recovery codes (shown once)', tag: 'auth',
      auth: 'session', roles: ALL_ROLES, body: S.totpConfirm, bodyLimit: 1024,
      handler: async ({ actor, body, ctx }) => svc.confirmTotp(need(actor), body.code, ctx),
    },
    // ------------------------------------------------------------ status and audit
    {
      method: 'GET', url: '/v1/status', summary: 'Counts of accounts, users, DServices and nodes by state, and the node links', tag: 'status',
      auth: 'session', roles: STAFF,
      handler: async () => ({ ...(await svc.status()), links: extra.linkStatus?.() ?? [] }),
    },
    {
      method: 'GET', url: '/v1/audit', summary: 'Security events, newest first (query: type, accountId, actor, since, until, before, limit)', tag: 'status',
      auth: 'session', roles: ['administrator', 'operator'], query: S.auditQuery,
      handler: async ({ query }) => {
        const n = (k: string) => (query[k] === undefined ? undefined : Number(query[k]));
        const q: Record<string, unknown> = {};
        for (const k of ['type', 'accountId', 'actor'] as const) if (query[k] !== undefined) q[k] = query[k];
        if (n('since') !== undefined) q['since'] = n('since');
        if (n('until') !== undefined) q['until'] = n('until');
        if (n('before') !== undefined) q['beforeSeq'] = n('before');
        if (n('limit') !== undefined) q['limit'] = n('limit');
        return { events: await svc.queryAudit(q) };
      },
    },
    // ------------------------------------------------------------ accounts and users
    {
      method: 'GET', url: '/v1/accounts', summary: 'All accounts', tag: 'accounts', auth: 'session', roles: STAFF,
      handler: async ({ actor, ctx }) => ({ accounts: await svc.listAccounts(need(actor), ctx) }),
    },
    {
      method: 'POST', url: '/v1/accounts', summary: `Create an account (enterprise, developer, miner operator) with its owner. ${passwordNote}`, tag: 'accounts',
      auth: 'session', roles: ['administrator'], body: S.createAccount, status: 201,
      handler: async ({ actor, body, ctx }) => svc.createAccount(need(actor), body, ctx),
    },
    {
      method: 'GET', url: '/v1/accounts/:account', summary: 'One account (staff, or its own users)', tag: 'accounts', auth: 'session', roles: ALL_ROLES,
      params: params('account'),
      handler: async ({ actor, params: p, ctx }) => svc.getAccount(need(actor), p['account']!, ctx),
    },
    {
      method: 'PATCH', url: '/v1/accounts/:account', summary: "Change kinds, allowed data regions, the account's weight and quotas at the nodes (policy: {weight, maxConcurrent, perSecond, burst}, pushed to every node), or disable an account", tag: 'accounts',
      auth: 'session', roles: ['administrator'], params: params('account'), body: S.updateAccount,
      handler: async ({ actor, params: p, body, ctx }) => svc.updateAccount(need(actor), p['account']!, body, ctx),
    },
    {
      method: 'PUT', url: '/v1/accounts/:account/payout-address',
      summary: "Set (or clear, with null) where the account's earnings are paid: the developer share of its DServices. Nodes register it in their ledgers; credits held for want of an address are paid in the next billing cycle",
      tag: 'accounts', auth: 'session', roles: ['administrator', 'user'], params: params('account'), body: S.payoutAddress,
      handler: async ({ actor, params: p, body, ctx }) => svc.setPayoutAddress(need(actor), p['account']!, body.address, ctx),
    },
    {
      method: 'GET', url: '/v1/accounts/:account/users', summary: 'Users of an account (administrators, operators, the account owner)', tag: 'accounts',
      auth: 'session', roles: ['administrator', 'operator', 'user'], params: params('account'),
      handler: async ({ actor, params: p, ctx }) => ({ users: await svc.listUsers(need(actor), p['account']!, ctx) }),
    },
    {
      method: 'POST', url: '/v1/accounts/:account/users', summary: `Sign up a user in an account (administrators; owners for end users). ${passwordNote}`, tag: 'accounts',
      auth: 'session', roles: ['administrator', 'user'], params: params('account'), body: S.addUser, status: 201,
      handler: async ({ actor, params: p, body, ctx }) => svc.addUser(need(actor), p['account']!, body, ctx),
    },
    {
      method: 'PUT', url: '/v1/users/:user/role', summary: 'Change a user\'s role', tag: 'accounts', auth: 'session', roles: ['administrator'],
      params: params('user'), body: S.setRole,
      handler: async ({ actor, params: p, body, ctx }) => svc.setRole(need(actor), p['user']!, body.role, ctx),
    },
    // ------------------------------------------------------------ usage, invoices, earnings (from the ledger)
    {
      method: 'GET', url: '/v1/accounts/:account/usage',
      summary: `Usage and cost of an account's recorded work, grouped by DService, end user, day or tier (query: by, from, to as YYYY-MM-DD or epoch ms, to exclusive; dservice; cycle), as \`cgn ledger usage\` shows it (staff, the account owner). ${BILLING_NOTE}`,
      tag: 'billing', auth: 'session', roles: ALL_ROLES, params: params('account'), query: S.usageQuery,
      handler: async ({ actor, params: p, query, ctx }) => billing.usage(need(actor), p['account']!, query, ctx),
    },
    {
      method: 'GET', url: '/v1/accounts/:account/invoices',
      summary: `The account's invoice for every closed billing cycle, oldest first (staff, the account owner). ${BILLING_NOTE}`,
      tag: 'billing', auth: 'session', roles: ALL_ROLES, params: params('account'),
      handler: async ({ actor, params: p, ctx }) => billing.invoices(need(actor), p['account']!, ctx),
    },
    {
      method: 'GET', url: '/v1/accounts/:account/invoices/:cycle',
      summary: `The account's invoice for a closed billing cycle (or "latest") with its usage per DService, as \`cgn ledger invoice\` shows it (staff, the account owner). ${BILLING_NOTE}`,
      tag: 'billing', auth: 'session', roles: ALL_ROLES, params: S.invoiceParams,
      handler: async ({ actor, params: p, ctx }) => billing.invoice(need(actor), p['account']!, p['cycle']!, ctx),
    },
    // ------------------------------------------------------------ API keys
    {
      method: 'GET', url: '/v1/accounts/:account/keys', summary: 'API keys of an account (never the keys themselves)', tag: 'keys', auth: 'session',
      roles: ['administrator', 'operator', 'user'], params: params('account'),
      handler: async ({ actor, params: p, ctx }) => ({ keys: await svc.listKeys(need(actor), p['account']!, ctx) }),
    },
    {
      method: 'POST', url: '/v1/accounts/:account/keys', summary: 'Create an API key; the key is in the answer and never shown again', tag: 'keys',
      auth: 'session', roles: ['user'], params: params('account'), body: S.createKey, status: 201,
      handler: async ({ actor, params: p, body, ctx }) => svc.createKey(need(actor), p['account']!, body, ctx),
    },
    {
      method: 'DELETE', url: '/v1/accounts/:account/keys/:key', summary: 'Revoke an API key (nodes stop accepting it within their cache TTL)', tag: 'keys',
      auth: 'session', roles: ['administrator', 'user'], params: params('account', 'key'),
      handler: async ({ actor, params: p, ctx }) => svc.revokeKey(need(actor), p['account']!, p['key']!, ctx),
    },
    // ------------------------------------------------------------ DServices
    {
      method: 'GET', url: '/v1/dservices', summary: 'DService descriptors you may see (approved ones, your own, all for staff)', tag: 'dservices',
      auth: 'session', roles: ALL_ROLES, query: S.dserviceQuery,
      handler: async ({ actor, query }) => ({ dservices: await svc.listDServices(need(actor), query['state'] === undefined ? {} : { state: query['state'] as 'approved' }) }),
    },
    {
      method: 'POST', url: '/v1/dservices', summary: 'Register a DService version (developer accounts); it waits for an administrator\'s approval', tag: 'dservices',
      auth: 'session', roles: ['administrator', 'user'], body: S.registerDService, status: 201,
      handler: async ({ actor, body, ctx }) => svc.registerDService(need(actor), body, ctx),
    },
    {
      method: 'GET', url: '/v1/dservices/:name/:version', summary: 'One DService descriptor', tag: 'dservices', auth: 'session', roles: ALL_ROLES,
      params: params('name', 'version'),
      handler: async ({ actor, params: p }) => svc.getDService(need(actor), p['name']!, p['version']!),
    },
    {
      method: 'PUT', url: '/v1/dservices/:name/:version/approval', summary: 'Approve or reject a DService version', tag: 'dservices', auth: 'session',
      roles: ['administrator'], params: params('name', 'version'), body: S.approval,
      handler: async ({ actor, params: p, body, ctx }) => svc.decideDService(need(actor), p['name']!, p['version']!, body.state, body.reason, ctx),
    },
    ...(svc.packages !== null ? packageRoutes(svc, svc.packages, extra.packageDownloads) : []),
    // ------------------------------------------------------------ node directory
    {
      method: 'GET', url: '/v1/nodes', summary: 'The node directory with health and capacity', tag: 'nodes', auth: 'session', roles: STAFF,
      handler: async ({ actor, ctx }) => ({ nodes: await svc.listNodes(need(actor), ctx) }),
    },
    {
      method: 'POST', url: '/v1/nodes', summary: 'Add a node to the directory (central then dials its central URL)', tag: 'nodes', auth: 'session',
      roles: ['administrator', 'operator'], body: S.registerNode, status: 201,
      handler: async ({ actor, body, ctx }) => svc.registerNode(need(actor), body, ctx),
    },
    {
      method: 'PATCH', url: '/v1/nodes/:node', summary: 'Change a node\'s location, URLs, or set its health/draining by hand', tag: 'nodes', auth: 'session',
      roles: ['administrator', 'operator'], params: params('node'), body: S.updateNode,
      handler: async ({ actor, params: p, body, ctx }) => svc.updateNode(need(actor), p['node']!, body, ctx),
    },
    {
      method: 'DELETE', url: '/v1/nodes/:node', summary: 'Remove a node from the directory', tag: 'nodes', auth: 'session', roles: ['administrator'],
      params: params('node'), status: 204,
      handler: async ({ actor, params: p, ctx }) => svc.deleteNode(need(actor), p['node']!, ctx),
    },
    // ------------------------------------------------------------ miners
    {
      method: 'GET', url: '/v1/miners', summary: 'Registered miners (staff: all; miner operators: their own)', tag: 'miners', auth: 'session', roles: ALL_ROLES,
      handler: async ({ actor, ctx }) => ({ miners: await svc.listMiners(need(actor), ctx) }),
    },
    {
      method: 'POST', url: '/v1/miners', summary: 'Register a miner key, granted the open tier (owners of miner operator accounts); attestationKey: the PEM public key of its TPM attestation key', tag: 'miners', auth: 'session', roles: ['user'],
      body: S.registerMiner, status: 201,
      handler: async ({ actor, body, ctx }) => svc.registerMiner(need(actor), body, ctx),
    },
    {
      method: 'PUT', url: '/v1/miners/:miner/tier', summary: 'Grant a miner the dedicated tier (an operator under contract) or take it back to open (staff)', tag: 'miners', auth: 'session', roles: ['administrator', 'operator'],
      params: params('miner'), body: S.grantTier,
      handler: async ({ actor, params: p, body, ctx }) => svc.grantMinerTier(need(actor), p['miner']!, body.tier, ctx),
    },
    {
      method: 'PUT', url: '/v1/miners/:miner/attestation-key', summary: 'Set (or clear with null) the PEM public key of the miner\'s TPM attestation key (its account\'s owner, administrators)', tag: 'miners', auth: 'session', roles: ['administrator', 'user'],
      params: params('miner'), body: S.attestationKey,
      handler: async ({ actor, params: p, body, ctx }) => svc.setMinerAttestationKey(need(actor), p['miner']!, body.attestationKey, ctx),
    },
    {
      method: 'GET', url: '/v1/attestation/runtimes', summary: 'The attestation allow-list: known-good miner runtime measurements (DServices are allowed by their approved digest)', tag: 'miners', auth: 'session', roles: ['administrator', 'operator', 'monitor'],
      handler: async ({ actor, ctx }) => ({ runtimes: await svc.listRuntimeMeasurements(need(actor), ctx) }),
    },
    {
      method: 'POST', url: '/v1/attestation/runtimes', summary: 'Add a known-good miner runtime measurement (cgn miner measure prints it)', tag: 'miners', auth: 'session', roles: ['administrator'],
      body: S.allowRuntime, status: 201,
      handler: async ({ actor, body, ctx }) => svc.allowRuntime(need(actor), body, ctx),
    },
    {
      method: 'DELETE', url: '/v1/attestation/runtimes/:digest', summary: 'Remove a runtime measurement from the allow-list', tag: 'miners', auth: 'session', roles: ['administrator'],
      params: params('digest'), status: 204,
      handler: async ({ actor, params: p, ctx }) => svc.disallowRuntime(need(actor), p['digest']!, ctx),
    },
    {
      method: 'DELETE', url: '/v1/miners/:miner', summary: 'Revoke a miner key', tag: 'miners', auth: 'session', roles: ['administrator', 'user'],
      params: params('miner'),
      handler: async ({ actor, params: p, ctx }) => svc.revokeMiner(need(actor), p['miner']!, ctx),
    },
    {
      method: 'GET', url: '/v1/miners/:miner/earnings',
      summary: `What a miner earned in every closed billing cycle, with the payout proof of its address, as \`cgn ledger earnings --role miner\` shows it (staff, the owner of the miner's operator account). ${BILLING_NOTE}`,
      tag: 'billing', auth: 'session', roles: ALL_ROLES, params: params('miner'),
      handler: async ({ actor, params: p, ctx }) => billing.minerEarnings(need(actor), p['miner']!, ctx),
    },
    // ------------------------------------------------------------ selection
    {
      method: 'POST', url: '/v1/select', summary: 'Nodes for a DApp: by coordinates or IP (offline GeoIP), for the DServices it needs, within the account\'s data regions',
      tag: 'selection', auth: 'principal', roles: ALL_ROLES, body: S.selectDApp,
      handler: async ({ actor, body, ctx }) => svc.selectForDApp(need(actor), body, ctx),
    },
  ];
}
