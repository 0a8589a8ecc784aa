/**
 * A package published at central reaches a miner through the node (issue 16, 1), over real
 * processes: central stores the uploaded archive; the approved descriptor the node fetches over
 * its link says there is a package; a node that was given no DService directory fetches the
 * archive from central over the link when a miner asks for it, checks its digest, and the miner
 * (started with no --dservice) runs it and serves work for it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDevPki, setupDevNetwork, SqliteCentralStore, startTestCentral, TEST_ADMIN, type TestCentral } from '@cgn/central';
import { packToBuffer } from '@cgn/miner';
import type { PlacedFrame } from '@cgn/protocol';
import { ECHO, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

describe('a package published at central, placed on a miner through a node without the DService', () => {
  const tmp = tempDir('cgn-pkg-central-');
  const pki = join(tmp.path, 'pki');
  let central: TestCentral;
  let t: TestNode;
  let miner: MinerProcess;
  let apiKey: string;
  let digest: string;
  let sizeBytes: number;
  const placed: PlacedFrame[] = [];

  beforeAll(async () => {
    const p = ensureDevPki(pki, ['node-pkg-1']);
    central = await startTestCentral({
      dataDir: join(tmp.path, 'central'),
      store: new SqliteCentralStore({ path: join(tmp.path, 'central.sqlite') }),
      link: { tls: { key: p.central.key, cert: p.central.cert, ca: p.ca }, statusIntervalMs: 200 },
    });
    // The node knows no DService by itself; placement is driven by this test.
    t = await startTestNode({ nodeId: 'node-pkg-1', dservices: [], central: { port: 0, pkiDir: pki, keyTtlMs: 5000 }, placement: { enabled: false, probe: false } });
    t.node.placement.on('placed', (_id, f) => placed.push(f));
    // echo under its own name, as a developer would publish it.
    const dir = join(tmp.path, 'echo-remote');
    cpSync(ECHO, dir, { recursive: true, filter: (src) => !src.includes('node_modules') });
    const desc = JSON.parse(readFileSync(join(dir, 'dservice.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'dservice.json'), JSON.stringify({ ...desc, name: 'echo-remote' }));
    const packed = await packToBuffer(dir);
    digest = packed.digest;
    sizeBytes = packed.sizeBytes;
    const setup = await setupDevNetwork({
      centralUrl: central.url,
      admin: TEST_ADMIN,
      nodes: [{ id: 'node-pkg-1', urls: { work: t.node.workUrl, miner: t.node.minerUrl, status: t.node.statusUrl, central: t.node.centralLinkUrl! } }],
      dservices: [{ descriptor: JSON.parse(readFileSync(join(dir, 'dservice.json'), 'utf8')) as Record<string, unknown>, digest }],
    });
    apiKey = setup.demo.apiKey;
    const up = await fetch(`${central.url}/v1/dservices/echo-remote/0.1.0/package`, { method: 'PUT', body: packed.archive, headers: { authorization: `Bearer ${central.admin.token}`, 'content-type': 'application/gzip' } });
    expect(up.status, await up.clone().text()).toBe(201);
    await waitFor(() => t.node.packages.lookup('echo-remote') !== null, 'the node to hear of the package from central');
    miner = spawnMiner(t.node.minerUrl, tmp.path, { dservices: [], args: ['--package-cache-dir', join(tmp.path, 'cache'), '--no-control'] });
    await waitFor(() => minersOf(t.node).some((m) => m.id === miner.id), `the miner to join (${miner.stderr().slice(-400)})`);
  });

  afterAll(async () => {
    miner?.kill('SIGKILL');
    await miner?.exited;
    await t.cleanup();
    await central.stop().catch(() => undefined);
    tmp.cleanup();
  });

  it('the node knows the package from the approved descriptor, not from a directory', () => {
    expect(t.node.packages.lookup('echo-remote')).toEqual({ name: 'echo-remote', version: '0.1.0', digest, sizeBytes, packagePath: `/v1/packages/${digest}` });
    expect(t.node.packages.counters.fetchedFromCentral).toBe(0);
  });

  it('placed, the miner gets the archive through the node (fetched from central once, digest checked) and serves work', async () => {
    t.node.placement.place(miner.id, 'remote-1', 'echo-remote');
    await waitFor(() => placed.some((f) => f.instanceId === 'remote-1'), `placed (${miner.stderr().slice(-800)})`, 60_000);
    expect(placed.find((f) => f.instanceId === 'remote-1')).toMatchObject({ ok: true, fetched: true, digest });
    expect(t.node.packages.counters.fetchedFromCentral).toBe(1);
    await waitFor(() => minersOf(t.node).find((m) => m.id === miner.id)?.dservices.includes('echo-remote') === true, 'the miner to advertise echo-remote');
    const res = await fetch(t.url('echo-remote', '/x'), { method: 'POST', body: 'from central', headers: { authorization: `Bearer ${apiKey}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('from central');
  });
});
