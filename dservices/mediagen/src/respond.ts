/**
 * Response shapes: deterministic bodies with a strong ETag, and problems.
 */
import { createHash } from 'node:crypto';
import type { DServiceResponse } from '@cgn/sdk';
import { BadParameterError, MethodNotAllowedError, type MediaGenError } from './errors.js';

/** Output is a function of input and parameters, so a result never goes stale. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Strong ETag: the first 128 bits of the body's SHA-256, in hex. */
export function etagOf(body: Uint8Array): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
}

export function deterministicResponse(body: Buffer, contentType: string): DServiceResponse {
  return {
    status: 200,
    headers: { 'content-type': contentType, etag: etagOf(body), 'cache-control': IMMUTABLE },
    body,
  };
}

/** `application/problem+json` (RFC 9457); bad parameters carry a `param` member naming them. */
export function problemResponse(err: MediaGenError): DServiceResponse {
  const body: Record<string, unknown> = { type: 'about:blank', title: err.title, status: err.status, detail: err.message };
  if (err instanceof BadParameterError) body['param'] = err.param;
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  if (err instanceof MethodNotAllowedError) headers['allow'] = err.allow;
  return { status: err.status, headers, body: JSON.stringify(body) };
}
