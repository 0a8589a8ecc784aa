/**
 * `cgn dev` when a start goes wrong, over real processes: a port in use is named with its fix at
 * once, and a start that failed (or was killed half way) leaves a directory the next start uses.
 * Without a chain and miners, to stay fast: the point is central's state and the ports.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CGN_BIN, tempDir } from './harness.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs cgn dev until it prints `until` on stdout (then SIGINTs it) or exits on its own. */
function runDev(args: string[], until: RegExp | null, kill: 'SIGINT' | 'SIGKILL' = 'SIGINT'): Promise<Run> {
  const t0 = Date.now();
  // Its own process group, so a SIGKILLed start's children can be ended with it.
  const dev = spawn(process.execPath, [CGN_BIN, 'dev', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  dev.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: dev.stdout! }).on('line', (l) => {
    stdout += `${l}\n`;
    if (until !== null && until.test(l)) {
      if (kill === 'SIGKILL') process.kill(-dev.pid!, 'SIGKILL');
      else dev.kill('SIGINT');
    }
  });
  const timer = setTimeout(() => process.kill(-dev.pid!, 'SIGKILL'), 60_000);
  return new Promise((resolve) => dev.once('exit', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr, ms: Date.now() - t0 });
  }));
}

const FAST = ['--no-chain', '--miners', '0', '--work-port', '0', '--miner-port', '0'];

describe('cgn dev start-up', () => {
  it('names a central port in use with the fix, fast, and the same directory starts next time', async () => {
    const tmp = tempDir('cgn-devstart-');
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const failed = await runDev(['--dir', tmp.path, '--central-port', String(port), ...FAST], null);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain(`port ${port} (central) is in use: stop what uses it`);
      expect(failed.stderr).toContain('start with --central-port 0');
      expect(failed.ms).toBeLessThan(10_000);

      const ok = await runDev(['--dir', tmp.path, '--central-port', '0', ...FAST], /is up in/);
      expect(ok.stderr).not.toContain('unauthorized');
      expect(ok.code).toBe(0);
      for (const part of ['central', 'node', 'accounts']) expect(ok.stdout).toMatch(new RegExp(`✓ ${part} +\\d+\\.\\d s`));
    } finally {
      await new Promise((r) => taken.close(r));
      tmp.cleanup();
    }
  }, 90_000);

  it('a start killed after central made its administrator and demo accounts is followed by one that works; a wrong saved password says how to reset', async () => {
    const tmp = tempDir('cgn-devstart-');
    try {
      // Killed once central has the administrator and both demo accounts, before dev.json is written.
      // Without miners the rest of the start takes well under a millisecond, so the SIGKILL can land
      // after it finished (CI saw 'is up in' printed 0.0 s after the accounts): dev.json, if it was
      // written, is removed, which leaves the directory as a start killed in between would.
      const killed = await runDev(['--dir', tmp.path, '--central-port', '0', ...FAST], /✓ accounts/, 'SIGKILL');
      expect(killed.stdout).toContain('✓ accounts');
      expect(killed.code).toBe(null);
      rmSync(join(tmp.path, 'dev.json'), { force: true });

      const ok = await runDev(['--dir', tmp.path, '--central-port', '0', ...FAST], /is up in/);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);

      // A directory whose saved password central does not know (edited, or from elsewhere).
      const stateFile = join(tmp.path, 'dev-state.json');
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { admin: { password: string } };
      state.admin.password = 'Not-The-Password-1!';
      writeFileSync(stateFile, JSON.stringify(state));
      const refused = await runDev(['--dir', tmp.path, '--central-port', '0', ...FAST], /is up in/);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`rm -rf ${join(tmp.path, 'central')}`);
    } finally {
      tmp.cleanup();
    }
  }, 120_000);
});
