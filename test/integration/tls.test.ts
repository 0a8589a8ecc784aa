/**
 * TLS on the node's public paths, over real sockets and real miner processes: the work endpoint
 * serves HTTPS and the miner endpoint WSS from a certificate given to the node; a miner trusts it
 * through a CA file or a pinned fingerprint and refuses anything else (it never sends its hello);
 * renewed certificate files are picked up without dropping open connections.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch as undiciFetch } from 'undici';
import { issueCert } from '@cgn/central';
import { describeCert } from '@cgn/protocol';
import { ECHO, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

describe('TLS on the work and miner endpoints', () => {
  const tmp = tempDir('cgn-tls-');
  const pki = join(tmp.path, 'pki');
  const live = join(tmp.path, 'live');
  let t: TestNode;
  let ca: Buffer;
  let agent: Agent;
  const miners: MinerProcess[] = [];

  beforeAll(async () => {
    mkdirSync(live, { recursive: true });
    issueCert(pki, 'public-1', 'localhost', ['localhost', '127.0.0.1']);
    copyFileSync(join(pki, 'public-1.crt'), join(live, 'node.crt'));
    copyFileSync(join(pki, 'public-1.key'), join(live, 'node.key'));
    ca = (await import('node:fs')).readFileSync(join(pki, 'ca.crt'));
    agent = new Agent({ connect: { ca } });
    t = await startTestNode({ dservices: [ECHO], tls: { certFile: join(live, 'node.crt'), keyFile: join(live, 'node.key') } });
  });

  afterAll(async () => {
    for (const m of miners) m.kill('SIGKILL');
    await agent?.close();
    await t?.cleanup();
    tmp.cleanup();
  });

  const spawn = (name: string, args: string[]) => {
    const m = spawnMiner(t.node.minerUrl, tmp.path, { name, args });
    miners.push(m);
    return m;
  };

  it('serves https:// and wss:// URLs, and work over them end to end', async () => {
    expect(t.node.workUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1\/d\/$/);
    expect(t.node.minerUrl).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    const m = spawn('trusting', ['--ca-file', join(pki, 'ca.crt')]);
    await waitFor(() => minersOf(t.node).some((x) => x.id === m.id), 'the miner that trusts the CA to join');
    const res = await undiciFetch(t.url('echo', '/'), { method: 'POST', body: 'over tls', headers: { authorization: `Bearer ${t.apiKey}` }, dispatcher: agent });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('over tls');
  });

  it('a miner that cannot verify the certificate, or sees another than it pinned, never joins', async () => {
    const connections = () => (t.node.status() as { counters: { tunnels: { connections: number } } }).counters.tunnels.connections;
    const before = connections();
    const untrusting = spawn('untrusting', []);
    await waitFor(() => /cannot verify the node's certificate/.test(untrusting.stderr()), 'the miner without a CA to refuse the node');
    // It stopped at the TLS handshake: no WebSocket reached the node, so no hello either.
    expect(connections()).toBe(before);
    // The wrong pin is found after the handshake, before the WebSocket opens: hello never goes out.
    const wrongPin = spawn('wrong-pin', ['--pin-sha256', 'AB'.repeat(32)]);
    await waitFor(() => /not the pinned one/.test(wrongPin.stderr()), 'the miner with a wrong pin to refuse the node');
    for (const m of [untrusting, wrongPin]) expect(minersOf(t.node).map((x) => x.id)).not.toContain(m.id);
    expect(untrusting.stderr() + wrongPin.stderr()).not.toMatch(/connected to the node|welcome/i);
  });

  it('a miner with the right pin (and no CA) joins', async () => {
    const pin = describeCert((await import('node:fs')).readFileSync(join(live, 'node.crt'))).sha256;
    const m = spawn('pinned', ['--pin-sha256', pin.replace(/:/g, '').toLowerCase()]);
    await waitFor(() => minersOf(t.node).some((x) => x.id === m.id), 'the pinned miner to join');
  });

  it('plain HTTP to the TLS port gets nothing it can use', async () => {
    const url = t.node.workUrl.replace('https://', 'http://');
    const res = await fetch(`${url}echo/`, { method: 'POST', body: 'x' }).catch((e: unknown) => e);
    expect(res instanceof Response ? res.status : 0).not.toBe(200);
  });

  it('picks up renewed certificate files without dropping an open connection', async () => {
    const port = Number(new URL(t.node.workUrl).port);
    const old = describeCert((await import('node:fs')).readFileSync(join(live, 'node.crt'))).sha256;
    // One keep-alive connection, opened before the renewal.
    const sock: TLSSocket = await new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
    const ask = (path: string) =>
      new Promise<string>((resolve) => {
        let buf = '';
        const onData = (d: Buffer) => {
          buf += d.toString();
          if (/\r\n\r\n[\s\S]*\}$/.test(buf)) {
            sock.off('data', onData);
            resolve(buf);
          }
        };
        sock.on('data', onData);
        sock.write(`GET ${path} HTTP/1.1\r\nhost: localhost\r\nconnection: keep-alive\r\n\r\n`);
      });
    expect(await ask('/v1/status')).toMatch(/^HTTP\/1\.1 200/);
    // Renew: a new certificate from the same CA replaces the files (key first, then cert).
    issueCert(pki, 'public-2', 'localhost', ['localhost', '127.0.0.1']);
    copyFileSync(join(pki, 'public-2.key'), join(live, 'node.key'));
    copyFileSync(join(pki, 'public-2.crt'), join(live, 'node.crt'));
    const renewed = describeCert((await import('node:fs')).readFileSync(join(live, 'node.crt'))).sha256;
    expect(renewed).not.toBe(old);
    const presented = () =>
      new Promise<string>((resolve, reject) => {
        const r = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost', agent: false }, (res) => {
          resolve((res.socket as TLSSocket).getPeerCertificate().fingerprint256);
          res.resume();
        });
        r.once('error', reject);
        r.end();
      });
    await waitFor(async () => (await presented()) === renewed, 'new connections to get the renewed certificate', 15_000);
    // The connection opened before still works, with the certificate it started with.
    expect(sock.getPeerCertificate().fingerprint256).toBe(old);
    expect(await ask('/v1/status')).toMatch(/^HTTP\/1\.1 200/);
    sock.destroy();
  });
});
