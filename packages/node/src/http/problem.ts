/**
 * Node-made errors as RFC 9457 `application/problem+json`.
 */
import type { ServerResponse } from 'node:http';
import { CgnError } from '@cgn/protocol';

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large', 414: 'URI Too Long', 422: 'Unprocessable Content', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  499: 'Client Closed Request', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

export interface ProblemExtras {
  workId?: string;
  retryAfterS?: number;
  headers?: Record<string, string>;
}

export function sendProblem(res: ServerResponse, err: CgnError, extras: ProblemExtras = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const status = err.httpStatus;
  const body = JSON.stringify({
    type: `urn:cgn:problem:${err.code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail: err.message,
    code: err.code,
    ...(extras.workId !== undefined ? { workId: extras.workId } : {}),
    ...(err.details !== undefined ? { details: err.details } : {}),
  });
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extras.headers,
  };
  if (extras.workId !== undefined) headers['cgn-work-id'] = extras.workId;
  if (extras.retryAfterS !== undefined) headers['retry-after'] = extras.retryAfterS;
  res.writeHead(status, headers);
  res.end(body);
}

export function toCgnError(err: unknown): CgnError {
  return err instanceof CgnError ? err : new CgnError('internal', 'internal error', { cause: err });
}
