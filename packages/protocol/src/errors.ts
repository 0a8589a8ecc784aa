/**
 * One error base for the whole network. A `CgnError` has a stable `code` that maps to an HTTP
 * status at the node's edge and travels in tunnel `error` frames, so node and miner speak the
 * same error language.
 */
export type ErrorCode =
  | 'bad_frame'
  | 'unexpected_frame'
  | 'auth_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'payment_required'
  | 'conflict'
  | 'idempotency_mismatch'
  | 'rate_limited'
  | 'not_found'
  | 'unknown_dservice'
  | 'payload_too_large'
  /** The request's path is longer than the tunnel protocol carries (414). */
  | 'uri_too_long'
  /** Too many request headers, or too many bytes of them, for the tunnel protocol (431). */
  | 'headers_too_large'
  /** The client sent its request (headers or body) too slowly (408). */
  | 'request_timeout'
  | 'bad_request'
  | 'queue_full'
  | 'draining'
  | 'deadline_exceeded'
  | 'miner_failed'
  /** Open tier: redundant results disagreed and no third miner settled it (502). */
  | 'result_unconfirmed'
  | 'dservice_unavailable'
  | 'cancelled'
  | 'internal';

const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_frame: 400,
  unexpected_frame: 400,
  auth_failed: 401,
  unauthorized: 401,
  forbidden: 403,
  payment_required: 402,
  conflict: 409,
  idempotency_mismatch: 422,
  rate_limited: 429,
  not_found: 404,
  unknown_dservice: 404,
  payload_too_large: 413,
  uri_too_long: 414,
  headers_too_large: 431,
  request_timeout: 408,
  bad_request: 400,
  queue_full: 503,
  draining: 503,
  deadline_exceeded: 504,
  miner_failed: 502,
  result_unconfirmed: 502,
  dservice_unavailable: 503,
  cancelled: 499,
  internal: 500,
};

export interface CgnErrorOptions {
  /** Extra machine-readable facts (shown in problem+json). */
  details?: Record<string, unknown>;
  cause?: unknown;
  /** Whether the same work may succeed if tried again (elsewhere or later). */
  retryable?: boolean;
}

export class CgnError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: CgnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CgnError';
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[code];
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(HTTP_STATUS, value);
}
