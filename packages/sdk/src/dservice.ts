/**
 * DService author kit. A DService is a stateless HTTP service; `serveDService` runs a handler as
 * one, the way a miner expects it:
 *
 * - listens on the unix socket at `$CGN_SOCKET` (set by the miner), else on `127.0.0.1:$PORT`
 *   (HTTPS when `$CGN_DSERVICE_TLS_CERT` and `$CGN_DSERVICE_TLS_KEY` name PEM files);
 * - answers `GET /healthz` with 200;
 * - buffers the request body (at most `$CGN_MAX_BODY_BYTES`, default 10 MiB; larger is a 413);
 * - reports the CPU time of each request in the `cgn-cpu-us` response header, which the miner
 *   strips and puts into the result's metering; requests that overlap share the process's CPU
 *   time (`cpu-attribution.ts`), so the reports add up to what the process used;
 * - also serves the same handler over the DService link (`link-frames.ts`) on the unix socket at
 *   `$CGN_LINK_SOCKET` when the miner sets it: framed, batched, no HTTP on the hot path;
 * - closes gracefully on SIGTERM / SIGINT.
 *
 * ```ts
 * import { serveDService } from '@cgn/sdk';
 * await serveDService(async (req) => ({ status: 200, headers: {}, body: req.body }));
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { CpuAttribution } from './cpu-attribution.js';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { serveLink } from './link-server.js';

export interface DServiceRequest {
  method: string;
  /** Path below the DService root, without the query string. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface DServiceResponse {
  status: number;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

export type DServiceHandler = (req: DServiceRequest) => Promise<DServiceResponse> | DServiceResponse;

export interface ServeOptions {
  /** Unix socket path; default `$CGN_SOCKET`. */
  socketPath?: string;
  /** TCP port on 127.0.0.1 when there is no socket path; default `$PORT`, else an ephemeral port. */
  port?: number;
  /** Unix socket for the DService link; default `$CGN_LINK_SOCKET` (none when unset). */
  linkSocketPath?: string;
  /** Largest body accepted; default `$CGN_MAX_BODY_BYTES` or 10 MiB. */
  maxBodyBytes?: number;
}

export interface RunningDService {
  server: Server;
  /** `unix:<path>` or `http://127.0.0.1:<port>`. */
  address: string;
  close(): Promise<void>;
}

/** A JSON problem response in the shape the node uses (`application/problem+json`). */
export function problem(status: number, title: string, detail: string): DServiceResponse {
  return {
    status,
    headers: { 'content-type': 'application/problem+json' },
    body: JSON.stringify({ type: 'about:blank', title, status, detail }),
  };
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** What a handler's answer becomes on the wire, with the CPU time it took. */
export interface HandledResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
  cpuUs: number;
}

/**
 * Runs the handler for one request, whatever transport brought it (HTTP or the link): a thrown
 * error becomes a 500 problem; the CPU time is measured around the handler.
 */
export async function handleRequest(handler: DServiceHandler, req: DServiceRequest, cpu: CpuAttribution = processCpu): Promise<HandledResponse> {
  const started = cpu.start();
  let out: DServiceResponse;
  try {
    out = await handler(req);
  } catch (err) {
    out = problem(500, 'Internal Server Error', (err as Error).message);
  }
  return answered(out, cpu.end(started));
}

/** One attribution per process: every request of this DService, whatever transport brought it. */
const processCpu = new CpuAttribution();

export function answered(r: DServiceResponse, cpuUs: number): HandledResponse {
  const body = r.body === undefined ? undefined : typeof r.body === 'string' ? Buffer.from(r.body) : r.body;
  return { status: r.status, headers: r.headers ?? {}, body, cpuUs };
}

function send(res: ServerResponse, r: HandledResponse): void {
  const headers: Record<string, string | number> = { ...r.headers, 'cgn-cpu-us': r.cpuUs };
  headers['content-length'] = r.body?.length ?? 0;
  res.writeHead(r.status, headers);
  res.end(r.body);
}

/** Splits a request target into the path and its query. */
export function splitTarget(url: string): { path: string; query: URLSearchParams } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: new URLSearchParams() } : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

/** Builds the request listener; exported so handlers can be driven without a socket. */
export function dserviceListener(handler: DServiceHandler, maxBodyBytes: number) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const { path, query } = splitTarget(req.url ?? '/');
    if (path === '/healthz' && req.method === 'GET') {
      send(res, answered({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' }, 0));
      return;
    }
    readBody(req, maxBodyBytes).then(
      async (body) => {
        if (body === null) {
          send(res, answered(problem(413, 'Payload Too Large', `body exceeds ${maxBodyBytes} bytes`), 0));
          return;
        }
        send(res, await handleRequest(handler, { method: req.method ?? 'GET', path, query, headers: req.headers, body }));
      },
      () => res.destroy(),
    );
  };
}

/** Starts a DService server; resolves once it listens. */
export async function serveDService(handler: DServiceHandler, options: ServeOptions = {}): Promise<RunningDService> {
  const socketPath = options.socketPath ?? process.env['CGN_SOCKET'];
  const maxBodyBytes = options.maxBodyBytes ?? (Number(process.env['CGN_MAX_BODY_BYTES']) || 10 * 1024 * 1024);
  const linkSocketPath = options.linkSocketPath ?? process.env['CGN_LINK_SOCKET'];
  // The link listens first: once HTTP health checks answer, a miner finds the link socket there.
  const link = linkSocketPath ? await serveLink(linkSocketPath, handler, maxBodyBytes) : null;
  // Run on its own (not under a miner), a DService may serve HTTPS: $CGN_DSERVICE_TLS_CERT and _KEY (PEM files).
  const certFile = socketPath ? undefined : process.env['CGN_DSERVICE_TLS_CERT'];
  const keyFile = process.env['CGN_DSERVICE_TLS_KEY'];
  const tls = certFile && keyFile ? { cert: readFileSync(certFile), key: readFileSync(keyFile) } : null;
  const server: Server = tls
    ? createHttpsServer({ keepAliveTimeout: 60_000, ...tls }, dserviceListener(handler, maxBodyBytes))
    : createServer({ keepAliveTimeout: 60_000 }, dserviceListener(handler, maxBodyBytes));
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  let address: string;
  if (socketPath) {
    if (existsSync(socketPath)) unlinkSync(socketPath);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
    address = `unix:${socketPath}`;
  } else {
    const port = options.port ?? (Number(process.env['PORT']) || 0);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    const a = server.address();
    address = `${tls ? 'https' : 'http'}://127.0.0.1:${typeof a === 'object' && a ? a.port : port}`;
  }
  const close = async () => {
    await Promise.all([
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
      link?.close(),
    ]);
  };
  const onSignal = () => {
    void close().then(() => process.exit(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // Under a miner (a socket path): a miner that died without stopping it (SIGKILL, OOM) leaves
  // nobody to serve, so the DService goes too instead of living on as an orphan.
  if (socketPath) exitWhenOrphaned(onSignal);
  return { server, address, close };
}

const ORPHAN_CHECK_MS = 1000;

/** Calls `exit` once this process's parent is gone (it was re-parented); never when started under init. */
function exitWhenOrphaned(exit: () => void): void {
  const parent = process.ppid;
  if (parent <= 1) return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    exit();
  }, ORPHAN_CHECK_MS);
  timer.unref();
}
