import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRunDir, sweepStaleRunDirs } from './run-dir.js';
import { tempDir } from '../test/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('run directories', () => {
  it('a fresh one holds the miner pid; a configured one is used as is', () => {
    const own = createRunDir(null);
    try {
      expect(own.own).toBe(true);
      expect(readFileSync(join(own.path, 'miner.pid'), 'utf8').trim()).toBe(String(process.pid));
    } finally {
      rmSync(own.path, { recursive: true, force: true });
    }
    const configured = createRunDir(join(tmp.path, 'configured/run'));
    expect(configured).toEqual({ path: join(tmp.path, 'configured/run'), own: false });
    expect(existsSync(configured.path)).toBe(true);
  });

  it('removes the run directories of dead miners only', () => {
    const mk = (name: string, pid: string | null): string => {
      const d = join(tmp.path, name);
      mkdirSync(join(d, 'echo'), { recursive: true });
      if (pid !== null) writeFileSync(join(d, 'miner.pid'), pid);
      return d;
    };
    const dead = mk('cgn-miner-dead', '2147483646');
    const live = mk('cgn-miner-live', String(process.ppid));
    const foreign = mk('cgn-miner-nopid', null);
    const other = mk('something-else', '2147483646');
    expect(sweepStaleRunDirs(tmp.path)).toEqual([dead]);
    expect(existsSync(dead)).toBe(false);
    for (const d of [live, foreign, other]) expect(existsSync(d)).toBe(true);
  });
});
