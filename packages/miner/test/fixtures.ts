/**
 * Shared test fixtures: paths, temp dirs, a silent logger, the echo DService (built on demand),
 * and small throwaway DService packages written into temp dirs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';

export const ROOT = resolve(import.meta.dirname, '../../..');
export const ECHO = join(ROOT, 'dservices/echo');

export const silent = (): ReturnType<typeof pino> => pino({ level: process.env['CGN_TEST_LOG'] ?? 'silent' });

/** Builds the echo DService if its entry is missing. */
export function ensureEchoBuilt(): void {
  if (!existsSync(join(ECHO, 'dist/server.js'))) {
    execFileSync('npx', ['tsc', '-b', 'dservices/echo'], { cwd: ROOT, stdio: 'inherit' });
  }
}

export function tempDir(prefix = 'cgn-miner-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * Writes a DService package whose handler body is `handler` (plain node:http, no SDK): an async
 * function of (req, body: Buffer) returning { status, headers?, body? }.
 */
export function writeDService(dir: string, name: string, handler: string, extra: Record<string, unknown> = {}): string {
  const pkg = join(dir, name);
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'dservice.json'), JSON.stringify({ name, version: '1.0.0', entry: 'server.mjs', concurrency: 4, ...extra }));
  writeFileSync(
    join(pkg, 'server.mjs'),
    `import { createServer } from 'node:http';
import { rmSync } from 'node:fs';
const handler = async (req, body) => { ${handler} };
const server = createServer((req, res) => {
  if (req.url === '/healthz') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); return; }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const out = await handler(req, Buffer.concat(chunks));
      const body = typeof out.body === 'string' ? Buffer.from(out.body) : (out.body ?? Buffer.alloc(0));
      res.writeHead(out.status ?? 200, { 'content-length': body.length, ...(out.headers ?? {}) });
      res.end(body);
    } catch (err) { res.writeHead(500); res.end(String(err)); }
  });
});
rmSync(process.env.CGN_SOCKET, { force: true });
server.listen(process.env.CGN_SOCKET);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
  );
  return pkg;
}
