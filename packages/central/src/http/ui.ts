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
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

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

/** The package directory of an installed npm package, found from its resolved entry point. */
function packageDir(name: string): string {
  const req = createRequire(import.meta.url);
  let dir = dirname(req.resolve(name));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === name) return dir;
      } catch {
        /* not this one */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`ui: cannot find the package directory of ${name}; run npm install`);
    dir = up;
  }
}

/** The browser builds the import map names, by their URL under /ui/vendor/. */
export function vendorFiles(): Record<string, string> {
  const preact = packageDir('preact');
  const htm = packageDir('htm');
  const uplot = packageDir('uplot');
  const uqr = packageDir('uqr');
  return {
    'preact.module.js': join(preact, 'dist', 'preact.mjs'),
    'hooks.module.js': join(preact, 'hooks', 'dist', 'hooks.mjs'),
    'htm.module.js': join(htm, 'dist', 'htm.module.js'),
    'uPlot.esm.js': join(uplot, 'dist', 'uPlot.esm.js'),
    'uPlot.min.css': join(uplot, 'dist', 'uPlot.min.css'),
    // QR codes (TOTP enrolment on the account pages).
    'uqr.module.js': join(uqr, 'dist', 'index.mjs'),
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

/** The SHA-256 CSP source of each inline `<script type="importmap">` in an HTML page. */
export function importMapHashes(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)) {
    out.push(`'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`);
  }
  return out;
}

export function contentSecurityPolicy(scriptHashes: string[]): string {
  return [
    "default-src 'none'",
    `script-src 'self'${scriptHashes.map((h) => ` ${h}`).join('')}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
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
