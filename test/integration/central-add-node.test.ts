/**
 * `cgn central add-node` over real sockets: the certificate it issues and the directory entry it
 * makes are enough for central to dial the node over mutual TLS; the node runs with the printed flags.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { runAccountFromArgs, runCentralAddNodeFromArgs, runCentralFromArgs, type RunningCentral } from '@cgn/central';
import { startNode, type RunningNode } from '@cgn/node';
import { ECHO, tempDir, waitFor } from './harness.js';

function io(cwd: string, env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) },
      readStdin: async () => '', prompt: async () => null, env: { CGN_LOG_LEVEL: 'silent', ...env }, cwd,
    },
    out: () => out,
    err: () => err,
  };
}

const freePort = (): Promise<number> => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => resolve(p));
  });
});

describe('cgn central add-node', () => {
  it('issues the node its link certificate, registers it, and central dials the node started with the printed flags', async () => {
    const tmp = tempDir('cgn-addnode-');
    let central: RunningCentral | null = null;
    let node: RunningNode | null = null;
    try {
      const c = io(tmp.path);
      central = await runCentralFromArgs(['--port', '0', '--data-dir', 'central', '--pki', 'pki', '--make-pki', '--status-interval', '200'], c.io);
      expect(central, c.err()).not.toBeNull();
      const ready = JSON.parse(c.out().trim()) as { url: string; admin: { login: string; password: string } };
      const login = io(tmp.path, { CGN_PASSWORD: ready.admin.password });
      expect(await runAccountFromArgs(['login', '--login', 'admin', '--central', ready.url], login.io), login.err()).toBe(0);

      const denied = io(tmp.path);
      expect(await runCentralAddNodeFromArgs(['--id', 'edge-1', '--host', '127.0.0.1', '--pki', 'nowhere'], denied.io)).toBe(2);
      expect(denied.err()).toContain('no network CA in');

      const linkPort = await freePort();
      const add = io(tmp.path);
      const code = await runCentralAddNodeFromArgs(['--id', 'edge-1', '--host', '127.0.0.1', '--link-port', String(linkPort), '--region', 'eu-central', '--lat', '52.5', '--lon', '13.4', '--pki', 'pki'], add.io);
      expect(code, add.err()).toBe(0);
      const out = join(tmp.path, 'node-edge-1-pki');
      expect(add.out()).toContain(`cgn node --node-id edge-1 --central-port ${linkPort} --pki ${out}`);
      for (const f of ['ca.crt', 'node-edge-1.crt', 'node-edge-1.key']) expect(existsSync(join(out, f))).toBe(true);
      expect(statSync(join(out, 'node-edge-1.key')).mode & 0o777).toBe(0o600);
      expect(existsSync(join(out, 'ca.key'))).toBe(false);
      expect(existsSync(join(tmp.path, 'pki', 'node-edge-1.key'))).toBe(false);

      const again = io(tmp.path);
      expect(await runCentralAddNodeFromArgs(['--id', 'edge-1', '--host', '127.0.0.1', '--link-port', String(linkPort), '--out', 'second', '--pki', 'pki'], again.io)).toBe(1);
      expect(again.err()).toContain("node edge-1 is in central's directory already");
      expect(existsSync(join(tmp.path, 'second'))).toBe(false);

      // The node as the printed flags start it: its central link on --central-port with --pki.
      node = await startNode(
        { nodeId: 'edge-1', workPort: 0, minerPort: 0, dataDir: join(tmp.path, 'node'), dservices: [ECHO], central: { port: linkPort, pkiDir: out, keyTtlMs: 30_000 } },
        { log: pino({ level: 'silent' }) },
      );
      const { token } = (await (await fetch(`${ready.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ready.admin) })).json()) as { token: string };
      await waitFor(async () => {
        const res = await fetch(`${ready.url}/v1/nodes`, { headers: { authorization: `Bearer ${token}` } });
        const nodes = ((await res.json()) as { nodes: { id: string; health: string; region: string }[] }).nodes;
        return nodes.some((n) => n.id === 'edge-1' && n.health === 'up' && n.region === 'eu-central');
      }, 'central to reach edge-1 over mutual TLS and see it up', 20_000);
    } finally {
      await node?.stop(1000);
      await central?.stop();
      tmp.cleanup();
    }
  }, 60_000);
});
