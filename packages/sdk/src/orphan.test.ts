/**
 * A DService run by a miner (on a socket) exits when its miner dies without stopping it
 * (SIGKILL, OOM), instead of living on as an orphan nobody serves through.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const SDK = pathToFileURL(resolve(import.meta.dirname, '../dist/index.js')).href;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a DService whose miner died', () => {
  it('exits instead of living on as an orphan', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-orphan-'));
    const socket = join(dir, 'http.sock');
    // The "miner": starts the DService and reports its pid once it listens, then waits to be killed.
    const child = `import { serveDService } from ${JSON.stringify(SDK)};
      await serveDService(() => ({ status: 200, body: 'ok' }));
      process.send ? 0 : process.stdout.write('listening\\n');`;
    const parent = `const { spawn } = require('node:child_process');
      const c = spawn(process.execPath, ['--input-type=module', '-e', ${JSON.stringify(child)}], { env: { ...process.env, CGN_SOCKET: ${JSON.stringify(socket)} }, stdio: ['ignore', 'pipe', 'inherit'] });
      c.stdout.on('data', () => process.stdout.write(c.pid + '\\n'));
      setInterval(() => {}, 1000);`;
    const miner = spawn(process.execPath, ['-e', parent], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const pid = await new Promise<number>((res, rej) => {
        miner.stdout.once('data', (d: Buffer) => res(Number(d.toString().trim())));
        miner.once('exit', () => rej(new Error('the parent exited before the DService listened')));
      });
      expect(alive(pid)).toBe(true);
      miner.kill('SIGKILL');
      await until(() => !alive(pid), 'the orphaned DService to exit');
    } finally {
      miner.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
