/**
 * The control app's HTTP server, on loopback only: the web page (`packages/miner/ui/`, with
 * Preact, htm and uPlot served from node_modules through the page's import map) and a small JSON
 * API under `/api/`.
 *
 * Defences: it listens on 127.0.0.1 only; every request must name a loopback Host (a DNS
 * rebinding page names its own); every API call needs `Authorization: Bearer <token>` (compared
 * in constant time; 401 JSON otherwise); no CORS headers, so no other origin can read an answer
 * or send the token; a strict Content-Security-Policy (scripts from this origin only, plus the
 * import map by its hash); bounded request bodies.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WEB_CONTENT_TYPES, importMapHashes, webContentSecurityPolicy, webVendorFiles } from '@cgn/protocol';
import { ControlActionError, type MinerController } from './controller.js';
import { SettingsError } from './settings.js';
import { bearerToken, tokenMatches } from './token.js';

/** What the control app serves (its page is html, js and css). */
const TYPES: Readonly<Record<string, string>> = Object.fromEntries(['.html', '.js', '.css', '.svg'].map((e) => [e, WEB_CONTENT_TYPES[e]!]));

const MAX_BODY = 16 * 1024;

/** `packages/miner/ui`, next to `src/` and `dist/`. */
export function defaultUiDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ui');
}

/** The browser builds the import map names, by their path under /ui/vendor/. */
export function vendorFiles(): Record<string, string> {
  return webVendorFiles(import.meta.url);
}

export function contentSecurityPolicy(html: string): string {
  return webContentSecurityPolicy(importMapHashes(html), { formAction: "'none'" });
}

interface Asset {
  body: Buffer;
  type: string;
}

function loadAssets(uiDir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const ext = (n: string): string => n.slice(n.lastIndexOf('.'));
  for (const name of readdirSync(uiDir)) {
    const p = join(uiDir, name);
    if (!name.startsWith('.') && statSync(p).isFile() && TYPES[ext(name)] !== undefined) out.set(`/ui/${name}`, { body: readFileSync(p), type: TYPES[ext(name)]! });
  }
  for (const [name, file] of Object.entries(vendorFiles())) out.set(`/ui/vendor/${name}`, { body: readFileSync(file), type: TYPES[ext(name)]! });
  return out;
}

/** Whether a Host header names this server on loopback (127.0.0.1, localhost or [::1], this port). */
export function isLoopbackHost(host: string | undefined, port: number): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase();
  return h === `127.0.0.1:${port}` || h === `localhost:${port}` || h === `[::1]:${port}`;
}

export interface ControlServerOptions {
  controller: MinerController;
  token: string;
  /** 0: any free port. */
  port: number;
  uiDir?: string;
}

export interface ControlServer {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  port: number;
  close(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

function send(res: ServerResponse, status: number, body: Buffer | string, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-store', ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, extra: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8', extra);
}

function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message, ...extra } }, headers);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new RangeError(`the body is larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the control server on 127.0.0.1. Rejects if the port is taken. */
export async function startControlServer(o: ControlServerOptions): Promise<ControlServer> {
  const assets = loadAssets(o.uiDir ?? defaultUiDir());
  const index = assets.get('/ui/index.html');
  if (index === undefined) throw new Error('miner control: the web page (ui/index.html) is missing');
  const html = index.body.toString('utf8');
  const csp = contentSecurityPolicy(html);
  const c = o.controller;
  let port = 0;

  const api = async (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> => {
    if (!tokenMatches(o.token, bearerToken(req.headers.authorization))) {
      return sendError(res, 401, 'unauthorized', 'a valid control token is required: Authorization: Bearer <the token in the miner\'s .control-token file>', {}, { 'www-authenticate': 'Bearer realm="cgn-miner-control"' });
    }
    const route = `${req.method ?? ''} ${path}`;
    switch (route) {
      case 'GET /api/status':
        return sendJson(res, 200, c.status());
      case 'GET /api/logs': {
        const after = Number(query.get('after') ?? 0);
        return sendJson(res, 200, { lines: c.logLines(Number.isSafeInteger(after) && after >= 0 ? after : 0) });
      }
      case 'GET /api/settings':
        return sendJson(res, 200, c.settings);
      case 'PUT /api/settings': {
        if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return sendError(res, 415, 'unsupported_media_type', 'send the settings as application/json');
        let json: unknown;
        try {
          json = JSON.parse(await readBody(req));
        } catch (err) {
          return sendError(res, err instanceof RangeError ? 413 : 400, err instanceof RangeError ? 'too_large' : 'bad_request', err instanceof RangeError ? err.message : `the body is not JSON: ${(err as Error).message}`);
        }
        try {
          return sendJson(res, 200, c.updateSettings(json));
        } catch (err) {
          if (err instanceof SettingsError) return sendError(res, 400, err.code, err.message, { field: err.field });
          throw err;
        }
      }
      case 'POST /api/pause':
        c.pause();
        return sendJson(res, 200, c.status());
      case 'POST /api/resume':
        c.resume();
        return sendJson(res, 200, c.status());
      case 'POST /api/stop': {
        // Answers at once (draining may take a while); the page follows the state.
        c.stop().catch((err: unknown) => c.logs.push({ level: 'error', msg: `stop failed: ${(err as Error).message}`, fields: {}, time: Date.now() }));
        return sendJson(res, 202, c.status());
      }
      case 'POST /api/start': {
        c.startMiner().catch((err: unknown) => c.logs.push({ level: 'error', msg: `start failed: ${(err as Error).message}`, fields: {}, time: Date.now() }));
        return sendJson(res, 202, c.status());
      }
      default:
        if (['/api/status', '/api/logs', '/api/settings', '/api/pause', '/api/resume', '/api/stop', '/api/start'].includes(path)) {
          return sendError(res, 405, 'method_not_allowed', `${req.method ?? ''} is not allowed on ${path}`);
        }
        return sendError(res, 404, 'not_found', `no API route ${path.slice(0, 100)}`);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!isLoopbackHost(req.headers.host, port)) {
      return sendError(res, 421, 'misdirected', `this miner control app answers only as 127.0.0.1:${port} or localhost:${port}`);
    }
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const path = url.pathname;
    if (path.startsWith('/api/')) return api(req, res, path, url.searchParams);
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'method_not_allowed', 'the page is GET only');
    if (path === '/' || path === '/index.html') return send(res, 200, index.body, 'text/html; charset=utf-8', { 'content-security-policy': csp });
    const a = assets.get(path);
    if (a === undefined || path === '/ui/index.html') return sendError(res, 404, 'not_found', `no file ${path.slice(0, 100)}`);
    return send(res, 200, a.body, a.type, { 'content-security-policy': csp });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof ControlActionError) return sendError(res, 409, err.code, err.message);
      sendError(res, 500, 'internal', `the control app failed: ${(err as Error).message}`);
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}
