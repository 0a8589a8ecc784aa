/**
 * What the placement controller keeps per miner (start failures, recent unplacements) and per
 * DService (last request, kicks, logged decisions) goes when the miner leaves or the DService is
 * gone: many miners joining, failing placements and leaving leave the maps as small as before.
 */
import { describe, expect, it } from 'vitest';
import { parseDescriptor, type DServiceDescriptor, type OutgoingFrame } from '@cgn/protocol';
import { PlacementController, type ConnectedMiner } from './controller.js';
import { resolvePlacementOptions } from './options.js';

const DIGEST = 'a'.repeat(64);
const echo = parseDescriptor({ name: 'echo', version: '0.1.0', entry: 'server.js', developer: 'dev-1', resources: { cpus: 1, memoryMb: 64 }, concurrency: 4 });

const minerOf = (id: string): ConnectedMiner => ({ id, tier: 'open', dservices: [], draining: false, advert: { tier: 'open', slots: 4, dservices: [], resources: { cpus: 4, memoryMb: 4096 } } });

describe('placement controller maps shrink back', () => {
  it('after many miners join, fail or finish placements and leave, and after the DService is gone', () => {
    let now = 1_000_000;
    const miners: ConnectedMiner[] = [];
    let dservices: DServiceDescriptor[] = [echo];
    let depth = 0;
    const sent: { to: string; f: OutgoingFrame }[] = [];
    const c = new PlacementController(
      {
        clock: { now: () => now },
        miners: () => miners,
        dservices: () => dservices,
        packages: { packageOf: (n) => (n === 'echo' ? { digest: DIGEST, sizeBytes: 1000, packagePath: `/v1/packages/${DIGEST}` } : null) },
        queueOf: () => ({ depth, oldestMs: depth > 0 ? 5000 : 0 }),
        inFlightOf: () => 0,
        send: (to, f) => sent.push({ to, f }),
        log: () => {},
        defaultTier: 'open',
      },
      resolvePlacementOptions({ autoscale: { idleToZeroMs: 1000 }, coldStartTimeoutMs: 20_000 }),
    );
    const empty = c.keptSizes();
    const answered = new Set<string>();
    const placeFrames = () => sent.filter((s) => s.f.t === 'place') as { to: string; f: Extract<OutgoingFrame, { t: 'place' }> }[];

    for (let wave = 0; wave < 5; wave++) {
      for (let i = 0; i < 40; i++) miners.push(minerOf(`w${wave}-m${i}`));
      // A queue wants instances on many miners; each placement fails there (a failure kept per
      // miner and DService), so the next goes elsewhere.
      depth = 50;
      for (let i = 0; i < 30; i++) {
        c.tick();
        for (const p of placeFrames().filter((x) => !answered.has(x.f.instanceId))) {
          answered.add(p.f.instanceId);
          c.onPlaced(p.to, { t: 'placed', v: 1, instanceId: p.f.instanceId, digest: DIGEST, ok: false, message: 'no room', coldStartMs: 1, fetched: true });
        }
        now += 1000;
      }
      // One placement succeeds, is ready, then is stopped when idle (an unplacement kept per miner and DService).
      depth = 0;
      now += 31_000;
      c.tick();
      c.wake('echo', 'open');
      const ok = placeFrames().find((x) => !answered.has(x.f.instanceId))!;
      answered.add(ok.f.instanceId);
      const m = miners.find((x) => x.id === ok.to)!;
      m.dservices = ['echo'];
      m.advert = { ...m.advert, dservices: [{ name: 'echo', version: '0.1.0', digest: DIGEST }] };
      c.tick();
      now += 5000;
      c.tick();
      expect(sent.some((s) => s.f.t === 'unplace' && s.to === ok.to)).toBe(true);
      const kept = c.keptSizes();
      expect(kept.failures).toBeGreaterThanOrEqual(8);
      expect(kept.unplacedAt).toBe(1);
      expect(kept.knownMiners).toBe(40);
      // They all leave.
      miners.length = 0;
      now += 1000;
      c.tick();
      expect(c.keptSizes()).toMatchObject({ failures: 0, unplacedAt: 0, knownMiners: 0, tracked: 0 });
    }
    expect(c.keptSizes().lastRequest).toBeGreaterThan(0);
    // The DService is gone: what was kept for it goes too.
    dservices = [];
    c.tick();
    expect(c.keptSizes()).toEqual(empty);
  });
});
