/**
 * A running node attached to a real central over the mutual-TLS link: keys are checked with
 * central, a revoked key stops working within the cache TTL, and a node keeps serving the keys it
 * knows while central is down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ensureDevPki, setupDevNetwork, SqliteCentralStore, startTestCentral, TEST_ADMIN, testCall, type TestCentral } from '@cgn/central';
import { digestPackage } from '@cgn/miner';
import { ECHO, ScriptedMiner, startTestNode, tempDir, waitFor, type TestNode } from './harness.js';

describe('node with central', () => {
  const tmp = tempDir('cgn-central-');
  const pki = join(tmp.path, 'pki');
  let central: TestCentral;
  let t: TestNode;
  let miner: ScriptedMiner;
  let apiKey: string;
  let owner: { login: string; password: string };
  let demoAccountId: string;
  let echoDigest: string;

  const startCentralHere = () => {
    const p = ensureDevPki(pki, ['node-local-1']);
    return startTestCentral({
      store: new SqliteCentralStore({ path: join(tmp.path, 'central.sqlite') }),
      link: { tls: { key: p.central.key, cert: p.central.cert, ca: p.ca }, statusIntervalMs: 200 },
    });
  };
  const work = (key: string) => fetch(t.url('echo'), { method: 'POST', body: 'hi', headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    ensureDevPki(pki, ['node-local-1']);
    central = await startCentralHere();
    t = await startTestNode({ nodeId: 'node-local-1', central: { port: 0, pkiDir: pki, keyTtlMs: 5000 } });
    echoDigest = await digestPackage(ECHO);
    miner = new ScriptedMiner({ ack: true, answer: true, digests: { echo: echoDigest } });
    await miner.connect(t.node.minerUrl);
    const setup = await setupDevNetwork({
      centralUrl: central.url,
      admin: TEST_ADMIN,
      nodes: [{ id: 'node-local-1', urls: { work: t.node.workUrl, miner: t.node.minerUrl, status: t.node.statusUrl, central: t.node.centralLinkUrl! } }],
      dservices: [{ descriptor: JSON.parse(readFileSync(join(ECHO, 'dservice.json'), 'utf8')) as Record<string, unknown>, digest: echoDigest }],
    });
    apiKey = setup.demo.apiKey;
    owner = { login: setup.demo.ownerLogin, password: setup.demo.ownerPassword };
    demoAccountId = setup.demo.accountId;
    await waitFor(() => t.node.status()['central'] !== null && (t.node.status()['dservices'] as unknown[]).length === 1, 'central to approve echo on the node');
  });

  afterAll(async () => {
    miner.ws.close();
    await t.cleanup();
    await central.stop().catch(() => undefined);
    tmp.cleanup();
  });

  it('accepts a key central knows and refuses one it does not', async () => {
    const ok = await work(apiKey);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('hi');
    expect((await work('cgn_' + 'x'.repeat(32))).status).toBe(401);
  });

  it('routes no work to a miner whose DService digest is not the approved one', async () => {
    const impostor = new ScriptedMiner({ ack: true, answer: true, slots: 64, digests: { echo: 'f'.repeat(64) } });
    await impostor.connect(t.node.minerUrl);
    try {
      await waitFor(() => t.node.broker.snapshot().miners.some((m) => m.id === impostor.id), 'the impostor to join');
      expect(t.node.broker.snapshot().miners.find((m) => m.id === impostor.id)!.dservices).toEqual([]);
      for (let i = 0; i < 5; i++) expect((await work(apiKey)).status).toBe(200);
      expect(impostor.workIds()).toEqual([]);
    } finally {
      impostor.ws.close();
    }
  });

  it('routes only to DServices central approved', async () => {
    const res = await fetch(t.url('mediagen', '/info'), { method: 'POST', body: 'x', headers: { authorization: `Bearer ${apiKey}` } });
    expect(res.status).toBe(404);
  });

  it('a revoked key stops working within the cache TTL', async () => {
    const o = await central.login(owner.login, owner.password);
    const created = await o.call('POST', `/v1/accounts/${demoAccountId}/keys`, { name: 'short-lived' });
    expect(created.status).toBe(201);
    const key = created.body.key as string;
    expect((await work(key)).status).toBe(200);
    const revoked = await o.call('DELETE', `/v1/accounts/${demoAccountId}/keys/${created.body.id as string}`);
    expect(revoked.status).toBeLessThan(300);
    const revokedAt = Date.now();
    await waitFor(async () => (await work(key)).status === 401, 'the revoked key to be refused', 5000);
    expect(Date.now() - revokedAt).toBeLessThan(5000 + 1000);
  });

  it('keeps serving known keys while central is down, and refuses unknown ones with 503', async () => {
    // A fresh key, first used now: cached for the whole TTL (5 s) from here.
    const o = await central.login(owner.login, owner.password);
    const key = (await o.call('POST', `/v1/accounts/${demoAccountId}/keys`, { name: 'cached' })).body.key as string;
    expect((await work(key)).status).toBe(200);
    await central.stop();
    await waitFor(() => (t.node.status()['central'] as { connected: boolean }).connected === false, 'the link to drop');
    expect((await work(key)).status).toBe(200);
    const unknown = await work('cgn_' + 'y'.repeat(32));
    expect(unknown.status).toBe(503);
    // Central comes back (same store), dials the node again, and answers as before.
    central = await startCentralHere();
    await waitFor(() => (t.node.status()['central'] as { connected: boolean }).connected, 'central to dial the node again', 15_000);
    await waitFor(async () => (await work(apiKey)).status === 200, 'the key to work after the restart');
    expect((await testCall(central.url, null, 'GET', '/openapi.json')).status).toBe(200);
  });
});
