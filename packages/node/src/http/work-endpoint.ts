/**
 * The work endpoint: `METHOD /v1/d/{dservice}/{path}` from DApps. Authenticates the API key,
 * finds the DService, reads the body within its limit, hands the unit to the broker, records the
 * microtransaction (committed before the response leaves) and answers with the DService's
 * status, headers and body plus `cgn-work-id` and `Server-Timing`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { CgnError, TIERS, type Tier } from '@cgn/protocol';
import type { Broker } from '../broker/broker.js';
import type { WorkOutcome } from '../broker/work-unit.js';
import { mayRunWork, type ApiKeyVerifier, type Principal } from '../auth/api-keys.js';
import type { RateLimiter } from '@cgn/protocol';
import type { DServiceRegistry } from '../registry.js';
import type { MeteringSink } from '../metering.js';
import type { Logger } from '../log.js';
import { sendProblem, toCgnError } from './problem.js';
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.js';

export interface WorkEndpointDeps {
  nodeId: string;
  broker: Broker;
  registry: DServiceRegistry;
  keys: ApiKeyVerifier;
  meter: MeteringSink;
  log: Logger;
  defaultTier: Tier;
  /** Seconds a refused DApp should wait (Retry-After on 503). */
  retryAfterS: number;
  isDraining: () => boolean;
  /** Per API key and per client IP; 429 with Retry-After past them. */
  limits: { perKey: RateLimiter; perIp: RateLimiter } | null;
}

export interface WorkCounters {
  requests: number;
  ok: number;
  problems: number;
  unauthorized: number;
  rateLimited: number;
  tooLarge: number;
  clientGone: number;
}

const PREFIX = '/v1/d/';

/** Unique work ids without a syscall per request: a random boot prefix and a counter. */
function workIdFactory(): () => string {
  const boot = randomBytes(6).toString('hex');
  let n = 0;
  return () => `w_${boot}_${(++n).toString(36)}`;
}

function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (h === undefined || h.length < 8 || h.slice(0, 7).toLowerCase() !== 'bearer ') return null;
  return h.slice(7).trim();
}

function readBody(req: IncomingMessage, limit: number, declared: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (declared === 0 && req.headers['transfer-encoding'] === undefined) {
      req.resume();
      resolve(Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new CgnError('payload_too_large', `the body exceeds ${limit} bytes`, { details: { limit } }));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

export function createWorkEndpoint(deps: WorkEndpointDeps): {
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  counters: WorkCounters;
} {
  const counters: WorkCounters = { requests: 0, ok: 0, problems: 0, unauthorized: 0, rateLimited: 0, tooLarge: 0, clientGone: 0 };
  const nextId = workIdFactory();
  const { broker, registry, keys, meter, log } = deps;

  function fail(res: ServerResponse, err: CgnError, workId?: string, retryAfterS?: number): void {
    counters.problems++;
    if (err.code === 'unauthorized') counters.unauthorized++;
    if (err.code === 'rate_limited') counters.rateLimited++;
    if (err.code === 'payload_too_large') counters.tooLarge++;
    const extras: Parameters<typeof sendProblem>[2] = {};
    if (workId !== undefined) extras.workId = workId;
    if (err.httpStatus === 503 || err.httpStatus === 429) extras.retryAfterS = retryAfterS ?? deps.retryAfterS;
    if (err.code === 'unauthorized') extras.headers = { 'www-authenticate': 'Bearer realm="cgn"' };
    if (err.code === 'payload_too_large') extras.headers = { connection: 'close' };
    sendProblem(res, err, extras);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    counters.requests++;
    const url = req.url ?? '/';
    const slash = url.indexOf('/', PREFIX.length);
    const q = url.indexOf('?', PREFIX.length);
    const nameEnd = slash < 0 ? (q < 0 ? url.length : q) : q >= 0 && q < slash ? q : slash;
    const name = url.slice(PREFIX.length, nameEnd);
    let path = url.slice(nameEnd);
    if (path.length === 0 || path[0] === '?') path = '/' + path;

    if (deps.isDraining()) return fail(res, new CgnError('draining', 'this node is shutting down; send the request to another node', { retryable: true }));

    if (deps.limits !== null) {
      const r = deps.limits.perIp.take(req.socket.remoteAddress ?? '?');
      if (!r.ok) return fail(res, new CgnError('rate_limited', 'too many requests from this address; slow down', { retryable: true }), undefined, r.retryAfterS);
    }
    const key = bearer(req);
    if (key === null) return fail(res, new CgnError('unauthorized', 'missing API key: send Authorization: Bearer <key>'));
    const known = keys.verify(key);
    if (known !== null) return accept(req, res, known, name, path);
    if (keys.lookup === undefined) return fail(res, new CgnError('unauthorized', 'the API key is unknown or revoked'));
    keys.lookup(key).then(
      (r) => {
        if (r.principal !== null) return accept(req, res, r.principal, name, path);
        if (r.from === 'unavailable') {
          return fail(res, new CgnError('dservice_unavailable', 'the key cannot be checked right now (central unreachable); try again shortly', { retryable: true }));
        }
        fail(res, new CgnError('unauthorized', 'the API key is unknown or revoked'));
      },
      (err: unknown) => fail(res, toCgnError(err)),
    );
  }

  function accept(req: IncomingMessage, res: ServerResponse, principal: Principal, name: string, path: string): void {
    if (deps.limits !== null) {
      const r = deps.limits.perKey.take(principal.keyId);
      if (!r.ok) return fail(res, new CgnError('rate_limited', 'too many requests with this API key; slow down', { retryable: true }), undefined, r.retryAfterS);
    }
    if (!mayRunWork(principal, name)) {
      return fail(res, new CgnError('forbidden', `this API key may not send work to ${name.slice(0, 64)} (scopes: ${(principal.scopes ?? []).join(', ')})`));
    }
    const descriptor = registry.get(name);
    if (descriptor === undefined) return fail(res, new CgnError('unknown_dservice', `no DService named "${name.slice(0, 64)}" on this node`));

    const tierHeader = req.headers['cgn-tier'];
    const tier = (tierHeader ?? deps.defaultTier) as Tier;
    if (!TIERS.includes(tier)) return fail(res, new CgnError('bad_request', `cgn-tier must be one of ${TIERS.join(', ')}`));

    let timeoutMs = descriptor.timeouts.requestMs;
    const deadlineHeader = req.headers['cgn-deadline-ms'];
    if (deadlineHeader !== undefined) {
      const d = Number(deadlineHeader);
      if (!Number.isInteger(d) || d <= 0) return fail(res, new CgnError('bad_request', 'cgn-deadline-ms must be a positive integer (milliseconds)'));
      timeoutMs = Math.min(d, timeoutMs);
    }

    const declared = Number(req.headers['content-length'] ?? 0);
    if (!(declared >= 0)) return fail(res, new CgnError('bad_request', 'content-length is not a number'));
    if (declared > descriptor.maxBodyBytes) {
      return fail(res, new CgnError('payload_too_large', `the body (${declared} bytes) exceeds ${descriptor.maxBodyBytes} bytes for ${name}`, { details: { limit: descriptor.maxBodyBytes } }));
    }

    const id = nextId();
    const receivedAt = Date.now();
    readBody(req, descriptor.maxBodyBytes, declared).then(
      (body) => {
        let answered = false;
        const onDone = (outcome: WorkOutcome): void => {
          answered = true;
          if (outcome.kind === 'error') return fail(res, outcome.error, id);
          const { result, minerId } = outcome;
          const unit = work;
          meter
            .record({
              workId: id,
              account: principal.account,
              endUser: principal.endUser ?? (typeof req.headers['cgn-end-user'] === 'string' ? req.headers['cgn-end-user'].slice(0, 128) : null),
              dservice: name,
              tier,
              miner: minerId,
              node: deps.nodeId,
              receivedAt,
              queueUs: Math.round(unit.queuedMs * 1000),
              execUs: result.metering.execUs,
              cpuUs: result.metering.cpuUs,
              bytesIn: body.length,
              bytesOut: result.body.length,
              status: result.status,
              resultHash: Buffer.from(result.resultHash).toString('hex'),
              attempts: unit.attempts,
            })
            .then(
              () => {
                if (res.destroyed) {
                  counters.clientGone++;
                  return;
                }
                const headers: string[] = [];
                forwardResponseHeaders(result.headers, headers);
                headers.push(
                  'cgn-work-id', id,
                  'server-timing', `queue;dur=${unit.queuedMs.toFixed(2)}, exec;dur=${(result.metering.execUs / 1000).toFixed(2)}, total;dur=${(Date.now() - receivedAt).toFixed(0)}`,
                  'content-length', String(result.body.length),
                );
                counters.ok++;
                res.writeHead(result.status, headers);
                res.end(result.body);
              },
              (err: unknown) => {
                log.error({ err, work: id }, 'ledger write failed; withholding the result');
                fail(res, new CgnError('internal', 'the work could not be metered; it was not charged. Retry the request.', { retryable: true }), id);
              },
            );
        };
        let work: ReturnType<Broker['submit']>;
        try {
          work = broker.submit(
            { id, account: principal.account, dservice: name, tier, method: req.method ?? 'GET', path, headers: forwardRequestHeaders(req.rawHeaders), body, timeoutMs },
            onDone,
          );
        } catch (err) {
          return fail(res, toCgnError(err), id);
        }
        res.on('close', () => {
          if (!answered && !res.writableFinished) {
            counters.clientGone++;
            broker.cancel(id);
          }
        });
      },
      (err: unknown) => fail(res, toCgnError(err), id),
    );
  }

  return { handle, counters };
}
