/**
 * Hostile requests to the node's work port, as raw bytes: malformed request lines and headers,
 * framing that lies (content-length against the body, broken chunks), limits crossed (header
 * count and size, path length, body size), and well-formed requests with hostile values in every
 * place the node reads (key, tier, deadline, end user, idempotency key, DService name, path).
 */
import { hostileNumber, hostileString, pct } from './hostile.js';
import type { Rng } from './rng.js';
import type { ExchangeOptions } from './http-client.js';

export interface HttpCase {
  what: string;
  exchange: ExchangeOptions;
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'PROPFIND', 'M-SEARCH', 'CONNECT', 'TRACE', 'GETT', 'post', 'G\u0000T', ''];
const NAMES = ['echo', 'mediagen', 'nope', '', 'echo%00', 'ECHO', '..', 'x'.repeat(300)];

/** Hostile text made safe for a request line or header: Latin-1 bytes, maybe with CR/LF left in. */
function latin1(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += String.fromCharCode(s.charCodeAt(i) & 0xff);
  return out;
}

/** A hostile header value; only now and then with the CR, LF or NUL that end a request at the parser. */
function headerValue(rng: Rng, maxLength: number): string {
  const v = latin1(hostileString(rng, maxLength));
  return rng.chance(0.05) ? v : v.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, ' ');
}

function pathOf(rng: Rng): string {
  switch (rng.weighted([[3, 0], [1, 1], [1, 2], [1, 3], [1, 4], [3, 5]] as const)) {
    case 0:
      return '/';
    case 1:
      return '/' + 'p'.repeat(rng.pick([8190, 8191, 8192, 8193, 9000, 12_000]));
    case 2:
      return '/' + pct(hostileString(rng, 3000)).slice(0, 9000);
    case 3:
      return `/x?${Array.from({ length: rng.size(30) }, () => `${pct(hostileString(rng, 20))}=${pct(hostileString(rng, 50))}`).join('&')}`;
    case 4:
      return latin1(hostileString(rng, 200)).replace(/[\r\n ]/g, '');
    default:
      // Not echo's /crash: a kill switch for tests, it would only measure the DService's restart backoff.
      return rng.pick(['/hello', '/slow?ms=50', '/respond?status=101', '/respond?status=204', `/respond?status=${rng.int(0, 999)}`, '/respond?header=%E2%98%83', '/info', '/transform?width=10']);
  }
}

function headerLines(rng: Rng, key: string): string[] {
  const lines: string[] = ['host: fuzz'];
  const auth = rng.weighted([[24, `Bearer ${key}`], [1, 'Bearer '], [1, `Bearer ${key}x`], [1, `Basic ${key}`], [1, headerValue(rng, 300)]] as const);
  if (!rng.chance(0.02)) lines.push(`authorization: ${auth}`);
  if (rng.chance(0.1)) lines.push(`cgn-tier: ${rng.pick(['open', 'attested', 'dedicated', 'gold', '', headerValue(rng, 40)])}`);
  // Mostly a short deadline, so work nothing can run (a tier without miners) ends soon.
  lines.push(`cgn-deadline-ms: ${rng.chance(0.9) ? '3000' : rng.chance(0.5) ? String(hostileNumber(rng)) : headerValue(rng, 30)}`);
  if (rng.chance(0.1)) lines.push(`cgn-end-user: ${headerValue(rng, 500)}`);
  if (rng.chance(0.15)) lines.push(`idempotency-key: ${rng.chance(0.5) ? `k-${rng.int(0, 50)}` : headerValue(rng, 300)}`);
  if (rng.chance(0.1)) lines.push(`expect: ${rng.pick(['100-continue', 'nothing'])}`);
  const extra = rng.weighted([[16, rng.size(10)], [1, rng.int(250, 262)], [1, rng.int(300, 1500)]] as const);
  for (let i = 0; i < extra; i++) {
    const name = extra > 50 || rng.chance(0.95) ? `x-f${i}` : latin1(hostileString(rng, 20)).replace(/[\r\n:]/g, '');
    lines.push(`${name}: ${rng.chance(extra > 50 ? 0.99 : 0.8) ? 'v' : headerValue(rng, rng.chance(0.1) ? 20_000 : 100)}`);
  }
  return lines;
}

function chunked(rng: Rng, body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const n = Math.min(body.length - at, rng.int(1, 64 * 1024));
    const size = rng.chance(0.03) ? rng.pick(['zz', '-1', 'ffffffffffffffff', '']) : n.toString(16);
    out.push(Buffer.from(`${size}\r\n`), body.subarray(at, at + n), Buffer.from(rng.chance(0.02) ? 'XX' : '\r\n'));
    at += n;
  }
  if (!rng.chance(0.05)) out.push(Buffer.from(rng.chance(0.05) ? '0\r\nx-trailer: t\r\n\r\n' : '0\r\n\r\n'));
  return out;
}

/** A well-formed request with hostile values, or a request broken on purpose. */
export function httpCase(rng: Rng, apiKey: string): HttpCase {
  const kind = rng.weighted([[2, 'garbage'], [2, 'bad-line'], [10, 'request']] as const);
  if (kind === 'garbage') {
    return { what: 'random bytes', exchange: { pieces: [rng.bytes(rng.size(20_000))], timeoutMs: 12_000 } };
  }
  if (kind === 'bad-line') {
    const line = rng.pick([
      `${rng.pick(METHODS)} /v1/d/echo/ HTTP/1.1`, 'GET /v1/d/echo/ HTTP/9.9', 'GET  HTTP/1.1', `GET /v1/d/echo/${'a'.repeat(rng.size(70_000))} HTTP/1.1`,
      'GET /v1/d/echo/ HTTP/1.1 extra', latin1(hostileString(rng, 500)), 'GET /v1/d/echo/\u0000 HTTP/1.1',
    ]);
    return { what: `bad request line ${JSON.stringify(line.slice(0, 40))}`, exchange: { pieces: [Buffer.from(`${line}\r\nhost: x\r\nconnection: close\r\n\r\n`, 'latin1')], timeoutMs: 12_000 } };
  }
  const method = rng.chance(0.85) ? rng.pick(['POST', 'GET', 'PUT']) : rng.pick(METHODS.filter((m) => /^[A-Z-]+$/.test(m)));
  const name = rng.chance(0.85) ? 'echo' : rng.pick(NAMES);
  const lines = headerLines(rng, apiKey);
  const bodySize = rng.weighted([[12, rng.size(2048)], [4, rng.size(200_000)], [1, rng.int(1024 * 1024 - 2, 1024 * 1024 + 2)], [1, rng.size(3 * 1024 * 1024)]] as const);
  const body = rng.bytes(bodySize);
  const framing = rng.weighted([[12, 'length'], [6, 'chunked'], [1, 'lying-short'], [1, 'lying-long'], [1, 'both'], [1, 'abandon']] as const);
  const pieces: Buffer[] = [];
  let abortAfter: number | undefined;
  if (framing === 'length' || framing === 'abandon') lines.push(`content-length: ${body.length}`);
  else if (framing === 'chunked') lines.push('transfer-encoding: chunked');
  else if (framing === 'lying-short') lines.push(`content-length: ${body.length + rng.int(1, 1000)}`);
  else if (framing === 'lying-long') lines.push(`content-length: ${Math.max(0, body.length - rng.int(1, 100))}`);
  else lines.push(`content-length: ${body.length}`, 'transfer-encoding: chunked');
  lines.push('connection: close');
  const head = Buffer.from(`${method} /v1/d/${name}${pathOf(rng)} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  pieces.push(head);
  if (framing === 'chunked' || framing === 'both') pieces.push(...chunked(rng, body));
  else {
    for (let at = 0; at < body.length; at += 64 * 1024) pieces.push(body.subarray(at, at + 64 * 1024));
  }
  if (framing === 'abandon') abortAfter = rng.int(1, Math.max(1, pieces.length - 1));
  return {
    what: `${method} ${name} ${framing} body ${body.length} B, ${lines.length} headers`,
    exchange: { pieces, timeoutMs: 40_000, ...(abortAfter !== undefined ? { abortAfter } : {}) },
  };
}
