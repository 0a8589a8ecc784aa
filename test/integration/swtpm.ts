/**
 * A software TPM for tests: one `swtpm socket` process with its own state directory, on a free
 * pair of TCP ports (server P, control P+1), driven with tpm2-tools through `swtpm:port=P`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Swtpm {
  port: number;
  tcti: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** Why swtpm-backed tests cannot run here, or null when they can. */
export function swtpmMissing(): string | null {
  for (const tool of ['swtpm', 'tpm2_quote', 'tpm2_createak']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (apt-get install swtpm swtpm-tools tpm2-tools)`;
  }
  return null;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

export async function startSwtpm(): Promise<Swtpm> {
  const dir = mkdtempSync(join(tmpdir(), 'cgn-swtpm-'));
  let port = 0;
  for (let tries = 0; port === 0; tries++) {
    const p = 20_000 + Math.floor(Math.random() * 20_000) * 2;
    if ((await portFree(p)) && (await portFree(p + 1))) port = p;
    if (tries > 50) throw new Error('no free port pair for swtpm');
  }
  const proc = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${dir}`, '--server', `type=tcp,port=${port}`, '--ctrl', `type=tcp,port=${port + 1}`, '--flags', 'not-need-init,startup-clear'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const until = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (proc.exitCode !== null) throw new Error(`swtpm exited: ${err}`);
    if (Date.now() > until) throw new Error(`swtpm did not listen on ${port} within 10 s: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    tcti: `swtpm:port=${port}`,
    proc,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
