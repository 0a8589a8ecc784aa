/**
 * The web app's static serving over real HTTP: the page and its import map under a strict CSP,
 * the vendor modules from node_modules with JavaScript content types, 304s on a matching ETag,
 * and a 404 (never a file outside the app) for everything else under /ui/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { startTestCentral, type TestCentral } from '../testing.js';

let c: TestCentral;
beforeAll(async () => {
  c = await startTestCentral();
});
afterAll(async () => {
  await c?.stop();
});

const get = (path: string, headers: Record<string, string> = {}) => fetch(c.url + path, { headers, redirect: 'manual' });

describe('the web app at /ui/', () => {
  it('serves index.html with a CSP that allows its own scripts and exactly its import map', async () => {
    const r = await get('/ui/');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await r.text();
    const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(html)![1]!;
    const hash = createHash('sha256').update(map).digest('base64');
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain(`script-src 'self' 'sha256-${hash}'`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    // Every module the import map names is served, as JavaScript.
    for (const url of Object.values((JSON.parse(map) as { imports: Record<string, string> }).imports)) {
      const m = await get(url);
      expect(m.status, url).toBe(200);
      expect(m.headers.get('content-type'), url).toMatch(/^text\/javascript/);
    }
  });

  it('redirects / and /ui to /ui/', async () => {
    for (const p of ['/', '/ui']) {
      const r = await get(p);
      expect([301, 302]).toContain(r.status);
      expect(r.headers.get('location')).toBe('/ui/');
    }
  });

  it('serves the app modules and styles with their types and answers 304 to a matching ETag', async () => {
    const js = await get('/ui/app.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.headers.get('cache-control')).toBe('no-cache');
    const again = await get('/ui/app.js', { 'if-none-match': js.headers.get('etag')! });
    expect(again.status).toBe(304);
    const css = await get('/ui/vendor/uPlot.min.css');
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(css.headers.get('cache-control')).toMatch(/max-age/);
    expect((await get('/ui/pages/account/index.js')).status).toBe(200);
  });

  it('answers 404 problem+json for anything else under /ui/, including paths that climb out', async () => {
    for (const p of ['/ui/nope.js', '/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/..%2fsrc/http/ui.ts', '/ui/vendor/../../src/central.ts', '/ui/vendor/preact.js', '/ui/.hidden']) {
      const r = await get(p);
      expect(r.status, p).toBe(404);
      expect(r.headers.get('content-type'), p).toMatch(/^application\/problem\+json/);
    }
  });
});
