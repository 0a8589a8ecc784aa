/**
 * Runs one work unit against a DService instance over its unix socket: the miner's hot path.
 *
 * It dispatches straight on an undici dispatcher (a keep-alive `Pool` per instance) with a small
 * handler instead of `request()`, so no response stream is built; the request body goes out as
 * the `Uint8Array` the frame carried, and a one-chunk response body is returned as is. It
 * measures wall time, takes the DService's CPU time from `cgn-cpu-us` (stripped from the
 * headers; 0 when absent), drops hop-by-hop headers and hashes status and body for
 * redundant-execution checks.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { CgnError, LIMITS, joinBody, type HeaderList, type WorkFrame } from '@cgn/protocol';
import { dropRequestHeaders, isHopByHop } from './headers.js';
import type { Cancellation } from './cancellation.js';

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

/** Whether an undici/socket error means the DService is not there (or died) rather than a bad request. */
function toCgnError(err: unknown): CgnError {
  if (err instanceof CgnError) return err;
  const e = err as { code?: string; message?: string; name?: string };
  if (e.code === 'UND_ERR_INVALID_ARG') {
    return new CgnError('bad_request', `the request cannot be sent to the DService: ${e.message ?? 'invalid argument'}`, { cause: err });
  }
  return new CgnError('dservice_unavailable', `DService unavailable: ${e.code ?? e.name ?? 'error'}: ${e.message ?? String(err)}`, {
    cause: err,
    retryable: true,
  });
}


class WorkCall implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private settled = false;
  private status = 0;
  private headers: HeaderList = [];
  private cpuUs = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  private readonly start = process.hrtime.bigint();

  constructor(
    private readonly resolve: (o: WorkOutcome) => void,
    private readonly reject: (e: CgnError) => void,
    private readonly limits: ProxyLimits,
    private readonly cancel: Cancellation | undefined,
  ) {}

  /** Cancel listener: fail now, and stop the request once undici has started it. */
  readonly onCancel = (err: CgnError): void => {
    this.fail(err);
    this.controller?.abort(err);
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.settled) controller.abort(new CgnError('cancelled', 'work cancelled'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // informational; the final response follows
    this.status = statusCode;
    const conn = headers['connection'];
    const listed = typeof conn === 'string' && conn.length > 0 && conn !== 'keep-alive' && conn !== 'close' ? conn.toLowerCase().split(/\s*,\s*/) : null;
    const out = this.headers;
    let bytes = 0;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || isHopByHop(name) || (listed !== null && listed.includes(name))) continue;
      if (name === CPU_HEADER) {
        const n = Number(Array.isArray(value) ? value[0] : value);
        this.cpuUs = Number.isSafeInteger(n) && n >= 0 ? n : 0;
        continue;
      }
      if (typeof value === 'string') {
        out.push(name, value);
        bytes += name.length + value.length;
      } else {
        for (const v of value) {
          out.push(name, v);
          bytes += name.length + v.length;
        }
      }
    }
    if (out.length > LIMITS.maxHeaderCount * 2 || bytes > LIMITS.maxHeaderBytes) {
      const err = new CgnError('miner_failed', `the DService answered with more headers than a result may carry (${LIMITS.maxHeaderCount} headers, ${LIMITS.maxHeaderBytes} bytes)`);
      this.fail(err);
      controller.abort(err);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.size += chunk.length;
    if (this.size > this.limits.maxBodyBytes) {
      const err = new CgnError('payload_too_large', `the DService answered with more than ${this.limits.maxBodyBytes} bytes`);
      this.fail(err);
      controller.abort(err);
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
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

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.fail(toCgnError(error));
  }

  fail(err: CgnError): void {
    if (this.settled) return;
    this.settled = true;
    this.cancel?.onCancel(null);
    this.chunks = [];
    this.reject(err);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Sends `work` to the DService behind `dispatcher` and resolves with its answer. Rejects with a
 * `CgnError`: `dservice_unavailable` (retryable) when the DService cannot be reached or dies
 * mid-request, the cancellation's reason when cancelled, `payload_too_large` or
 * `miner_failed` when the answer cannot go into a result frame.
 */
export function runWork(dispatcher: Dispatcher, work: ProxyRequest, limits: ProxyLimits, cancel?: Cancellation): Promise<WorkOutcome> {
  return new Promise<WorkOutcome>((resolve, reject) => {
    if (cancel?.reason) return reject(cancel.reason);
    const call = new WorkCall(resolve, reject, limits, cancel);
    cancel?.onCancel(call.onCancel);
    try {
      dispatcher.dispatch(
        {
          path: work.path,
          method: work.method as Dispatcher.HttpMethod,
          headers: dropRequestHeaders(work.headers),
          // HTTP DServices are the cold path: a body still in pieces is joined here.
          body: joinBody(work.body),
        },
        call,
      );
    } catch (err) {
      call.fail(toCgnError(err));
    }
  });
}
