/**
 * The work endpoint: `METHOD /v1/d/{dservice}/{path}` from DApps. Authenticates the API key,
 * finds the DService, reads the body within its limit, hands the unit to the broker, records the
 * microtransaction (committed before the response leaves) and answers with the DService's
 * status, headers and body plus `cgn-work-id` and `Server-Timing`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { CgnError, EMPTY_BODY_BYTES, PRICE_UNIT_ASCII, TIERS, bodyOf, type Body, type Tier } from '@cgn/protocol';
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
import { forwardRequestHeaders } from './headers.js';
import { answerOf, requestLimitProblem, type Answer } from './edge.js';
import { boundMetering, boundPrice, isGrossOverReport, type MeteringClips } from '../charge-bound.js';
import type { BodyPool } from './body-pool.js';
import type { OverReport } from '../slashing/evidence.js';
import type { QuotaGate } from '../accounts/quotas.js';

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
  /** The slowest body the node waits for (408 below it); null: no bound but the request deadline. */
  bodyRate: BodyRate | null;
  /** Where clipped metering reports are counted per miner. */
  clips: MeteringClips;
  /** A miner's gross over-report, held against it (repeated: quarantined and dropped). */
  minerFault: (minerId: string, reason: string) => void;
  /** An open-tier miner's gross CPU over-report, for slashing evidence (absent: no open-tier slashing). */
  overReported?: (minerId: string, report: OverReport) => void;
  /** Per-account quotas (429 naming the quota past them); null: none. */
  quotas: QuotaGate | null;
  /**
   * Why no connected miner could ever take work of this DService and tier (`explain/diagnose.ts`),
   * asked only when the broker says none can; the request is refused with it at once. Null: an
   * instance is being placed for it (issue 16), and the request waits in the queue within its deadline.
   */
  unservable: (dservice: string, tier: Tier, account: string) => CgnError | null;
  /**
   * The data regions an account's work may run in (the broker's fence); null: anywhere. Absent:
   * every account anywhere.
   */
  regionsOf?: (account: string) => ReadonlySet<string> | null;
  /**
   * Work of this DService and tier was admitted (quotas passed, its price reserved) and no
   * connected miner runs it: placement may start an instance now. Only paid-for work wakes it.
   */
  wantsPlacement?: (dservice: string, tier: Tier, account: string) => void;
  /**
   * Told each answer (metrics): its DService name as asked, tier, status, and for work a miner ran
   * its queue, execution and total seconds (the `Server-Timing` figures). 499: the client left.
   */
  observe?: (dservice: string, tier: string, status: number, timing: { queueS: number; execS: number; totalS: number } | null) => void;
}

export interface WorkCounters {
  requests: number;
  ok: number;
  problems: number;
  unauthorized: number;
  rateLimited: number;
  replayed: number;
  tooLarge: number;
  /** Requests refused because they do not fit in a work frame (414, 431). */
  overLimits: number;
  /** Bodies cut off for arriving too slowly (408). */
  slowBodies: number;
  clientGone: number;
  /** Results a miner sent that the node could not write as an answer (not charged, 502). */
  unwritableResults: number;
  /** Answers withheld because the ledger refused their charge as an overdraft (402). */
  overdraftRefused: number;
  /** Answers recorded (charged) whose client closed its connection during the ledger commit. */
  goneAfterCharge: number;
}

const PREFIX = '/v1/d/';

/** Refusals after which the connection closes (the rest of the request is not worth reading). */
const CLOSE_AFTER = new Set<CgnError['code']>(['payload_too_large', 'uri_too_long', 'headers_too_large', 'request_timeout']);

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

/** The DService name in a work URL (`/v1/d/{name}/...`). */
function dserviceOf(url: string): string {
  const end = url.slice(PREFIX.length).search(/[/?]/);
  return end < 0 ? url.slice(PREFIX.length) : url.slice(PREFIX.length, PREFIX.length + end);
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

/** The slowest body the node waits for: at least `minBytesPerS` in every `windowMs`. */
export interface BodyRate {
  minBytesPerS: number;
  windowMs: number;
}

/**
 * Reads a request body within `limit` bytes. Settles once: a body over the limit is refused at
 * once (the rest is read and dropped while the 413 goes out); a body slower than `rate` is
 * refused with 408; a connection that closes first is a 400 nobody reads.
 */
function readBody(req: IncomingMessage, limit: number, declared: number, pool: BodyPool | null, rate: BodyRate | null): Promise<ReadBody> {
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
    let settled = false;
    let sizeAtWindowStart = 0;
    let timer: ReturnType<typeof setInterval> | null = null;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      if (timer !== null) clearInterval(timer);
      req.removeListener('data', onData);
      return true;
    };
    const fail = (err: CgnError): void => {
      if (!settle()) return;
      builder?.abort();
      // Whatever still arrives is read and dropped, so the answer can go out and the socket close.
      req.resume();
      reject(err);
    };
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) return fail(new CgnError('payload_too_large', `the body exceeds ${limit} bytes`, { details: { limit } }));
      if (builder !== null) builder.append(c);
      else chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (!settle()) return;
      if (builder === null) return resolve({ body: bodyOf(chunks, size), release: NOTHING_TO_RELEASE });
      const body = builder.finish();
      resolve({ body, release: body.release });
    });
    req.on('error', () => fail(new CgnError('bad_request', 'the request body could not be read')));
    req.on('close', () => {
      if (!req.complete) fail(new CgnError('bad_request', 'the connection closed before the whole body arrived'));
    });
    if (rate !== null && rate.minBytesPerS > 0) {
      const need = Math.max(1, Math.floor((rate.minBytesPerS * rate.windowMs) / 1000));
      timer = setInterval(() => {
        if (size - sizeAtWindowStart < need) {
          fail(new CgnError('request_timeout', `the body arrived slower than ${rate.minBytesPerS} bytes per second (${size - sizeAtWindowStart} bytes in ${rate.windowMs} ms); send it faster`, {
            details: { minBytesPerS: rate.minBytesPerS, windowMs: rate.windowMs },
          }));
        }
        sizeAtWindowStart = size;
      }, rate.windowMs);
      timer.unref();
    }
  });
}

export function createWorkEndpoint(deps: WorkEndpointDeps): {
  handle: (req: IncomingMessage, res: ServerResponse) => void;
  counters: WorkCounters;
} {
  const counters: WorkCounters = {
    requests: 0, ok: 0, problems: 0, unauthorized: 0, rateLimited: 0, replayed: 0, tooLarge: 0, overLimits: 0, slowBodies: 0, clientGone: 0, unwritableResults: 0, overdraftRefused: 0, goneAfterCharge: 0,
  };
  const nextId = workIdFactory();
  const { broker, registry, keys, meter, billing, log } = deps;
  const observe = deps.observe;
  /** Labels of an answer written without the request's parsed fields at hand (refusals, replays): the cold path. */
  const observeRefusal = (res: ServerResponse, status: number): void => {
    if (observe === undefined) return;
    const req = res.req;
    const tier = req?.headers['cgn-tier'];
    observe(dserviceOf(req?.url ?? PREFIX), typeof tier === 'string' ? tier : deps.defaultTier, status, null);
  };

  function fail(res: ServerResponse, err: CgnError, workId?: string, retryAfterS?: number): void {
    counters.problems++;
    if (err.code === 'unauthorized') counters.unauthorized++;
    if (err.code === 'rate_limited') counters.rateLimited++;
    if (err.code === 'payload_too_large') counters.tooLarge++;
    if (err.code === 'uri_too_long' || err.code === 'headers_too_large') counters.overLimits++;
    if (err.code === 'request_timeout') counters.slowBodies++;
    observeRefusal(res, err.httpStatus);
    const extras: Parameters<typeof sendProblem>[2] = {};
    if (workId !== undefined) extras.workId = workId;
    if (err.httpStatus === 503 || err.httpStatus === 429) extras.retryAfterS = retryAfterS ?? deps.retryAfterS;
    if (err.code === 'unauthorized') extras.headers = { 'www-authenticate': 'Bearer realm="cgn"' };
    // The body of a refused request may still be on its way: close rather than read it all (a
    // stranger's 50 MiB upload is not read to the end to tell it 401).
    if (CLOSE_AFTER.has(err.code) || res.req?.complete === false) extras.headers = { ...extras.headers, connection: 'close' };
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
    // Nothing connected could ever run it (for this account: in its regions): say why now, not
    // with a 504 at the deadline.
    const regions = deps.regionsOf?.(principal.account) ?? null;
    if (!broker.servable(name, tier, regions)) {
      const refusal = deps.unservable(name, tier, principal.account);
      if (refusal !== null) return fail(res, refusal);
    }

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

    // Everything forwarded must fit in a work frame: refused here, never by the miners.
    const method = req.method ?? 'GET';
    const forwarded = forwardRequestHeaders(req.rawHeaders);
    const overLimit = requestLimitProblem(method, path, forwarded);
    if (overLimit !== null) return fail(res, overLimit);

    const idemKey = req.headers['idempotency-key'];
    if (typeof idemKey === 'string') {
      const problem = idempotencyKeyProblem(idemKey);
      if (problem !== null) return fail(res, new CgnError('bad_request', problem));
    }

    if (deps.quotas !== null) {
      const refused = deps.quotas.take(principal.account);
      if (refused !== null) return fail(res, refused, undefined, refused.details?.['retryAfterS'] as number);
      const quotas = deps.quotas;
      const account = principal.account;
      res.once('close', () => quotas.release(account));
    }

    const id = nextId();
    const receivedAt = Date.now();
    const endUser = principal.endUser ?? (typeof req.headers['cgn-end-user'] === 'string' ? req.headers['cgn-end-user'].slice(0, 128) : null);
    readBody(req, descriptor.maxBodyBytes, declared, deps.bodyPool, deps.bodyRate).then(
      ({ body, release: releaseBody }) => {
        // Idempotency before money: a retry of work already answered gets its stored answer
        // whatever the balance is now; only new work is reserved against the balance.
        let reservation: Reservation | null = null;
        if (typeof idemKey !== 'string') {
          reserve(null);
        } else {
          billing.idempotency
            .begin({ account: principal.account, key: idemKey, workId: id, fingerprint: requestFingerprint({ method, path, dservice: name, tier, endUser, body }) })
            .then(
              (d) => {
                if (d.kind === 'proceed') return reserve(d.ticket);
                releaseBody();
                if (d.kind === 'replay') return replay(res, d.workId, d.response);
                const code = d.httpStatus === 422 ? 'idempotency_mismatch' : 'conflict';
                fail(res, new CgnError(code, d.message, { details: { reason: d.reason, workId: d.workId } }), id, d.reason === 'in_progress' ? 1 : undefined);
              },
              (err: unknown) => {
                releaseBody();
                fail(res, toCgnError(err), id);
              },
            );
        }

        /**
         * Admission: a reservation of the most this unit can cost, in memory. A refusal re-reads
         * the balances once first, so a fresh top-up counts at once. Refused: the idempotency
         * ticket is given up, so the same key may be tried again once the account is topped up.
         */
        function reserve(ticket: IdempotencyTicket | null): void {
          if (billing.guard === null) return run(ticket);
          const guard = billing.guard;
          const maxPrice = billing.maxPrice(ds, tier, body.length, timeoutMs);
          const first = guard.reserve(principal.account, maxPrice);
          if (first.ok) {
            reservation = first.reservation;
            return run(ticket);
          }
          const refuse = (err: CgnError): void => {
            releaseBody();
            if (ticket !== null) void billing.idempotency.abandon(ticket);
            fail(res, err, id);
          };
          guard.refresh().then(
            () => {
              const r = guard.reserve(principal.account, maxPrice);
              if (!r.ok) {
                return refuse(new CgnError('payment_required', `the prepaid balance of account ${principal.account} does not cover this request (available ${r.available}, needed up to ${r.needed} tokens); top it up`, { details: { available: String(r.available), needed: String(r.needed) } }));
              }
              reservation = r.reservation;
              run(ticket);
            },
            (err: unknown) => refuse(toCgnError(err)),
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
            // Checked before anything is charged: what is recorded is what the DApp gets.
            const checked = answerOf(result.status, result.headers, result.body);
            if (checked instanceof CgnError) {
              counters.unwritableResults++;
              giveBack();
              log.warn({ work: id, miner: minerId.slice(0, 16), reason: checked.message }, 'a miner\'s result could not be written; not charged');
              return fail(res, checked, id);
            }
            const answer: Answer = checked;
            if (res.destroyed) {
              // Nobody is left to answer: the work is not charged (as if it were cancelled).
              counters.clientGone++;
              observe?.(name, tier, 499, null);
              giveBack();
              return;
            }
            const unit = work;
            const bytesOut = answer.body.length;
            // What the node can vouch for (charge-bound.ts): CPU within its own measurement, the
            // price within the reservation.
            const metering = boundMetering({ reportedCpuUs: result.metering.cpuUs, nodeExecUs: outcome.nodeExecUs, cpus: ds.resources.cpus });
            if (metering.clipped) {
              deps.clips.record(minerId, result.metering.cpuUs, metering.cpuUs);
              log.warn({ work: id, miner: minerId.slice(0, 16), reportedCpuUs: result.metering.cpuUs, billedCpuUs: metering.cpuUs, nodeExecUs: metering.execUs }, 'miner reported more CPU than the node can vouch for; clipped');
              if (isGrossOverReport(result.metering.cpuUs, metering.cpuUs)) {
                if (tier === 'open') {
                  deps.overReported?.(minerId, {
                    workId: id, dservice: name, cpus: ds.resources.cpus, nodeExecUs: metering.execUs,
                    reportedCpuUs: result.metering.cpuUs, billedCpuUs: metering.cpuUs, at: new Date().toISOString(),
                  });
                }
                deps.minerFault(minerId, `reported ${result.metering.cpuUs} µs of CPU for work the node measured at ${metering.execUs} µs`);
              }
            }
            const pricing = billing.pricing(ds, tier, { cpuUs: metering.cpuUs, bytesIn: body.length, bytesOut });
            pricing.priceMicros = boundPrice(pricing.priceMicros, billing.maxPrice(ds, tier, body.length, timeoutMs));
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
                execUs: metering.execUs,
                cpuUs: metering.cpuUs,
                // Both figures when the report was clipped (record format 3).
                ...(metering.clipped ? { reportedCpuUs: result.metering.cpuUs } : {}),
                bytesIn: body.length,
                bytesOut,
                status: answer.status,
                resultHash: Buffer.from(result.resultHash).toString('hex'),
                attempts: unit.attempts,
                pricing,
              })
              .then(
                () => {
                  if (reservation !== null) billing.guard!.settle(reservation, pricing.priceMicros);
                  const headers = answer.headers;
                  headers.push(
                    'cgn-work-id', id,
                    // Only answers the DService gave are charged (any status); the node's own errors are free.
                    'cgn-cost', `${pricing.priceMicros} ${PRICE_UNIT_ASCII}`,
                    'server-timing', `queue;dur=${unit.queuedMs.toFixed(2)}, exec;dur=${(metering.execUs / 1000).toFixed(2)}, total;dur=${(Date.now() - receivedAt).toFixed(0)}`,
                  );
                  if (ticket === null) return write(headers);
                  // The answer is stored before it leaves, so a retry with the same key gets it. It
                  // is charged already: if it cannot be stored, the DApp still gets it.
                  billing.idempotency.complete(ticket, { status: answer.status, headers: pairs(headers), body: Buffer.from(answer.body) }).then(
                    () => write(headers),
                    (err: unknown) => {
                      log.error({ err, work: id }, 'could not store the idempotent response; answering anyway');
                      write(headers);
                    },
                  );
                },
                (err: unknown) => {
                  giveBack();
                  if (err instanceof CgnError && err.code === 'payment_required') {
                    // The ledger's own check, behind the reservation: never silent, never an overdraft.
                    counters.overdraftRefused++;
                    log.warn({ work: id, account: principal.account, details: err.details }, 'the ledger refused a charge past the account\'s funds; withholding the result');
                    return fail(res, new CgnError('payment_required', `the prepaid balance of account ${principal.account} does not cover this request; it was not charged. Top it up.`, { details: err.details ?? {} }), id);
                  }
                  log.error({ err, work: id }, 'ledger write failed; withholding the result');
                  fail(res, new CgnError('internal', 'the work could not be metered; it was not charged. Retry the request.', { retryable: true }), id);
                },
              );

            function write(headers: string[]): void {
              if (res.destroyed) {
                // The client's connection closed during the ledger commit: charged, not delivered
                // (with an Idempotency-Key a retry gets the stored answer). Counted apart.
                counters.clientGone++;
                counters.goneAfterCharge++;
                observe?.(name, tier, 499, null);
                log.warn({ work: id, account: principal.account }, 'the client left while its answer was being recorded; it was charged but not delivered');
                return;
              }
              if (answer.hasBody) headers.push('content-length', String(answer.body.length));
              counters.ok++;
              observe?.(name, tier, answer.status, { queueS: unit.queuedMs / 1000, execS: metering.execUs / 1e6, totalS: (Date.now() - receivedAt) / 1000 });
              try {
                res.writeHead(answer.status, headers);
                res.end(answer.body);
              } catch (err) {
                // The frame validator admits only writable headers, so this is a bug, not the miner's doing.
                log.error({ err, work: id }, 'the checked answer could not be written');
                res.destroy();
              }
            }
          };
          if (deps.wantsPlacement !== undefined && !broker.servable(name, tier, regions)) deps.wantsPlacement(name, tier, principal.account);
          let work: ReturnType<Broker['submit']>;
          try {
            work = broker.submit({ id, account: principal.account, dservice: name, tier, method, path, headers: forwarded, body, timeoutMs }, onDone);
          } catch (err) {
            releaseBody();
            giveBack();
            return fail(res, toCgnError(err), id);
          }
          res.on('close', () => {
            if (!answered && !res.writableFinished) {
              counters.clientGone++;
              // The broker completes it as cancelled: fail() counts that answer.
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
    observeRefusal(res, stored.status);
    const headers: string[] = [];
    for (const [k, v] of stored.headers) if (k !== 'content-length') headers.push(k, v);
    headers.push('idempotent-replayed', 'true', 'content-length', String(stored.body.length));
    res.writeHead(stored.status, headers);
    res.end(stored.body);
    void workId;
  }

  return { handle, counters };
}
