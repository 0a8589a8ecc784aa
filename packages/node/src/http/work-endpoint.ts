/**
 * The work endpoint: `METHOD /v1/d/{dservice}/{path}` from DApps. Authenticates the API key,
 * finds the DService, reads the body within its limit, hands the unit to the broker, records the
 * microtransaction (committed before the response leaves) and answers with the DService's
 * status, headers and body plus `cgn-work-id` and `Server-Timing`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { CgnError, EMPTY_BODY_BYTES, TIERS, bodyOf, type Body, type Tier } from '@cgn/protocol';
import type { Broker } from '../broker/broker.js';
import type { WorkOutcome } from '../broker/work-unit.js';
import { mayRunWork, type ApiKeyVerifier, type Principal } from '../auth/api-keys.js';
import type { RateLimiter } from '@cgn/protocol';
import type { DServiceRegistry } from '../registry.js';
import type { MeteringSink } from '../metering.js';
import type { NodeBilling } from '../billing.js';
import { idempotencyKeyProblem, requestFingerprint, type IdempotencyTicket, type Reservation, type StoredResponse } from '@cgn/ledger';
import type { Logger } from '../log.js';
import { sendProblem, toCgnError } from './problem.js';
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.js';
import type { BodyPool } from './body-pool.js';

export interface WorkEndpointDeps {
  nodeId: string;
  broker: Broker;
  registry: DServiceRegistry;
  keys: ApiKeyVerifier;
  meter: MeteringSink;
  billing: NodeBilling;
  log: Logger;
  defaultTier: Tier;
  /** Seconds a refused DApp should wait (Retry-After on 503). */
  retryAfterS: number;
  isDraining: () => boolean;
  /** Per API key and per client IP; 429 with Retry-After past them. */
  limits: { perKey: RateLimiter; perIp: RateLimiter } | null;
  /** Reusable memory for large bodies (see body-pool.ts); null: every body in its own buffers. */
  bodyPool: BodyPool | null;
}

export interface WorkCounters {
  requests: number;
  ok: number;
  problems: number;
  unauthorized: number;
  rateLimited: number;
  replayed: number;
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

function pairs(flat: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (h === undefined || h.length < 8 || h.slice(0, 7).toLowerCase() !== 'bearer ') return null;
  return h.slice(7).trim();
}

/** A body read from the DApp, and how to let go of it (gives pooled memory back). */
interface ReadBody {
  body: Body;
  release: () => void;
}

/** Bodies from this size on (or of unknown size) are read into the body pool. */
const POOLED_BODY_BYTES = 16 * 1024;
const NOTHING_TO_RELEASE = (): void => {};

function readBody(req: IncomingMessage, limit: number, declared: number, pool: BodyPool | null): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (declared === 0 && !chunked) {
      req.resume();
      resolve({ body: EMPTY_BODY_BYTES, release: NOTHING_TO_RELEASE });
      return;
    }
    const builder = pool !== null && (chunked || declared >= POOLED_BODY_BYTES) ? pool.begin() : null;
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (err: unknown): void => {
      builder?.abort();
      reject(err);
    };
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        fail(new CgnError('payload_too_large', `the body exceeds ${limit} bytes`, { details: { limit } }));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      if (builder !== null) builder.append(c);
      else chunks.push(c);
    });
    req.on('end', () => {
      if (builder === null) return resolve({ body: bodyOf(chunks, size), release: NOTHING_TO_RELEASE });
      const body = builder.finish();
      resolve({ body, release: body.release });
    });
    req.on('error', fail);
    req.on('close', () => {
      if (!req.complete) fail(new CgnError('bad_request', 'the connection closed before the whole body arrived'));
    });
  });
}

export function createWorkEndpoint(deps: WorkEndpointDeps): {
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  counters: WorkCounters;
} {
  const counters: WorkCounters = { requests: 0, ok: 0, problems: 0, unauthorized: 0, rateLimited: 0, replayed: 0, tooLarge: 0, clientGone: 0 };
  const nextId = workIdFactory();
  const { broker, registry, keys, meter, billing, log } = deps;

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
    const ds = descriptor;

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

    const idemKey = req.headers['idempotency-key'];
    if (typeof idemKey === 'string') {
      const problem = idempotencyKeyProblem(idemKey);
      if (problem !== null) return fail(res, new CgnError('bad_request', problem));
    }

    const id = nextId();
    const receivedAt = Date.now();
    const endUser = principal.endUser ?? (typeof req.headers['cgn-end-user'] === 'string' ? req.headers['cgn-end-user'].slice(0, 128) : null);
    readBody(req, descriptor.maxBodyBytes, declared, deps.bodyPool).then(
      ({ body, release: releaseBody }) => {
        const method = req.method ?? 'GET';
        // Admission: a reservation of the most this unit can cost, in memory. A refusal re-reads
        // the balances once first, so a fresh top-up counts at once.
        let reservation: Reservation | null = null;
        if (billing.guard !== null) {
          const guard = billing.guard;
          const maxPrice = billing.maxPrice(ds, tier, body.length, timeoutMs);
          const first = guard.reserve(principal.account, maxPrice);
          if (!first.ok) {
            guard.refresh().then(
              () => {
                const r = guard.reserve(principal.account, maxPrice);
                if (!r.ok) {
                  releaseBody();
                  return fail(res, new CgnError('payment_required', `the prepaid balance of account ${principal.account} does not cover this request (available ${r.available}, needed up to ${r.needed} tokens); top it up`, { details: { available: String(r.available), needed: String(r.needed) } }), id);
                }
                reservation = r.reservation;
                admitted();
              },
              (err: unknown) => {
                releaseBody();
                fail(res, toCgnError(err), id);
              },
            );
            return;
          }
          reservation = first.reservation;
        }
        admitted();

        function admitted(): void {
          if (typeof idemKey !== 'string') return run(null);
          billing.idempotency
            .begin({ account: principal.account, key: idemKey, workId: id, fingerprint: requestFingerprint({ method, path, dservice: name, tier, endUser, body }) })
            .then(
              (d) => {
                if (d.kind === 'proceed') return run(d.ticket);
                releaseBody();
                if (reservation !== null) billing.guard!.release(reservation);
                if (d.kind === 'replay') return replay(res, d.workId, d.response);
                const code = d.httpStatus === 422 ? 'idempotency_mismatch' : 'conflict';
                fail(res, new CgnError(code, d.message, { details: { reason: d.reason, workId: d.workId } }), id, d.reason === 'in_progress' ? 1 : undefined);
              },
              (err: unknown) => {
                releaseBody();
                if (reservation !== null) billing.guard!.release(reservation);
                fail(res, toCgnError(err), id);
              },
            );
        }

        function run(ticket: IdempotencyTicket | null): void {
          let answered = false;
          const giveBack = (): void => {
            if (reservation !== null) billing.guard!.release(reservation);
            if (ticket !== null) void billing.idempotency.abandon(ticket);
          };
          const onDone = (outcome: WorkOutcome): void => {
            answered = true;
            // The broker is done with the body (a write still carrying it holds it on its own).
            releaseBody();
            if (outcome.kind === 'error') {
              giveBack();
              return fail(res, outcome.error, id);
            }
            const { result, minerId } = outcome;
            const unit = work;
            const pricing = billing.pricing(ds, tier, { cpuUs: result.metering.cpuUs, bytesIn: body.length, bytesOut: result.body.length });
            meter
              .record({
                workId: id,
                account: principal.account,
                endUser,
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
                pricing,
              })
              .then(
                async () => {
                  if (reservation !== null) billing.guard!.settle(reservation, pricing.priceMicros);
                  const headers: string[] = [];
                  forwardResponseHeaders(result.headers, headers);
                  headers.push(
                    'cgn-work-id', id,
                    'cgn-cost', `${pricing.priceMicros} micro`,
                    'server-timing', `queue;dur=${unit.queuedMs.toFixed(2)}, exec;dur=${(result.metering.execUs / 1000).toFixed(2)}, total;dur=${(Date.now() - receivedAt).toFixed(0)}`,
                  );
                  // The answer is stored before it leaves, so a retry with the same key gets it.
                  if (ticket !== null) await billing.idempotency.complete(ticket, { status: result.status, headers: pairs(headers), body: Buffer.from(result.body) });
                  if (res.destroyed) {
                    counters.clientGone++;
                    return;
                  }
                  headers.push('content-length', String(result.body.length));
                  counters.ok++;
                  res.writeHead(result.status, headers);
                  res.end(result.body);
                },
                (err: unknown) => {
                  giveBack();
                  log.error({ err, work: id }, 'ledger write failed; withholding the result');
                  fail(res, new CgnError('internal', 'the work could not be metered; it was not charged. Retry the request.', { retryable: true }), id);
                },
              )
              .catch((err: unknown) => {
                log.error({ err, work: id }, 'could not store the idempotent response');
                fail(res, toCgnError(err), id);
              });
          };
          let work: ReturnType<Broker['submit']>;
          try {
            work = broker.submit({ id, account: principal.account, dservice: name, tier, method, path, headers: forwardRequestHeaders(req.rawHeaders), body, timeoutMs }, onDone);
          } catch (err) {
            releaseBody();
            giveBack();
            return fail(res, toCgnError(err), id);
          }
          res.on('close', () => {
            if (!answered && !res.writableFinished) {
              counters.clientGone++;
              broker.cancel(id);
            }
          });
        }
      },
      (err: unknown) => fail(res, toCgnError(err), id),
    );
  }

  /** A repeated request with the same Idempotency-Key: the stored answer, not run nor charged again. */
  function replay(res: ServerResponse, workId: string, stored: StoredResponse): void {
    counters.replayed++;
    const headers: string[] = [];
    for (const [k, v] of stored.headers) if (k !== 'content-length') headers.push(k, v);
    headers.push('idempotent-replayed', 'true', 'content-length', String(stored.body.length));
    res.writeHead(stored.status, headers);
    res.end(stored.body);
    void workId;
  }

  return { handle, counters };
}
