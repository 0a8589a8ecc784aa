/**
 * DService packages travel through the network (issue 16, 1), over real processes: a node given
 * echo as a local directory packs it; a real `cgn miner` started with no --dservice is placed
 * echo, fetches the package from the node's miner endpoint, checks its digest, starts it in the
 * sandbox, answers `placed` and takes work for it; unplaced, it stops advertising echo; placed
 * again, it starts from its cache without a download.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { frame, type PlacedFrame } from '@cgn/protocol';
import { digestPackage } from '@cgn/miner';
import { ECHO, MEDIAGEN, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

describe('DService packages placed on a miner started without any DService', () => {
  let t: TestNode;
  let miner: MinerProcess;
  const tmp = tempDir();
  const placed: { minerId: string; f: PlacedFrame }[] = [];
  const cacheDir = join(tmp.path, 'cache');

  beforeAll(async () => {
    // The placement controller off: this test sends place/unplace itself (the controller's own test covers it).
    t = await startTestNode({ dservices: [ECHO, MEDIAGEN], placement: { enabled: false, probe: false } });
    t.node.placement.on('placed', (minerId, f) => placed.push({ minerId, f }));
    miner = spawnMiner(t.node.minerUrl, tmp.path, { dservices: [], args: ['--package-cache-dir', cacheDir, '--package-cache-mb', '64'] });
    await waitFor(() => minersOf(t.node).some((m) => m.id === miner.id), `the miner to join (stderr: ${miner.stderr().slice(-500)})`);
  });

  afterAll(async () => {
    miner.kill('SIGKILL');
    await miner.exited;
    await t.cleanup();
    tmp.cleanup();
  });

  const advertisesEcho = (): boolean => minersOf(t.node).find((m) => m.id === miner.id)?.dservices.includes('echo') === true;
  const packageBase = (): string => t.node.minerUrl.replace(/^ws/, 'http');

  it('joins with no DService, and the node packed its local echo with the miner digest', async () => {
    expect(minersOf(t.node).find((m) => m.id === miner.id)?.dservices).toEqual([]);
    const info = t.node.packages.lookup('echo');
    expect(info).not.toBeNull();
    expect(info!.digest).toBe(await digestPackage(ECHO));
    expect(info!.packagePath).toBe(`/v1/packages/${info!.digest}`);
    expect(t.node.packages.lookup('nope')).toBeNull();
    const status = (await (await fetch(t.node.statusUrl)).json()) as { packages: { available: { name: string; digest: string }[] } };
    expect(status.packages.available.map((p) => p.name).sort()).toEqual(['echo', 'mediagen']);
  });

  it('serves packages by digest, only on a placement\'s grant: without one 403 problem+json, an unknown digest 404, the WebSocket endpoint still says 426', async () => {
    const info = t.node.packages.lookup('echo')!;
    const stranger = await fetch(`${packageBase()}${info.packagePath}`);
    expect(stranger.status).toBe(403);
    expect(stranger.headers.get('content-type')).toBe('application/problem+json');
    expect(((await stranger.json()) as { detail: string }).detail).toMatch(/only to miners this node placed them on/);
    const unknown = await fetch(`${packageBase()}/v1/packages/${'0'.repeat(64)}?grant=${new URL(t.node.packages.grant(miner.id, 'probe-unknown', { digest: '0'.repeat(64), packagePath: '' }), 'http://x').searchParams.get('grant')}`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('application/problem+json');
    const bad = await fetch(`${packageBase()}/v1/packages/not-a-digest`);
    expect(bad.status).toBe(404);
    const other = await fetch(`${packageBase()}/`);
    expect(other.status).toBe(426);
    const ok = await fetch(`${packageBase()}${t.node.packages.grant(miner.id, 'probe-ok', info)}`);
    expect(ok.status).toBe(200);
    expect((await ok.arrayBuffer()).byteLength).toBe(info.sizeBytes);
  });

  it('place: the miner fetches, checks and starts echo, answers placed, advertises it and serves work', async () => {
    const served = t.node.packages.counters.served;
    const f = t.node.placement.place(miner.id, 'inst-1', 'echo');
    await waitFor(() => placed.some((p) => p.f.instanceId === 'inst-1'), `placed for inst-1 (stderr: ${miner.stderr().slice(-800)})`, 60_000);
    const answer = placed.find((p) => p.f.instanceId === 'inst-1')!;
    expect(answer.minerId).toBe(miner.id);
    expect(answer.f).toMatchObject({ ok: true, fetched: true, digest: f.digest });
    expect(answer.f.coldStartMs).toBeGreaterThan(0);
    expect(t.node.packages.counters.served).toBe(served + 1);
    expect(existsSync(join(cacheDir, f.digest, 'dservice.json'))).toBe(true);

    await waitFor(advertisesEcho, 'the miner to advertise echo');
    const res = await fetch(t.url('echo', '/anything'), { method: 'POST', body: 'placed echo', headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'text/plain' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('placed echo');
  });

  it('unplace stops it; placed again it starts from the cache without a download', async () => {
    t.node.placement.unplace(miner.id, 'inst-1', 'scaled down');
    await waitFor(() => !advertisesEcho(), 'the miner to stop advertising echo');
    const served = t.node.packages.counters.served;
    t.node.placement.place(miner.id, 'inst-2', 'echo');
    await waitFor(() => placed.some((p) => p.f.instanceId === 'inst-2'), 'placed for inst-2', 60_000);
    expect(placed.find((p) => p.f.instanceId === 'inst-2')!.f, miner.stderr().slice(-1500)).toMatchObject({ ok: true, fetched: false });
    expect(t.node.packages.counters.served).toBe(served);
    await waitFor(advertisesEcho, 'the miner to advertise echo again');
  });

  it('a place whose package is not what the node serves is answered ok:false with the reason, and the miner keeps serving', async () => {
    const info = t.node.packages.lookup('echo')!;
    // Through the node's own sender, with a wrong digest: the miner finds the mismatch itself.
    (t.node.placement as unknown as { send: (id: string, f: object) => void }).send(miner.id, frame({
      t: 'place', instanceId: 'inst-bad', name: 'echo2', version: '0.1.0', digest: 'a'.repeat(64), packagePath: t.node.packages.grant(miner.id, 'inst-bad', info), sizeBytes: info.sizeBytes,
    }));
    await waitFor(() => placed.some((p) => p.f.instanceId === 'inst-bad'), 'placed for inst-bad', 60_000);
    const bad = placed.find((p) => p.f.instanceId === 'inst-bad')!.f;
    expect(bad.ok).toBe(false);
    expect(bad.message).toMatch(/digest/);
    const res = await fetch(t.url('echo', '/'), { method: 'POST', body: 'still here', headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(res.status).toBe(200);
  });

  it('MediaGen placed from its package runs its native dependency (sharp) through the miner\'s node_modules', async () => {
    t.node.placement.place(miner.id, 'media-1', 'mediagen');
    await waitFor(() => placed.some((p) => p.f.instanceId === 'media-1'), `placed for media-1 (stderr: ${miner.stderr().slice(-800)})`, 60_000);
    expect(placed.find((p) => p.f.instanceId === 'media-1')!.f, miner.stderr().slice(-1500)).toMatchObject({ ok: true, fetched: true });
    await waitFor(() => minersOf(t.node).find((m) => m.id === miner.id)?.dservices.includes('mediagen') === true, 'the miner to advertise mediagen');
    const jpeg = readFileSync(join(MEDIAGEN, 'examples', 'sample.jpg'));
    const res = await fetch(t.url('mediagen', '/transform?width=64&format=webp'), { method: 'POST', body: jpeg, headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
  });
});
