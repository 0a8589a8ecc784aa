/**
 * Runs one work unit against a DService instance over its unix socket with node:http: the path
 * of DServices that do not speak the DService link (@cgn/sdk ones take `link-client.ts`).
 *
 * The request goes out as the `Uint8Array` the frame carried, with its Content-Length, on one of
 * the instance's keep-alive connections (`DServiceHttp`); the response body is read up to the
 * limit and no further. It measures wall time, takes the DService's CPU time from `cgn-cpu-us`
 * (stripped from the headers; 0 when absent), drops hop-by-hop headers and hashes status and
 * body for redundant-execution checks.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { CgnError, LIMITS, joinBody, type HeaderList, type WorkFrame } from '@cgn/protocol';
import { dropRequestHeaders, isHopByHop } from './headers.js';
import type { Cancellation } from './cancellation.js';
import type { DServiceHttp } from './dservice-http.js';

export type ProxyRequest = Pick<WorkFrame, 'method' | 'path' | 'headers' | 'body'>;

export interface WorkOutcome {
  status: number;
  /** Flat lower-case [name, value, ...] list, without hop-by-hop headers nor `cgn-cpu-us`. */
  headers: HeaderList;
  body: Uint8Array;
  /** Wall time from dispatch to the last body byte, microseconds. */
  execUs: number;
  /** CPU time the DService reported in `cgn-cpu-us`, microseconds (0 when it did not). */
  cpuUs: number;
  /** sha256 over the status (2 bytes, big-endian) and the body. */
  resultHash: Uint8Array;
}

export interface ProxyLimits {
  /** Largest response body accepted; a larger one fails the work (`payload_too_large`). */
  maxBodyBytes: number;
}

export const CPU_HEADER = 'cgn-cpu-us';

const statusBytes = Buffer.alloc(2);
/**
 * Bodies up to this size are hashed in one shot from a copy behind the status bytes: a Hash object
 * and two updates cost more than the copy (measured 2-3x for a 10-byte body, ~1.5x at 16 KB).
 */
const ONE_SHOT_BYTES = 16 * 1024;
const scratch = Buffer.allocUnsafe(ONE_SHOT_BYTES + 2);

/** sha256(status as 2 bytes big-endian ‖ body). */
export function resultHash(status: number, body: Uint8Array): Buffer {
  if (body.length <= ONE_SHOT_BYTES) {
    scratch.writeUInt16BE(status, 0);
    scratch.set(body, 2);
    return oneShotHash('sha256', scratch.subarray(0, body.length + 2), 'buffer') as Buffer;
  }
  statusBytes.writeUInt16BE(status, 0);
  return createHash('sha256').update(statusBytes).update(body).digest();
}

/** Node's codes for a request it refuses to send (bad method, path or header). */
const REFUSED_ARG = new Set(['ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_CHAR', 'ERR_UNESCAPED_CHARACTERS', 'ERR_HTTP_INVALID_HEADER_VALUE', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']);

function tooManyHeaders(): CgnError {
  return new CgnError('miner_failed', `the DService answered with more headers than a result may carry (${LIMITS.maxHeaderCount} headers, ${LIMITS.maxHeaderBytes} bytes)`);
}

function tooLarge(limits: ProxyLimits): CgnError {
  return new CgnError('payload_too_large', `the DService answered with more than ${limits.maxBodyBytes} bytes`);
}

/** Whether a node:http/socket error means the DService is not there (or died) rather than a bad request. */
function toCgnError(err: unknown): CgnError {
  if (err instanceof CgnError) return err;
  const e = err as { code?: string; message?: string; name?: string };
  if (e.code !== undefined && REFUSED_ARG.has(e.code)) {
    return new CgnError('bad_request', `the request cannot be sent to the DService: ${e.message ?? 'invalid argument'}`, { cause: err });
  }
  if (e.code === 'HPE_HEADER_OVERFLOW') return tooManyHeaders();
  return new CgnError('dservice_unavailable', `DService unavailable: ${e.code ?? e.name ?? 'error'}: ${e.message ?? String(err)}`, {
    cause: err,
    retryable: true,
  });
}

/** The parser may take a header block this large: what a result may carry plus the lines around it. */
const MAX_RESPONSE_HEADER_BYTES = LIMITS.maxHeaderBytes + 8 * 1024;
/** Methods whose empty body is sent without a Content-Length. */
const BODYLESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);
/** A kept-alive connection the DService closed just as it was reused: the request is sent once more. */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE']);

class WorkCall {
  private req: ClientRequest | null = null;
  private settled = false;
  private responded = false;
  private retried = false;
  private status = 0;
  private headers: HeaderList = [];
  private cpuUs = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  private readonly start = process.hrtime.bigint();

  constructor(
    private readonly http: DServiceHttp,
    private readonly method: string,
    private readonly path: string,
    private readonly requestHeaders: string[],
    private readonly body: Uint8Array,
    private readonly limits: ProxyLimits,
    private readonly cancel: Cancellation | undefined,
    private readonly resolve: (o: WorkOutcome) => void,
    private readonly reject: (e: CgnError) => void,
  ) {}

  /** Cancel listener: fail now and close the connection (the DService sees the request go). */
  readonly onCancel = (err: CgnError): void => {
    this.fail(err);
  };

  send(): void {
    let req: ClientRequest;
    try {
      req = request({
        agent: this.http.agent,
        socketPath: this.http.socketPath,
        method: this.method,
        path: this.path,
        headers: this.requestHeaders,
        maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
      });
    } catch (err) {
      this.fail(toCgnError(err));
      return;
    }
    this.req = req;
    req.on('error', (err: NodeJS.ErrnoException) => this.onRequestError(req, err));
    req.on('response', (res) => this.onResponse(req, res));
    req.end(this.body);
  }

  private onRequestError(req: ClientRequest, err: NodeJS.ErrnoException): void {
    if (this.settled || req !== this.req) return;
    if (!this.responded && !this.retried && req.reusedSocket && err.code !== undefined && STALE_CONNECTION.has(err.code)) {
      this.retried = true;
      this.send();
      return;
    }
    this.fail(toCgnError(err));
  }

  private onResponse(req: ClientRequest, res: IncomingMessage): void {
    if (this.settled || req !== this.req) return;
    this.responded = true;
    this.status = res.statusCode ?? 0;
    const err = this.takeHeaders(res.rawHeaders);
    if (err !== null) return this.fail(err);
    res.on('data', (chunk: Buffer) => this.onData(chunk));
    res.on('end', () => this.onEnd());
    res.on('error', (e) => this.fail(toCgnError(e)));
    res.on('close', () => this.fail(new CgnError('dservice_unavailable', 'DService unavailable: the connection closed before the response ended', { retryable: true })));
  }

  /** Keeps the result's headers (lower-case pairs); an error when they cannot go into a result. */
  private takeHeaders(raw: string[]): CgnError | null {
    // Names listed in Connection belong to this hop too.
    let listed: string[] | null = null;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (raw[i]!.length !== 10 || raw[i]!.toLowerCase() !== 'connection') continue;
      for (const token of raw[i + 1]!.toLowerCase().split(',')) {
        const name = token.trim();
        if (name.length > 0 && name !== 'keep-alive' && name !== 'close') (listed ??= []).push(name);
      }
    }
    const out = this.headers;
    let bytes = 0;
    let cpuSeen = false;
    let length = -1;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      if (name === 'content-length') length = Number(value);
      if (isHopByHop(name) || (listed !== null && listed.includes(name))) continue;
      if (name === CPU_HEADER) {
        if (!cpuSeen) {
          const n = Number(value);
          this.cpuUs = Number.isSafeInteger(n) && n >= 0 ? n : 0;
          cpuSeen = true;
        }
        continue;
      }
      out.push(name, value);
      bytes += name.length + value.length;
    }
    if (out.length > LIMITS.maxHeaderCount * 2 || bytes > LIMITS.maxHeaderBytes) return tooManyHeaders();
    // A body announced larger than the limit is refused before any of it is read.
    if (length > this.limits.maxBodyBytes && this.method !== 'HEAD' && this.status !== 204 && this.status !== 304) return tooLarge(this.limits);
    return null;
  }

  private onData(chunk: Buffer): void {
    if (this.settled) return;
    this.size += chunk.length;
    if (this.size > this.limits.maxBodyBytes) return this.fail(tooLarge(this.limits));
    this.chunks.push(chunk);
  }

  private onEnd(): void {
    if (this.settled) return;
    this.settled = true;
    this.cancel?.onCancel(null);
    const execUs = Number((process.hrtime.bigint() - this.start) / 1000n);
    const body: Uint8Array = this.chunks.length === 1 ? this.chunks[0]! : this.chunks.length === 0 ? EMPTY : Buffer.concat(this.chunks, this.size);
    this.resolve({
      status: this.status,
      headers: this.headers,
      body,
      execUs,
      cpuUs: this.cpuUs,
      resultHash: resultHash(this.status, body),
    });
  }

  /** Settles with `err` and closes the connection (a request abandoned half way leaves it unusable). */
  fail(err: CgnError): void {
    if (this.settled) return;
    this.settled = true;
    this.cancel?.onCancel(null);
    this.chunks = [];
    this.req?.destroy();
    this.reject(err);
  }
}

const EMPTY = new Uint8Array(0);

/** The request's headers: Host, the body's length, and the work's own without the hop's. */
function requestHeaders(method: string, work: HeaderList, bodyBytes: number): string[] {
  const own = dropRequestHeaders(work);
  const out = bodyBytes > 0 || !BODYLESS.has(method) ? ['host', 'localhost', 'content-length', String(bodyBytes)] : ['host', 'localhost'];
  for (let i = 0; i + 1 < own.length; i += 2) out.push(own[i]!, own[i + 1]!);
  return out;
}

/**
 * Sends `work` to the DService behind `http` and resolves with its answer. Rejects with a
 * `CgnError`: `dservice_unavailable` (retryable) when the DService cannot be reached or dies
 * mid-request, the cancellation's reason when cancelled, `bad_request` when node:http refuses
 * the method, path or a header, `payload_too_large` or `miner_failed` when the answer cannot go
 * into a result frame.
 */
export function runWork(http: DServiceHttp, work: ProxyRequest, limits: ProxyLimits, cancel?: Cancellation): Promise<WorkOutcome> {
  return new Promise<WorkOutcome>((resolve, reject) => {
    if (cancel?.reason) return reject(cancel.reason);
    const method = work.method;
    // node:http hands a CONNECT's socket to a 'connect' listener instead of answering.
    if (method.toUpperCase() === 'CONNECT') return reject(new CgnError('bad_request', 'the request cannot be sent to the DService: CONNECT is not forwarded'));
    // HTTP DServices are the cold path: a body still in pieces is joined here.
    const body = joinBody(work.body);
    const call = new WorkCall(http, method, work.path, requestHeaders(method, work.headers, body.length), body, limits, cancel, resolve, reject);
    cancel?.onCancel(call.onCancel);
    call.send();
  });
}
