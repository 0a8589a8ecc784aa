/**
 * Central's web app (the operator dashboard and the account pages) at `/ui/`: the static files of
 * `packages/central/ui/` and the browser builds of its libraries (Preact, htm, uPlot) straight
 * from node_modules, mapped by the import map in `index.html`. No bundler and nothing fetched at
 * run time: `npm install` is the whole build.
 *
 * Every page answer carries a strict Content-Security-Policy: scripts only from this origin plus
 * the import map itself, allowed by its SHA-256 (an import map must be inline, and a hash is the
 * one way to allow exactly it and nothing else). Anything else under `/ui/` is a 404.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { WEB_CONTENT_TYPES, importMapHashes, installedPackageDir, webContentSecurityPolicy, webVendorFiles } from '@cgn/protocol';
import { fileURLToPath } from 'node:url';

const TYPES = WEB_CONTENT_TYPES;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  /** Cache-Control value. */
  cache: string;
}

/** The default UI directory: `packages/central/ui`, next to `src/` and `dist/`. */
export function defaultUiDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ui');
}

/** The browser builds the import map names, by their URL under /ui/vendor/. */
export function vendorFiles(): Record<string, string> {
  return {
    ...webVendorFiles(import.meta.url),
    // QR codes (TOTP enrolment on the account pages).
    'uqr.module.js': join(installedPackageDir('uqr', import.meta.url), 'dist', 'index.mjs'),
  };
}

const etagOf = (b: Buffer): string => `"${createHash('sha256').update(b).digest('base64url').slice(0, 22)}"`;

function asset(body: Buffer, ext: string, cache: string): Asset {
  return { body, type: TYPES[ext] ?? 'application/octet-stream', etag: etagOf(body), cache };
}

function extOf(path: string): string {
  const i = path.lastIndexOf('.');
  return i < 0 ? '' : path.slice(i).toLowerCase();
}

/** Every servable file under `dir` (known extensions, no dotfiles), keyed by its URL path below /ui/. */
function walk(dir: string, root = dir, out = new Map<string, Asset>()): Map<string, Asset> {
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, root, out);
    else if (st.isFile() && TYPES[extOf(name)] !== undefined) {
      out.set(relative(root, p).split(sep).join('/'), asset(readFileSync(p), extOf(name), 'no-cache'));
    }
  }
  return out;
}

export { importMapHashes };

export function contentSecurityPolicy(scriptHashes: string[]): string {
  return webContentSecurityPolicy(scriptHashes, { formAction: "'self'", fonts: true });
}

export interface UiOptions {
  /** Directory of the app's static files. Default: `packages/central/ui`. */
  dir?: string;
}

/**
 * Registers `GET /ui/*` (and `/` and `/ui` as redirects to `/ui/`). Files are read once, at start.
 */
export function installUi(app: FastifyInstance, options: UiOptions = {}): void {
  const dir = options.dir ?? defaultUiDir();
  const files = existsSync(dir) ? walk(dir) : new Map<string, Asset>();
  for (const [name, path] of Object.entries(vendorFiles())) {
    // Vendor files change only with `npm install`; an hour of caching is safe and saves requests.
    files.set(`vendor/${name}`, asset(readFileSync(path), extOf(name), 'public, max-age=3600'));
  }
  const index = files.get('index.html');
  const csp = contentSecurityPolicy(index ? importMapHashes(index.body.toString('utf8')) : []);

  const send = (req: FastifyRequest, reply: FastifyReply, a: Asset): FastifyReply => {
    void reply
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cache-control', a.cache)
      .header('etag', a.etag);
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.code(200).header('content-type', a.type).send(a.body);
  };
  const notFound = (reply: FastifyReply, what: string): FastifyReply =>
    reply
      .code(404)
      .header('content-type', 'application/problem+json; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(JSON.stringify({ type: 'urn:cgn:problem:not_found', title: 'Not found', status: 404, code: 'not_found', detail: `no file ${what.slice(0, 200)} in the web app; it starts at /ui/` }));

  app.get('/', async (_req, reply) => reply.redirect('/ui/', 302));
  app.get('/ui', async (_req, reply) => reply.redirect('/ui/', 301));
  app.get('/ui/*', async (req, reply) => {
    const rest = (req.params as { '*': string })['*'];
    const key = rest === '' ? 'index.html' : rest;
    // The map's keys are the only servable paths: "..", encoded or not, simply matches nothing.
    const a = files.get(key);
    if (a === undefined) return notFound(reply, `/ui/${rest}`);
    return send(req, reply, a);
  });
}
