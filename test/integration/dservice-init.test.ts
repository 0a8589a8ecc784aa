/**
 * `cgn dservice init` makes a DService that works as it is: its own tests pass, its descriptor
 * obeys dservice.json's schema, and a real node and miner process serve it.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { dserviceSchema, parseDescriptor } from '@cgn/protocol';
import { CGN_BIN, minersOf, spawnMiner, startTestNode, tempDir, waitFor } from './harness.js';

const cgn = (args: string[], cwd?: string) => spawnSync(process.execPath, [CGN_BIN, ...args], { encoding: 'utf8', ...(cwd ? { cwd } : {}) });

describe('cgn dservice init', () => {
  it('scaffolds a DService whose tests pass and which a node and miner serve as it is', async () => {
    const tmp = tempDir('cgn-init-');
    const dir = join(tmp.path, 'thumbs');
    try {
      const init = cgn(['dservice', 'init', 'thumbs', '--dir', dir]);
      expect(init.status, init.stderr).toBe(0);
      expect(init.stdout).toContain('Created the DService "thumbs"');
      const descriptor = JSON.parse(readFileSync(join(dir, 'dservice.json'), 'utf8')) as unknown;
      expect(new Ajv().validate(dserviceSchema(), descriptor)).toBe(true);
      expect(parseDescriptor(descriptor).name).toBe('thumbs');
      expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies['@cgn/sdk']).toMatch(/^file:/);

      const own = spawnSync('npm', ['test'], { cwd: dir, encoding: 'utf8' });
      expect(own.status, own.stdout + own.stderr).toBe(0);
      expect(own.stdout).toMatch(/# pass 3/);

      const t = await startTestNode({ dservices: [dir] });
      const miner = spawnMiner(t.node.minerUrl, tmp.path, { dservices: [dir] });
      try {
        await waitFor(() => minersOf(t.node).length === 1, 'the miner with the new DService to join', 30_000);
        const auth = { authorization: `Bearer ${t.apiKey}` };
        const hello = await fetch(t.url('thumbs', '/hello?name=Ada'), { headers: auth });
        expect(hello.status, miner.stderr()).toBe(200);
        expect(await hello.json()).toEqual({ greeting: 'Hello, Ada!' });
        const upper = await fetch(t.url('thumbs', '/upper'), { method: 'POST', body: 'shout', headers: auth });
        expect(await upper.text()).toBe('SHOUT');
        const none = await fetch(t.url('thumbs', '/nope'), { headers: auth });
        expect(none.status).toBe(404);
        expect(await none.text()).toContain('try GET /hello');
      } finally {
        miner.kill('SIGKILL');
        await t.cleanup();
      }
    } finally {
      tmp.cleanup();
    }
  }, 90_000);

  it('prints what it made as JSON with --json', () => {
    const tmp = tempDir('cgn-init-');
    try {
      const dir = join(tmp.path, 'tiles');
      const init = cgn(['dservice', 'init', 'tiles', '--dir', dir, '--json']);
      expect(init.status, init.stderr).toBe(0);
      const out = JSON.parse(init.stdout) as { name: string; dir: string; files: string[] };
      expect(out.name).toBe('tiles');
      expect(out.dir).toBe(dir);
      expect(out.files).toContain('dservice.json');
    } finally {
      tmp.cleanup();
    }
  });

  it('refuses a name that is not a DService name and a directory that is not empty', () => {
    const tmp = tempDir('cgn-init-');
    try {
      const bad = cgn(['dservice', 'init', 'My_Service', '--dir', join(tmp.path, 'x')]);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain('"My_Service" cannot be a DService name');
      mkdirSync(join(tmp.path, 'full'));
      writeFileSync(join(tmp.path, 'full', 'keep.txt'), 'mine');
      const full = cgn(['dservice', 'init', 'ok', '--dir', join(tmp.path, 'full')]);
      expect(full.status).toBe(2);
      expect(full.stderr).toContain('exists and is not empty');
      expect(cgn(['dservice', 'init']).status).toBe(2);
    } finally {
      tmp.cleanup();
    }
  });
});
