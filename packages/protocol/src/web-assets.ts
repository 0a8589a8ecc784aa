/**
 * What CGN's two web apps (central's dashboard and account pages, the miner's control app) share:
 * the content types they serve, the browser builds of Preact, htm and uPlot found in node_modules
 * (no bundler, no CDN: `npm install` is the whole build), and a strict Content-Security-Policy
 * that allows scripts from the server only, plus each inline import map by its SHA-256 (an import
 * map must be inline, and a hash allows exactly it and nothing else).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const WEB_CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

/**
 * The directory of the npm package `name` as the module at `fromUrl` resolves it (found upwards
 * from its entry point), so each app finds its own dependencies.
 */
export function installedPackageDir(name: string, fromUrl: string): string {
  let dir = dirname(createRequire(fromUrl).resolve(name));
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
    if (up === dir) throw new Error(`cannot find the package directory of ${name}; run npm install`);
    dir = up;
  }
}

/** The browser builds both apps' import maps name (Preact, its hooks, htm, uPlot), by file name under `vendor/`. */
export function webVendorFiles(fromUrl: string): Record<string, string> {
  const preact = installedPackageDir('preact', fromUrl);
  const htm = installedPackageDir('htm', fromUrl);
  const uplot = installedPackageDir('uplot', fromUrl);
  return {
    'preact.module.js': join(preact, 'dist', 'preact.mjs'),
    'hooks.module.js': join(preact, 'hooks', 'dist', 'hooks.mjs'),
    'htm.module.js': join(htm, 'dist', 'htm.module.js'),
    'uPlot.esm.js': join(uplot, 'dist', 'uPlot.esm.js'),
    'uPlot.min.css': join(uplot, 'dist', 'uPlot.min.css'),
  };
}

/** The SHA-256 CSP source of each inline `<script type="importmap">` in an HTML page. */
export function importMapHashes(html: string): string[] {
  return [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`);
}

/**
 * The pages' Content-Security-Policy: everything from this origin only, scripts also the given
 * import-map hashes. `formAction` is where forms may post (`'none'` for an app that posts none).
 */
export function webContentSecurityPolicy(scriptHashes: readonly string[], options: { formAction: "'self'" | "'none'"; fonts?: boolean }): string {
  return [
    "default-src 'none'",
    `script-src 'self'${scriptHashes.map((h) => ` ${h}`).join('')}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    ...(options.fonts === true ? ["font-src 'self'"] : []),
    "base-uri 'none'",
    `form-action ${options.formAction}`,
    "frame-ancestors 'none'",
  ].join('; ');
}
