/**
 * The miner's run directory: where its DServices' sockets live. By default a fresh temporary
 * directory `cgn-miner-XXXXXX` with a `miner.pid` file; a miner that died without cleaning up
 * (SIGKILL, power loss) leaves one behind, and the next miner removes those whose pid is gone.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'cgn-miner-';
const PID_FILE = 'miner.pid';

export interface RunDir {
  path: string;
  /** Whether the miner made it (and removes it on stop). */
  own: boolean;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes default run directories of miners that are gone; returns the removed paths. */
export function sweepStaleRunDirs(base = tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(base).filter((n) => n.startsWith(PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = join(base, name);
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, PID_FILE), 'utf8').trim());
    } catch {
      continue; // not ours, or not a run dir
    }
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      /* someone else's to clean */
    }
  }
  return removed;
}

/** Uses `configured` (created if missing), or makes a fresh temporary run directory. */
export function createRunDir(configured: string | null): RunDir {
  if (configured !== null) {
    mkdirSync(configured, { recursive: true, mode: 0o700 });
    return { path: configured, own: false };
  }
  const path = mkdtempSync(join(tmpdir(), PREFIX));
  writeFileSync(join(path, PID_FILE), `${process.pid}\n`);
  return { path, own: true };
}
