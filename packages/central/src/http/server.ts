/**
 * Central's HTTP API (Fastify). Every request passes, in order: the per-IP rate limit, bearer
 * authentication, the route's role check, the per-principal rate limit, the route's extra
 * limiter (login/token guessing), then body size bound, JSON Schema validation and the handler.
 * Errors are `application/problem+json`; 429s carry `Retry-After`.
 *
 * Sessions: `POST /v1/auth/login` returns an opaque bearer token (`cgs_` + 256 random bits,
 * stored as SHA-256, 12 h lifetime). Opaque tokens rather than JWTs so that logout, password
 * change, role change and disabling an account take effect at once (every request reads the
 * user). JWTs are for DApps (OAuth2 client credentials), which nodes verify offline.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { CentralError } from '../errors.js';
import { CentralService, type Actor } from '../service.js';
import { RateLimiter, type RateLimit } from '@cgn/protocol';
import { buildRoutes, type RouteDef } from './routes.js';
import { openApiDocument } from './openapi.js';
import { BillingReports, type LedgerSource } from '../billing.js';
import { installCentralMetrics } from './metrics.js';
import { PACKAGE_CONTENT_TYPES, type PackageDownloadLimits } from '../packages/package-routes.js';
import { installUi, type UiOptions } from './ui.js';
import { accountPageRoutes, AccountPages, ledgerOf, type AccountPagesOptions } from '../account-pages/index.js';
import { opsRoutes } from '../ops/routes.js';
import type { OpsCollector } from '../ops/collector.js';

export interface HttpOptions {
  /** Default body bound, bytes. Default 64 KiB. */
  bodyLimit?: number;
  /** Serve HTTPS with this key and certificate (PEM). Default: plain HTTP (behind a TLS proxy). */
  https?: { key: string | Buffer; cert: string | Buffer };
  /** Trust X-Forwarded-For (only behind a proxy you run). Default false. */
  trustProxy?: boolean | string | string[];
  rateLimits?: { perIp?: RateLimit; perPrincipal?: RateLimit; auth?: RateLimit; packageDownloads?: Partial<PackageDownloadLimits> };
  logger?: Logger;
  /** Status of the central-node links, shown on /v1/status. */
  linkStatus?: () => unknown;
  /** The ledger usage, invoices and earnings are read from; without it those routes answer 503. */
  ledger?: LedgerSource;
  version?: string;
  /** A bearer token `GET /metrics` requires. Default: none (metrics hold no account data). */
  metricsToken?: string;
  /** The web app at /ui/ (operator dashboard, account pages); false: not served. Default: served. */
  ui?: UiOptions | false;
  /** The account pages' top-up facts (the deployment's contracts file, the chain's RPC URL). */
  accountPages?: AccountPagesOptions;
  /** The operator dashboard's data: the node collector (null: none) and a block explorer's tx URL (`{tx}`). */
  ops?: { collector: OpsCollector | null; explorerTxUrl?: string };
}

export const RATE_LIMIT_DEFAULTS = {
  perIp: { burst: 200, perSecond: 50 },
  perPrincipal: { burst: 100, perSecond: 20 },
  /** Login and token requests per IP: guessing protection on top of the per-user lockout. */
  auth: { burst: 20, perSecond: 0.5 },
} as const satisfies Record<string, RateLimit>;

function problem(reply: FastifyReply, status: number, reason: string, title: string, detail: string, extra: Record<string, unknown> = {}): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'application/problem+json; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(JSON.stringify({ type: `urn:cgn:problem:${reason}`, title, status, detail, code: reason, ...extra }));
}

function sendError(reply: FastifyReply, err: unknown, log: Logger | undefined): FastifyReply {
  if (err instanceof CentralError) {
    if (err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
    if (err.httpStatus === 401) void reply.header('www-authenticate', 'Bearer realm="cgn"');
    const details = err.details === undefined ? {} : { details: err.details };
    return problem(reply, err.httpStatus, err.reason, err.title, err.message, details);
  }
  const e = err as { validation?: { instancePath: string; message?: string; params?: Record<string, unknown> }[]; validationContext?: string; code?: string; statusCode?: number; message?: string };
  if (Array.isArray(e.validation)) {
    const where = e.validationContext ?? 'body';
    const reasons = e.validation.map((v) => {
      const path = `${where}${v.instancePath.replace(/\//g, '.')}`;
      const extra = v.params?.['additionalProperty'] !== undefined ? ` (${String(v.params['additionalProperty'])})` : v.params?.['allowedValues'] ? ` (${(v.params['allowedValues'] as unknown[]).join(', ')})` : '';
      return `${path} ${v.message ?? 'is invalid'}${extra}`;
    });
    return problem(reply, 400, 'bad_request', 'Bad request', reasons.join('; '), { reasons });
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return problem(reply, 413, 'payload_too_large', 'Payload too large', 'the request body is larger than this endpoint accepts');
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return problem(reply, 415, 'unsupported_media_type', 'Unsupported media type', 'send application/json');
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return problem(reply, e.statusCode, 'bad_request', 'Bad request', e.message ?? 'bad request');
  }
  log?.error({ err }, 'unhandled error');
  return problem(reply, 500, 'internal', 'Internal error', 'something went wrong at central; it has been logged');
}

export interface CentralHttp {
  app: FastifyInstance;
  routes: RouteDef[];
}

export async function buildHttpServer(svc: CentralService, options: HttpOptions = {}): Promise<CentralHttp> {
  // (The https variant has another server type; the routes do not care.)
  const app = Fastify({
    ...(options.https ? { https: { key: options.https.key, cert: options.https.cert, minVersion: 'TLSv1.2' as const } } : {}),
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    trustProxy: options.trustProxy ?? false,
    logger: false,
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  }) as unknown as FastifyInstance;
  const limits = { ...RATE_LIMIT_DEFAULTS, ...options.rateLimits };
  const perIp = new RateLimiter(limits.perIp, svc.clock);
  const perPrincipal = new RateLimiter(limits.perPrincipal, svc.clock);
  const authLimiter = new RateLimiter(limits.auth, svc.clock);
  const log = options.logger;

  // RFC 6749 wants the token endpoint to take form bodies.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  // DService package uploads: the handler reads the stream itself, bounded (packages/package-store.ts).
  app.addContentTypeParser(PACKAGE_CONTENT_TYPES, (_req, payload, done) => done(null, payload));

  let doc: Record<string, unknown> | null = null;
  const routes: RouteDef[] = [
    ...buildRoutes(svc, { openapi: () => (doc ??= openApiDocument(routes, { version: options.version ?? '0.1.0' })), ...(options.linkStatus ? { linkStatus: options.linkStatus } : {}), billing: new BillingReports(svc, options.ledger ?? null), ...(options.rateLimits?.packageDownloads !== undefined ? { packageDownloads: options.rateLimits.packageDownloads } : {}) }),
    ...opsRoutes(svc, {
      collector: options.ops?.collector ?? null, ledger: options.ledger ?? null,
      ...(options.linkStatus ? { linkStatus: options.linkStatus } : {}), ...(options.ops?.explorerTxUrl !== undefined ? { explorerTxUrl: options.ops.explorerTxUrl } : {}),
    }),
    ...accountPageRoutes(new AccountPages(svc, ledgerOf(options.ledger ?? null), options.accountPages)),
  ];

  // A request refused before its body was read (no credentials, rate limited, no route) closes
  // the connection after the answer: a stranger's 50 MiB body is not read to the end for a 401.
  const closeIfUnread = (req: FastifyRequest, reply: FastifyReply): void => {
    if (!req.raw.complete) void reply.header('connection', 'close');
  };
  app.setErrorHandler((err, req, reply) => {
    closeIfUnread(req, reply);
    return sendError(reply, err, log);
  });
  app.setNotFoundHandler((req, reply) => {
    closeIfUnread(req, reply);
    return problem(reply, 404, 'not_found', 'Not found', `no route for ${req.method} ${req.url.slice(0, 200)}; the API is described at /openapi.json`);
  });

  if (options.ui !== false) installUi(app, options.ui ?? {});
  installCentralMetrics(app, svc, { ...(options.linkStatus ? { linkStatus: options.linkStatus } : {}), ...(options.metricsToken !== undefined ? { token: options.metricsToken } : {}) });

  const actors = new WeakMap<FastifyRequest, Actor | null>();

  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.url,
      ...(r.bodyLimit === undefined ? {} : { bodyLimit: r.bodyLimit }),
      schema: {
        ...(r.body ? { body: r.body } : {}),
        ...(r.params ? { params: r.params } : {}),
        ...(r.query ? { querystring: r.query } : {}),
      },
      onRequest: async (req, reply) => {
        const ip = req.ip;
        const a = perIp.take(`ip:${ip}`);
        if (!a.ok) throw new CentralError('rate_limited', 'too many requests from this address', { retryAfterS: a.retryAfterS });
        if (r.limiter === 'auth') {
          const b = authLimiter.take(`auth:${ip}`);
          if (!b.ok) throw new CentralError('rate_limited', 'too many login or token requests from this address', { retryAfterS: b.retryAfterS });
        }
        let actor: Actor | null = null;
        if (r.auth !== 'public') {
          const h = req.headers.authorization;
          const m = typeof h === 'string' ? /^Bearer\s+(\S{1,4096})$/i.exec(h) : null;
          if (m === null) throw new CentralError('unauthorized', 'send "Authorization: Bearer <session token>" (POST /v1/auth/login)');
          actor = await svc.authenticate(m[1]!);
          if (actor === null) throw new CentralError('unauthorized', 'unknown, expired or revoked credentials');
          if (r.auth === 'session' && actor.kind !== 'session') throw new CentralError('forbidden', 'API keys and access tokens cannot use this endpoint; log in as a user');
          if (actor.kind === 'session' && r.roles !== undefined && !r.roles.includes(actor.user.role)) {
            await svc.audit({ type: 'access_denied', actor: actor.user.id, accountId: actor.user.accountId, ip, outcome: 'denied', details: { route: `${r.method} ${r.url}`, role: actor.user.role } });
            throw new CentralError('forbidden', `role ${actor.user.role} may not ${r.method} ${r.url}`);
          }
          const pid = actor.kind === 'session' ? actor.user.id : actor.kind === 'key' ? actor.key.id : actor.keyId;
          const c = perPrincipal.take(`p:${pid}`);
          if (!c.ok) throw new CentralError('rate_limited', 'too many requests for these credentials', { retryAfterS: c.retryAfterS });
        }
        actors.set(req, actor);
        void reply.header('cache-control', 'no-store');
      },
      handler: async (req, reply) => {
        const result = await r.handler({
          actor: actors.get(req) ?? null,
          params: (req.params ?? {}) as Record<string, string>,
          query: (req.query ?? {}) as Record<string, string>,
          body: req.body,
          ctx: { ip: req.ip },
          reply,
        });
        if (r.raw) return reply;
        const status = r.status ?? 200;
        if (status === 204) return reply.code(204).send();
        return reply.code(status).send(result);
      },
    });
  }
  return { app, routes };
}
