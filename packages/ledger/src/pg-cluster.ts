/**
 * A throwaway PostgreSQL cluster in a temp dir on a free port, for tests and benchmarks.
 *
 * Finds `initdb`/`pg_ctl` under /usr/lib/postgresql/<highest>/bin or on PATH. PostgreSQL refuses
 * to run as root, so when we are root the cluster's directory is given to the `postgres` OS user
 * (created by the Debian package) and the binaries run through `runuser -u postgres`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PostgresCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  dir: string;
  /** Stops the server (immediate) and removes its directory. Idempotent. */
  stop(): void;
}

/** The directory holding initdb and pg_ctl, or null when PostgreSQL is not installed. */
export function findPostgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(join(root, v, 'bin', 'pg_ctl')) && existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' });
  const p = which.stdout.trim();
  return which.status === 0 && p !== '' ? p.replace(/\/pg_ctl$/, '') : null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function startPostgresCluster(options: { fsync?: boolean; settings?: Record<string, string> } = {}): Promise<PostgresCluster> {
  const bin = findPostgresBin();
  if (bin === null) throw new Error('PostgreSQL server binaries (initdb, pg_ctl) are not installed (apt-get install postgresql)');
  const asRoot = process.getuid?.() === 0;
  // As root the cluster runs as `postgres`, which must reach the directory: use /tmp (world-
  // traversable) rather than a TMPDIR that may sit under /root.
  const dir = mkdtempSync(join(asRoot && existsSync('/tmp') ? '/tmp' : tmpdir(), 'cgn-pg-'));
  const run = (cmd: string, args: string[]): void => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  let started = false;
  const stop = (): void => {
    if (started) {
      started = false;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
    process.off('exit', stop);
  };
  try {
    run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    const port = await freePort();
    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      port: String(port),
      unix_socket_directories: dir,
      fsync: options.fsync === false ? 'off' : 'on',
      max_connections: '50',
      shared_buffers: '128MB',
      ...options.settings,
    };
    const o = Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`).join(' ');
    run('pg_ctl', ['-D', data, '-o', o, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    started = true;
    process.on('exit', stop);
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, dir, stop };
  } catch (err) {
    stop();
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`could not start a PostgreSQL test cluster: ${e.message}${e.stderr ? `\n${e.stderr.toString()}` : ''}`);
  }
}
