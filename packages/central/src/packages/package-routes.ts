/**
 * Central's package routes:
 *
 * * `PUT /v1/dservices/{name}/{version}/package` (the DService's developer: its account's owner,
 *   or an administrator): the gzip'd tar of the package; stored when its digest is the registered
 *   descriptor's, refused otherwise (409), as is an unsafe archive (400) or one over 64 MiB (413).
 *   Nodes hear of it with the approved descriptors (`package: {digest, sizeBytes}`).
 * * `GET /v1/packages/{digest}` (public): the archive of an approved DService version. Approved
 *   packages are not secret (they run on strangers' machines), their content is fixed by the
 *   digest, and nodes fetch them over their own link anyway; a version not approved is 404.
 *   Each archive sent costs central up to 64 MiB of upload for a request of a few bytes, so the
 *   bytes sent are rate-limited per address and in all (429 with Retry-After past them): a
 *   person checking a package gets it, a loop of requests does not amplify into central's uplink.
 */
import type { Readable } from 'node:stream';
import { LIMITS, RateLimiter, type RateLimit } from '@cgn/protocol';
import { CentralError } from '../errors.js';
import type { CentralService } from '../service.js';
import type { RouteDef } from '../http/routes.js';
import { params } from '../http/schemas.js';
import type { PackageStore } from './package-store.js';

export const PACKAGE_CONTENT_TYPES = ['application/gzip', 'application/x-gzip', 'application/octet-stream'];

/** Public package downloads, in MiB sent (a download costs its size, at least a quarter MiB). */
export interface PackageDownloadLimits {
  perIp: RateLimit;
  all: RateLimit;
}

export const PACKAGE_DOWNLOAD_DEFAULTS: PackageDownloadLimits = {
  perIp: { burst: 256, perSecond: 1 },
  all: { burst: 1024, perSecond: 16 },
};

const MIB = 1024 * 1024;

export function packageRoutes(svc: CentralService, packages: PackageStore, limits: Partial<PackageDownloadLimits> = {}): RouteDef[] {
  const l = { ...PACKAGE_DOWNLOAD_DEFAULTS, ...limits };
  const perIp = new RateLimiter(l.perIp, svc.clock, 10_000);
  const all = new RateLimiter(l.all, svc.clock);
  return [
    {
      method: 'PUT', url: '/v1/dservices/:name/:version/package',
      summary: 'Upload the package of a registered DService version (gzip\'d tar, as cgn dservice publish makes it); its digest must be the registered one',
      tag: 'dservices', auth: 'session', roles: ['administrator', 'user'], params: params('name', 'version'), raw: true,
      bodyLimit: LIMITS.maxPackageBytes,
      handler: async ({ actor, params: p, body, ctx, reply }) => {
        if (actor === null || actor.kind !== 'session') throw new CentralError('unauthorized', 'log in as the DService\'s developer');
        const d = await svc.getDService(actor, p['name']!, p['version']!);
        const mayUpload = actor.user.role === 'administrator' || (actor.user.role === 'user' && actor.account.id === d.developer && actor.user.owner);
        if (!mayUpload) {
          await svc.audit({ type: 'access_denied', actor: actor.user.id, accountId: actor.user.accountId, ip: ctx.ip, outcome: 'denied', details: { route: 'PUT package', subject: `${d.name}@${d.version}` } });
          throw new CentralError('forbidden', `only the owner of developer account ${d.developer} (or an administrator) may upload the package of ${d.name}@${d.version}`);
        }
        const declared = Number(reply.request.headers['content-length'] ?? NaN);
        if (Number.isFinite(declared) && declared > LIMITS.maxPackageBytes) {
          throw new CentralError('payload_too_large', `a package archive is at most ${LIMITS.maxPackageBytes} bytes; this one says ${declared} (leave tests, fixtures and build caches out of the package directory)`);
        }
        if (body === null || body === undefined || typeof (body as Readable).pipe !== 'function') {
          throw new CentralError('bad_request', `send the archive as the body with content-type ${PACKAGE_CONTENT_TYPES[0]}`);
        }
        const stored = await packages.put(body as Readable, d.digest);
        await svc.audit({ type: 'dservice_package_uploaded', actor: actor.user.id, accountId: d.developer, subject: `${d.name}@${d.version}`, ip: ctx.ip, details: { digest: d.digest, sizeBytes: stored.sizeBytes } });
        // Nodes fetch the approved descriptors again, now with the package.
        if (d.state === 'approved') svc.emit('dservicesChanged');
        return reply.code(201).header('content-type', 'application/json').send({ name: d.name, version: d.version, state: d.state, ...stored });
      },
    },
    {
      method: 'GET', url: '/v1/packages/:digest', summary: 'The package archive of an approved DService version, by digest', tag: 'dservices',
      auth: 'public', params: params('digest'), raw: true,
      handler: async ({ params: p, reply, ctx }) => {
        const digest = p['digest']!.toLowerCase();
        const approved = (await svc.approvedDServices()).some((d) => d.digest === digest);
        const stored = approved ? packages.get(digest) : null;
        if (stored === null) throw new CentralError('not_found', `no package of an approved DService version has digest ${digest}`);
        const cost = Math.max(0.25, stored.sizeBytes / MIB);
        // (A package larger than a burst costs the whole burst, not a wait that never ends.)
        const mine = perIp.take(`ip:${ctx.ip}`, Math.min(cost, l.perIp.burst));
        if (!mine.ok) {
          throw new CentralError('rate_limited', `package downloads from one address are limited to ${l.perIp.burst} MiB at once and ${l.perIp.perSecond} MiB/s after (nodes get packages over their link, miners from their node)`, { retryAfterS: mine.retryAfterS });
        }
        const any = all.take('all', Math.min(cost, l.all.burst));
        if (!any.ok) throw new CentralError('rate_limited', `central is sending as many package bytes as it allows (${l.all.perSecond} MiB/s over all addresses); try again later`, { retryAfterS: any.retryAfterS });
        return reply
          .code(200)
          .header('content-type', 'application/gzip')
          .header('content-length', stored.sizeBytes)
          .header('cache-control', 'public, max-age=31536000, immutable')
          .header('etag', `"${digest}"`)
          .send(packages.open(digest));
      },
    },
  ];
}
