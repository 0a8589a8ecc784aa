/**
 * The local network's attested miner: a software TPM (swtpm, state under `<dir>/tpm`, so its
 * attestation key survives restarts), the miner's key, its attestation key and runtime registered
 * at central, and the arguments `cgn miner` needs to run as `--tier attested --tpm swtpm:port=P`.
 * Without swtpm and tpm2-tools there is no attested miner, and `swtpmProblem` says why.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { registerDevAttestedMiner } from '@cgn/central';
import { Tpm, measureRuntime } from '@cgn/miner';
import { exportMinerKey, generateMinerKey, importMinerKey, minerIdOf } from '@cgn/protocol';

export interface DevAttestedMiner {
  swtpm: ChildProcess;
  swtpmExited: Promise<number | null>;
  tcti: string;
  keyFile: string;
  minerId: string;
  /** The owner of central's `dev-miners` account (kept in dev.json for the next run). */
  owner: { login: string; password: string };
  /** Arguments for `cgn miner` beyond the node, key, DServices and trust. */
  minerArgs: string[];
}

/** Why this machine cannot run an attested miner, or null when it can. */
export function swtpmProblem(): string | null {
  const missing = ['swtpm', 'tpm2_createak', 'tpm2_quote'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  return missing.length === 0 ? null : `${missing.join(', ')} not installed (apt-get install swtpm swtpm-tools tpm2-tools)`;
}

const free = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });

async function startSwtpm(stateDir: string, logFile: string): Promise<{ proc: ChildProcess; exited: Promise<number | null>; port: number }> {
  mkdirSync(stateDir, { recursive: true });
  let port = 0;
  for (let p = 2321; port === 0; p += 2) {
    if (p > 2421) throw new Error('no free pair of ports for swtpm in 2321-2422');
    if ((await free(p)) && (await free(p + 1))) port = p;
  }
  const proc = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${stateDir}`, '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--flags', 'not-need-init,startup-clear'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile, { flags: 'a' });
  proc.stdout!.pipe(log);
  proc.stderr!.pipe(log);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const until = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (proc.exitCode !== null) throw new Error(`swtpm exited (code ${proc.exitCode}); see ${logFile}`);
    if (Date.now() > until) throw new Error(`swtpm did not listen on port ${port} within 10 s; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, exited, port };
}

export async function startDevAttestedMiner(o: {
  dir: string;
  logs: string;
  centralUrl: string;
  admin: { login: string; password: string };
  ownerPassword?: string;
}): Promise<DevAttestedMiner> {
  const { proc, exited, port } = await startSwtpm(join(o.dir, 'tpm'), join(o.logs, 'swtpm.log'));
  try {
    const tcti = `swtpm:port=${port}`;
    const keyFile = join(o.dir, 'miners', 'miner-attested.pem');
    if (!existsSync(keyFile)) writeFileSync(keyFile, exportMinerKey(generateMinerKey()), { mode: 0o600 });
    const minerId = minerIdOf(importMinerKey(readFileSync(keyFile, 'utf8')).publicKey);
    const [attestationKey, runtime] = await Promise.all([new Tpm(tcti).attestationKey(), measureRuntime()]);
    const owner = await registerDevAttestedMiner({
      centralUrl: o.centralUrl, admin: o.admin, minerId, name: 'miner-attested', attestationKey, runtime: runtime.digest,
      ...(o.ownerPassword !== undefined ? { ownerPassword: o.ownerPassword } : {}),
    });
    return {
      swtpm: proc, swtpmExited: exited, tcti, keyFile, minerId, owner: { login: owner.ownerLogin, password: owner.ownerPassword },
      minerArgs: ['--tier', 'attested', '--tpm', tcti],
    };
  } catch (err) {
    proc.kill('SIGTERM');
    throw err;
  }
}
