/**
 * A package published at central reaches a miner through the node (issue 16, 1), over real
 * processes: central stores the uploaded archive; the approved descriptor the node fetches over
 * its link says there is a package; a node that was given no DService directory fetches the
 * archive from central over the link when a miner asks for it, checks its digest, and the miner
 * (started with no --dservice) runs it and serves work for it. First with this test sending
 * `place` itself, then with the node's placement controller doing it on the first request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDevPki, setupDevNetwork, SqliteCentralStore, startTestCentral, TEST_ADMIN, type TestCentral } from '@cgn/central';
import { packToBuffer } from '@cgn/miner';
import type { PlacedFrame } from '@cgn/protocol';
import { ECHO, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

interface World {
  central: TestCentral;
  t: TestNode;
  miner: MinerProcess;
  apiKey: string;
  digest: string;
  sizeBytes: number;
  placed: PlacedFrame[];
  cleanup(): Promise<void>;
}

/** Central with echo-remote published (package uploaded) and approved, a node without it, a miner without anything. */
async function publishedWorld(controller: boolean): Promise<World> {
  const tmp = tempDir('cgn-pkg-central-');
  const pki = join(tmp.path, 'pki');
  const nodeId = controller ? 'node-pkg-auto' : 'node-pkg-1';
  const p = ensureDevPki(pki, [nodeId]);
  const central = await startTestCentral({
    dataDir: join(tmp.path, 'central'),
    store: new SqliteCentralStore({ path: join(tmp.path, 'central.sqlite') }),
    link: { tls: { key: p.central.key, cert: p.central.cert, ca: p.ca }, statusIntervalMs: 200 },
  });
  const t = await startTestNode({ nodeId, dservices: [], central: { port: 0, pkiDir: pki, keyTtlMs: 5000 }, placement: controller ? { probe: false } : { enabled: false, probe: false } });
  const placed: PlacedFrame[] = [];
  t.node.placement.on('placed', (_id, f) => placed.push(f));
  // echo under its own name, as a developer would publish it.
  const dir = join(tmp.path, 'echo-remote');
  cpSync(ECHO, dir, { recursive: true, filter: (src) => !src.includes('node_modules') });
  const desc = JSON.parse(readFileSync(join(dir, 'dservice.json'), 'utf8')) as Record<string, unknown>;
  // Bodies up to 8 MiB: more than a node started without DServices of its own used to carry.
  writeFileSync(join(dir, 'dservice.json'), JSON.stringify({ ...desc, name: 'echo-remote', maxBodyBytes: 8 * 1024 * 1024 }));
  const packed = await packToBuffer(dir);
  const setup = await setupDevNetwork({
    centralUrl: central.url,
    admin: TEST_ADMIN,
    nodes: [{ id: nodeId, urls: { work: t.node.workUrl, miner: t.node.minerUrl, status: t.node.statusUrl, central: t.node.centralLinkUrl! } }],
    dservices: [{ descriptor: JSON.parse(readFileSync(join(dir, 'dservice.json'), 'utf8')) as Record<string, unknown>, digest: packed.digest }],
  });
  const up = await fetch(`${central.url}/v1/dservices/echo-remote/0.1.0/package`, { method: 'PUT', body: packed.archive, headers: { authorization: `Bearer ${central.admin.token}`, 'content-type': 'application/gzip' } });
  expect(up.status, await up.clone().text()).toBe(201);
  await waitFor(() => t.node.packages.lookup('echo-remote') !== null, 'the node to hear of the package from central');
  const miner = spawnMiner(t.node.minerUrl, tmp.path, { dservices: [], args: ['--package-cache-dir', join(tmp.path, 'cache'), '--no-control'] });
  await waitFor(() => minersOf(t.node).some((m) => m.id === miner.id), `the miner to join (${miner.stderr().slice(-400)})`);
  return {
    central, t, miner, apiKey: setup.demo.apiKey, digest: packed.digest, sizeBytes: packed.sizeBytes, placed,
    cleanup: async () => {
      miner.kill('SIGKILL');
      await miner.exited;
      await t.cleanup();
      await central.stop().catch(() => undefined);
      tmp.cleanup();
    },
  };
}

const work = (w: World, body: string) => fetch(w.t.url('echo-remote', '/x'), { method: 'POST', body, headers: { authorization: `Bearer ${w.apiKey}` } });

describe('a package published at central, placed on a miner through a node without the DService', () => {
  let w: World;
  beforeAll(async () => {
    w = await publishedWorld(false);
  });
  afterAll(async () => w?.cleanup());

  it('the node knows the package from the approved descriptor, not from a directory', () => {
    expect(w.t.node.packages.lookup('echo-remote')).toEqual({ name: 'echo-remote', version: '0.1.0', digest: w.digest, sizeBytes: w.sizeBytes, packagePath: `/v1/packages/${w.digest}` });
    expect(w.t.node.packages.counters.fetchedFromCentral).toBe(0);
  });

  it('placed, the miner gets the archive through the node (fetched from central once, digest checked) and serves work', async () => {
    w.t.node.placement.place(w.miner.id, 'remote-1', 'echo-remote');
    await waitFor(() => w.placed.some((f) => f.instanceId === 'remote-1'), `placed (${w.miner.stderr().slice(-800)})`, 60_000);
    expect(w.placed.find((f) => f.instanceId === 'remote-1')).toMatchObject({ ok: true, fetched: true, digest: w.digest });
    expect(w.t.node.packages.counters.fetchedFromCentral).toBe(1);
    await waitFor(() => minersOf(w.t.node).find((m) => m.id === w.miner.id)?.dservices.includes('echo-remote') === true, 'the miner to advertise echo-remote');
    const res = await work(w, 'from central');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('from central');
  });

  it('carries a body and result as large as the DService allows (8 MiB) although the node was started with no DService of its own', async () => {
    // The tunnel's frame limit was set at start from the local DServices only (none: 2 MiB), so a
    // 4 MiB result from central's DService closed the miner's tunnel.
    const body = 'x'.repeat(4 * 1024 * 1024);
    const res = await work(w, body);
    expect(res.status, await res.clone().text().then((t) => t.slice(0, 300))).toBe(200);
    expect((await res.text()).length).toBe(body.length);
    expect(minersOf(w.t.node).some((m) => m.id === w.miner.id)).toBe(true);
  });
});

describe('the same, with the node placing it on the first request (placement controller)', () => {
  let w: World;
  beforeAll(async () => {
    w = await publishedWorld(true);
  });
  afterAll(async () => w?.cleanup());

  it('a request for a published DService no miner runs is answered once the node placed it on the idle miner', async () => {
    expect(minersOf(w.t.node).find((m) => m.id === w.miner.id)?.dservices).toEqual([]);
    const res = await work(w, 'placed on demand');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('placed on demand');
    expect(w.placed.length).toBeGreaterThan(0);
    expect(w.placed[0]).toMatchObject({ ok: true, fetched: true, digest: w.digest });
    expect(w.placed.every((f) => f.ok)).toBe(true);
  });
});
