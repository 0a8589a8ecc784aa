/**
 * A standalone node's API keys, managed with `cgn node keys` while the node runs: a key added is
 * served, a key revoked is refused within a second or so; a node with no keys says how to add one.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { CGN_BIN, ECHO, minersOf, spawnMiner, startTestNode, tempDir, waitFor } from './harness.js';

const cgn = (args: string[]) => spawnSync(process.execPath, [CGN_BIN, ...args], { encoding: 'utf8' });

describe('cgn node keys', () => {
  it('adds a key a running node serves, lists it, and revokes it', async () => {
    const tmp = tempDir('cgn-nodekeys-');
    const t = await startTestNode({ dservices: [ECHO] });
    const miner = spawnMiner(t.node.minerUrl, tmp.path, { dservices: [ECHO] });
    try {
      await waitFor(() => minersOf(t.node).length === 1, 'the miner to join', 30_000);
      const add = cgn(['node', 'keys', 'add', '--account', 'acme', '--data-dir', t.dir, '--json']);
      expect(add.status, add.stderr).toBe(0);
      const { key, id } = JSON.parse(add.stdout) as { key: string; id: string };
      const send = () => fetch(t.url('echo', '/'), { method: 'POST', body: 'hi', headers: { authorization: `Bearer ${key}` } });
      await waitFor(async () => (await send()).status === 200, 'the node to take the new key', 5000);
      expect(await (await send()).text()).toBe('hi');

      const list = cgn(['node', 'keys', 'list', '--data-dir', t.dir]);
      expect(list.stdout).toMatch(new RegExp(`${id} +acme`));

      const revoke = cgn(['node', 'keys', 'revoke', id, '--data-dir', t.dir]);
      expect(revoke.status, revoke.stderr).toBe(0);
      await waitFor(async () => (await send()).status === 401, 'the node to refuse the revoked key', 5000);
    } finally {
      miner.kill('SIGKILL');
      await t.cleanup();
      tmp.cleanup();
    }
  }, 90_000);

  it('a node started without keys or central says how to add one', async () => {
    const tmp = tempDir('cgn-nodekeys-');
    const node = spawn(process.execPath, [CGN_BIN, 'node', '--data-dir', tmp.path, '--work-port', '0', '--miner-port', '0', '--dservice', ECHO], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    node.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    try {
      await waitFor(() => err.includes('no API keys yet'), 'the warning', 30_000);
      expect(err).toContain(`cgn node keys add --account NAME --data-dir ${tmp.path}`);
    } finally {
      node.kill('SIGKILL');
      tmp.cleanup();
    }
  }, 60_000);
});
