/**
 * The node's edge rule, in one place. What the node forwards to a miner already satisfies the
 * tunnel protocol's limits (else the DApp gets a 4xx naming the limit, before any miner sees it);
 * what a miner sends back is an answer the node can write as it is, checked before the DApp is
 * charged for it. The frame validator (`@cgn/protocol` `validate.ts`) holds the limits themselves;
 * this module maps them to HTTP.
 */
import { CgnError, LIMITS, excerpt, workRequestProblem, type HeaderList } from '@cgn/protocol';
import { forwardResponseHeaders } from './headers.js';

/**
 * Null when a request with this method, path and forwarded headers fits in a work frame; else the
 * error for the DApp: 414 for the path, 431 for the headers, 400 for anything else.
 */
export function requestLimitProblem(method: string, path: string, headers: HeaderList): CgnError | null {
  const p = workRequestProblem(method, path, headers);
  if (p === null) return null;
  const field = p.details?.['field'];
  const why = typeof p.details?.['why'] === 'string' ? p.details['why'] : p.message;
  if (field === 'path') {
    return new CgnError('uri_too_long', `the path is longer than ${LIMITS.maxPathLength} characters, the most a work unit carries`, {
      details: { limit: LIMITS.maxPathLength, length: path.length },
    });
  }
  if (field === 'headers') {
    return new CgnError('headers_too_large', `too many request headers for a work unit (${why}): it carries at most ${LIMITS.maxHeaderCount} headers and ${LIMITS.maxHeaderBytes} bytes of them`, {
      details: { maxHeaders: LIMITS.maxHeaderCount, maxBytes: LIMITS.maxHeaderBytes },
    });
  }
  return new CgnError('bad_request', `the request cannot be sent to a miner: ${excerpt(String(field))} ${excerpt(why)}`);
}

/** What the DApp gets from a miner's result, ready to write. */
export interface Answer {
  status: number;
  /** Flat [name, value, ...] list without content-length (the node sets it). */
  headers: string[];
  body: Uint8Array;
  /** Whether the answer carries a body at all (not for 204 and 304). */
  hasBody: boolean;
}

const EMPTY = new Uint8Array(0);

/**
 * The answer for a result, ready to write. The result passed the frame validator (a final status,
 * headers Node's HTTP server writes as they are: the one rule, in `@cgn/protocol` validate.ts), so
 * what is charged can be written; the status is checked once more here because a charge rests on it.
 */
export function answerOf(status: number, resultHeaders: readonly string[], body: Uint8Array): Answer | CgnError {
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    return new CgnError('miner_failed', `the miner answered with status ${excerpt(String(status), 20)}; an answer needs a final status 200-599`);
  }
  const headers: string[] = [];
  forwardResponseHeaders(resultHeaders, headers);
  const hasBody = status !== 204 && status !== 304;
  return { status, headers, body: hasBody ? body : EMPTY, hasBody };
}
