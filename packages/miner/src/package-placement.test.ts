import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { frame, type PlaceFrame, type PlacedFrame } from '@cgn/protocol';
import { createLog } from './log.js';
import { packToBuffer } from './package-archive.js';
import { PackageCache } from './package-cache.js';
import { MAX_INSTANCE_IDS, MAX_PLACED_DSERVICES, Placements, type PlacementHost } from './package-placement.js';
import type { DServicePackage } from './dservice-package.js';

const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'cgn-placement-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function packageOf(name: string, version: string): Promise<{ digest: string; archive: Buffer }> {
  const d = tmp();
  writeFileSync(join(d, 'dservice.json'), JSON.stringify({ name, version, entry: 'server.js', developer: 'dev', resources: { cpus: 1, memoryMb: 64 } }));
  writeFileSync(join(d, 'server.js'), '// a DService\n');
  return packToBuffer(d);
}

/** A host whose "instances" are entries in a map (the real start is covered by the integration test). */
async function world(archives: Map<string, Buffer>) {
  const sent: Omit<PlacedFrame, 'v'>[] = [];
  const running = new Map<string, { digest: string; placed: boolean }>();
  const log = createLog(pino({ level: 'silent' }));
  const cache = new PackageCache({ dir: join(tmp(), 'cache'), budgetBytes: 1 << 30, log, nodeModules: null });
  await cache.open();
  let advertised = 0;
  const failStart = new Set<string>();
  const host: PlacementHost = {
    log, nodeUrl: 'ws://127.0.0.1:1/', trust: {}, cache, fetchTimeoutMs: 1000,
    running: (name) => running.get(name) ?? null,
    run: async (pkg: DServicePackage, digest: string) => {
      if (failStart.has(pkg.descriptor.name)) throw new Error(`${pkg.descriptor.name} did not become healthy`);
      running.set(pkg.descriptor.name, { digest, placed: true });
    },
    halt: async (name) => void running.delete(name),
    send: (f) => sent.push(f),
    readvertise: () => void advertised++,
    stopping: () => false,
  };
  const placements = new Placements(host);
  // The download is replaced by the archive the test holds for that digest.
  (cache as unknown as { acquire: PackageCache['acquire'] }).acquire = ((orig) => (digest: string) => orig(digest, async () => {
    const a = archives.get(digest);
    if (a === undefined) throw new Error(`the node answered 404 for ${digest}`);
    return Readable.from([a]);
  }))(cache.acquire.bind(cache));
  return { placements, sent, running, advertised: () => advertised, failStart };
}

const place = (instanceId: string, name: string, version: string, digest: string): PlaceFrame =>
  frame({ t: 'place', instanceId, name, version, digest, packagePath: `/v1/packages/${digest}`, sizeBytes: 1 << 20 }) as PlaceFrame;

describe('placements on a miner', () => {
  it('bounds what a node can make it hold: instance ids, and distinct DServices started for placements', async () => {
    const pkgs = await Promise.all(Array.from({ length: MAX_PLACED_DSERVICES + 1 }, (_, i) => packageOf(`d${i}`, '1')));
    const w = await world(new Map(pkgs.map((p) => [p.digest, p.archive])));
    for (let i = 0; i < MAX_PLACED_DSERVICES; i++) await w.placements.place(place(`i${i}`, `d${i}`, '1', pkgs[i]!.digest));
    expect(w.sent.every((f) => f.ok)).toBe(true);
    const last = MAX_PLACED_DSERVICES;
    await w.placements.place(place('one-more', `d${last}`, '1', pkgs[last]!.digest));
    expect(w.sent.at(-1)).toMatchObject({ instanceId: 'one-more', ok: false, message: expect.stringMatching(/runs 16 placed DServices already/) });
    expect(w.running.has(`d${last}`)).toBe(false);
    // More ids of a running DService share it, up to the bound on ids.
    for (let i = w.placements.list().length; i < MAX_INSTANCE_IDS; i++) await w.placements.place(place(`x${i}`, 'd0', '1', pkgs[0]!.digest));
    expect(w.placements.list()).toHaveLength(MAX_INSTANCE_IDS);
    await w.placements.place(place('too-many', 'd0', '1', pkgs[0]!.digest));
    expect(w.sent.at(-1)).toMatchObject({ instanceId: 'too-many', ok: false, message: expect.stringMatching(/holds 256 placed instances already/) });
  });

  it('places, answers placed then re-advertises; a second instance of the same package shares it; unplace stops it after the last', async () => {
    const a = await packageOf('thumbs', '1.0.0');
    const w = await world(new Map([[a.digest, a.archive]]));
    await w.placements.place(place('i1', 'thumbs', '1.0.0', a.digest));
    expect(w.sent[0]).toMatchObject({ t: 'placed', instanceId: 'i1', ok: true, fetched: true, digest: a.digest });
    expect(w.advertised()).toBe(1);
    await w.placements.place(place('i2', 'thumbs', '1.0.0', a.digest));
    expect(w.sent[1]).toMatchObject({ instanceId: 'i2', ok: true, fetched: false });
    await w.placements.unplace(frame({ t: 'unplace', instanceId: 'i1', reason: 'scaled down' }) as never);
    expect(w.running.has('thumbs')).toBe(true);
    await w.placements.unplace(frame({ t: 'unplace', instanceId: 'i2', reason: 'scaled down' }) as never);
    expect(w.running.has('thumbs')).toBe(false);
  });

  it('refuses another version of a running DService, a package that is not the one named, and a failed start, each with a reason', async () => {
    const v1 = await packageOf('thumbs', '1.0.0');
    const v2 = await packageOf('thumbs', '2.0.0');
    const other = await packageOf('other', '1.0.0');
    const w = await world(new Map([[v1.digest, v1.archive], [v2.digest, v2.archive], [other.digest, other.archive]]));
    await w.placements.place(place('i1', 'thumbs', '1.0.0', v1.digest));
    await w.placements.place(place('i2', 'thumbs', '2.0.0', v2.digest));
    expect(w.sent[1]).toMatchObject({ instanceId: 'i2', ok: false });
    expect(w.sent[1]!.message).toMatch(/another version of thumbs/);
    // The node names one DService and sends another's package.
    await w.placements.place(place('i3', 'lies', '1.0.0', other.digest));
    expect(w.sent[2]).toMatchObject({ instanceId: 'i3', ok: false });
    expect(w.sent[2]!.message).toMatch(/not the lies@1.0.0 placed/);
    w.failStart.add('other');
    await w.placements.place(place('i4', 'other', '1.0.0', other.digest));
    expect(w.sent[3]).toMatchObject({ instanceId: 'i4', ok: false, fetched: false });
    expect(w.sent[3]!.message).toMatch(/did not become healthy/);
  });

  it('answers a package the node cannot serve with ok:false, and ignores an unplace of an unknown instance', async () => {
    const w = await world(new Map());
    await w.placements.place(place('i1', 'ghost', '1.0.0', 'c'.repeat(64)));
    expect(w.sent[0]).toMatchObject({ instanceId: 'i1', ok: false });
    expect(w.sent[0]!.message).toMatch(/404/);
    await w.placements.unplace(frame({ t: 'unplace', instanceId: 'nobody', reason: 'x' }) as never);
    expect(w.sent).toHaveLength(1);
  });

  it('answers a place of a DService started with the miner at once, and never stops it on unplace', async () => {
    const a = await packageOf('echo', '0.1.0');
    const w = await world(new Map());
    w.running.set('echo', { digest: a.digest, placed: false });
    await w.placements.place(place('i1', 'echo', '0.1.0', a.digest));
    expect(w.sent[0]).toMatchObject({ ok: true, fetched: false });
    await w.placements.unplace(frame({ t: 'unplace', instanceId: 'i1', reason: 'x' }) as never);
    expect(w.running.get('echo')).toEqual({ digest: a.digest, placed: false });
  });
});
