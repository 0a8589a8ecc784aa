/**
 * Downloads a DService package archive from the node's miner endpoint: the tunnel's own host and
 * port, over `https` with the tunnel's trust (`--ca-file`, `--pin-sha256`) or `http` where the
 * tunnel is `ws://`. The request carries nothing secret (approved packages are public and checked
 * by digest), and a body larger than the `place` frame announced is cut off.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { Transform, type Readable } from 'node:stream';
import { CgnError } from '@cgn/protocol';
import { normalFingerprint, type NodeTrust } from './tunnel.js';

/** The package URL for `packagePath` on the node behind `nodeUrl` (never another host). */
export function packageUrl(nodeUrl: string, packagePath: string): URL {
  const node = new URL(nodeUrl);
  if (!packagePath.startsWith('/')) throw new CgnError('bad_request', `package path "${packagePath.slice(0, 100)}" does not start with /`);
  const proto = node.protocol === 'wss:' ? 'https:' : 'http:';
  // Origin and path joined as text: a path like //evil.example/x stays a path on the node.
  const url = new URL(`${proto}//${node.host}${packagePath}`);
  if (url.host !== node.host) throw new CgnError('bad_request', `package path "${packagePath.slice(0, 100)}" names another host`);
  return url;
}

export interface FetchOptions {
  trust: NodeTrust;
  /** Bytes the archive has (the `place` frame's sizeBytes); more is refused. */
  sizeBytes: number;
  timeoutMs: number;
}

/** GETs the archive; resolves with the body stream once the status is 200. */
export function fetchPackage(url: URL, o: FetchOptions): Promise<Readable> {
  const pin = o.trust.pinSha256 === undefined ? null : normalFingerprint(o.trust.pinSha256);
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:';
    const options = {
      method: 'GET',
      headers: { accept: 'application/gzip' },
      timeout: o.timeoutMs,
      // A connection of its own: a pooled socket would skip the pin check below (no new handshake).
      agent: false,
      ...(https && o.trust.ca ? { ca: o.trust.ca } : {}),
      // As for the tunnel: a pin alone is the whole check; with a CA, both must hold.
      ...(https && pin !== null && !o.trust.ca ? { rejectUnauthorized: false } : {}),
    };
    const req = (https ? httpsRequest : httpRequest)(url, options, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        // The node's problem+json says why (a missing or expired grant, an unknown digest): keep its detail, bounded.
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (text.length < 2048) text += chunk;
        });
        res.on('error', () => {});
        res.on('end', () => {
          let detail = '';
          try {
            const d = (JSON.parse(text) as { detail?: unknown }).detail;
            if (typeof d === 'string') detail = `: ${d.slice(0, 300)}`;
          } catch {
            // not problem+json: the status says it
          }
          const code = res.statusCode === 403 ? 'forbidden' : 'not_found';
          reject(new CgnError(code, `the node answered ${res.statusCode ?? '?'} for ${url.pathname.slice(0, 120)}${detail}`, { retryable: res.statusCode !== 403 }));
        });
        return;
      }
      const length = Number(res.headers['content-length'] ?? NaN);
      if (Number.isFinite(length) && length > o.sizeBytes) {
        res.destroy();
        reject(new CgnError('payload_too_large', `the package is ${length} bytes, more than the ${o.sizeBytes} announced`));
        return;
      }
      let seen = 0;
      const bound = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          seen += chunk.length;
          if (seen > o.sizeBytes) cb(new CgnError('payload_too_large', `the package is larger than the ${o.sizeBytes} bytes announced`));
          else cb(null, chunk);
        },
      });
      res.on('error', (err) => bound.destroy(err));
      // The body flows at once; a cut-off may come before the reader attaches. The reader still
      // sees it (the stream is destroyed with the error); this only keeps it from being uncaught.
      bound.on('error', () => {});
      resolve(res.pipe(bound));
    });
    req.on('timeout', () => req.destroy(new CgnError('deadline_exceeded', `no answer from ${url.host} within ${o.timeoutMs} ms`, { retryable: true })));
    req.on('error', (err) => reject(err instanceof CgnError ? err : new CgnError('dservice_unavailable', `cannot fetch the package from ${url.host}: ${err.message}`, { retryable: true, cause: err })));
    if (https && pin !== null) {
      req.on('socket', (s) => {
        const check = (): void => {
          const seen = (s as TLSSocket).getPeerCertificate?.()?.fingerprint256;
          if (seen !== pin) req.destroy(new CgnError('forbidden', `the node's certificate is not the pinned one (presented ${seen ?? 'none'})`));
        };
        if ((s as TLSSocket).encrypted === true && (s as TLSSocket).getPeerCertificate?.()?.fingerprint256 !== undefined) check();
        else s.once('secureConnect', check);
      });
    }
    req.end();
  });
}
