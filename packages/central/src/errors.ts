/**
 * Central's errors. Every error is a `CgnError` (the network's one error base); central adds a
 * few reasons that the shared `ErrorCode` list lacks (forbidden, conflict, locked, rate limited,
 * second factor required). `reason` is central's stable code; `code` is the nearest shared code,
 * so code that only knows `CgnError` still gets a sensible answer; `httpStatus` follows `reason`.
 */
import { CgnError, type CgnErrorOptions, type ErrorCode } from '@cgn/protocol';

export type CentralReason =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'locked'
  | 'mfa_required'
  | 'weak_password'
  | 'rate_limited'
  | 'payload_too_large'
  | 'unavailable'
  | 'internal';

const MAP: Record<CentralReason, { code: ErrorCode; status: number; title: string }> = {
  bad_request: { code: 'bad_request', status: 400, title: 'Bad request' },
  weak_password: { code: 'bad_request', status: 400, title: 'Password does not meet the policy' },
  unauthorized: { code: 'unauthorized', status: 401, title: 'Authentication required' },
  mfa_required: { code: 'unauthorized', status: 401, title: 'Second factor required' },
  forbidden: { code: 'unauthorized', status: 403, title: 'Forbidden' },
  not_found: { code: 'not_found', status: 404, title: 'Not found' },
  conflict: { code: 'bad_request', status: 409, title: 'Conflict' },
  payload_too_large: { code: 'payload_too_large', status: 413, title: 'Payload too large' },
  locked: { code: 'auth_failed', status: 429, title: 'Account temporarily locked' },
  rate_limited: { code: 'queue_full', status: 429, title: 'Too many requests' },
  unavailable: { code: 'dservice_unavailable', status: 503, title: 'Unavailable' },
  internal: { code: 'internal', status: 500, title: 'Internal error' },
};

export interface CentralErrorOptions extends CgnErrorOptions {
  /** Seconds until trying again makes sense (sent as `Retry-After`). */
  retryAfterS?: number;
}

export class CentralError extends CgnError {
  readonly reason: CentralReason;
  readonly retryAfterS: number | undefined;

  constructor(reason: CentralReason, message: string, options: CentralErrorOptions = {}) {
    super(MAP[reason].code, message, options);
    this.name = 'CentralError';
    this.reason = reason;
    this.retryAfterS = options.retryAfterS;
  }

  override get httpStatus(): number {
    return MAP[this.reason].status;
  }

  get title(): string {
    return MAP[this.reason].title;
  }
}

export const isCentralError = (e: unknown): e is CentralError => e instanceof CentralError;

export const badRequest = (message: string, details?: Record<string, unknown>): CentralError =>
  new CentralError('bad_request', message, details === undefined ? {} : { details });
export const forbidden = (message = 'your role does not allow this'): CentralError => new CentralError('forbidden', message);
export const notFound = (what: string): CentralError => new CentralError('not_found', `${what} not found`);
export const conflict = (message: string): CentralError => new CentralError('conflict', message);
