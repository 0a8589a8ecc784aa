/**
 * A bounded GET for central's polls of the nodes: a deadline, a body cap, and the network CA
 * trusted for https (nodes' certificates are signed by it). Errors say which URL and why.
 */
import http from 'node:http';
import https from 'node:https';

export interface BoundedGetOptions {
  timeoutMs: number;
  maxBytes: number;
  ca?: string | Buffer;
  headers?: Record<string, string>;
}

export function boundedGet(url: string, o: BoundedGetOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return reject(new Error(`${url.slice(0, 200)} is not a URL`));
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return reject(new Error(`${u.protocol} is not http or https`));
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, { timeout: o.timeoutMs, headers: { accept: 'application/json', ...o.headers }, ...(u.protocol === 'https:' && o.ca !== undefined ? { ca: o.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > o.maxBytes) {
          req.destroy(new Error(`answer larger than ${o.maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
    req.on('error', (err) => reject(new Error(`GET ${u.origin}${u.pathname}: ${err.message}`)));
  });
}
