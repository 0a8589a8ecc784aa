/**
 * Builds the placement controller and the probe runner from the node's parts (broker, miner
 * endpoint, registry, packages), so that node.ts only starts, stops and consults them.
 */
import type { ActivityFilter, ActivityLine } from '@cgn/ledger';
import type { AdvertiseFrame, DServiceDescriptor, OutgoingFrame, PlacedFrame, ProbedFrame, Tier } from '@cgn/protocol';
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../log.js';
import { PlacementController, type ConnectedMiner, type PackageSource, type PlacementView } from './controller.js';
import type { PlacementOptions } from './options.js';
import { ProbeRunner } from './probe-runner.js';
import { MinerReputation } from './reputation.js';

export interface PlacementParts {
  options: PlacementOptions;
  defaultTier: Tier;
  broker: Pick<Broker, 'snapshot' | 'runningOf' | 'queueOf' | 'membershipVersion' | 'unitsHeld' | 'fencesWaiting'>;
  /** The miner's last admitted advertisement (null: not connected or not admitted). */
  advertOf: (minerId: string) => AdvertiseFrame | null;
  send: (minerId: string, f: OutgoingFrame) => void;
  dservices: () => readonly DServiceDescriptor[];
  packages: PackageSource;
  log: Logger;
  /** The ledger's activity per miner (for reputation); absent: every miner gets the neutral prior. */
  activity?: (by: 'miner', filter: ActivityFilter) => ActivityLine[] | Promise<ActivityLine[]>;
}

export interface Placement {
  controller: PlacementController;
  probes: ProbeRunner | null;
  /** A request found no connected miner for it: place now; what placement can do. */
  /** `regions`: the asking account's data regions (null: anywhere). */
  wake(dservice: string, tier: Tier, regions?: readonly string[] | null): PlacementView;
  view(dservice: string, tier: Tier, regions?: readonly string[] | null): PlacementView;
  onPlaced(minerId: string, f: PlacedFrame): void;
  onProbed(minerId: string, f: ProbedFrame): void;
  status(): Record<string, unknown>;
  start(): void;
  stop(): void;
}

export function attachPlacement(p: PlacementParts): Placement {
  const log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => p.log[level](fields, msg);
  const probes = p.options.probe === false ? null : new ProbeRunner({ send: p.send, now: () => performance.now(), log }, p.options.probe);
  const reputation = p.activity === undefined ? null : new MinerReputation({ activity: p.activity, now: () => Date.now(), log });
  const miners = (): ConnectedMiner[] => {
    const out: ConnectedMiner[] = [];
    for (const m of p.broker.snapshot().miners) {
      const advert = p.advertOf(m.id);
      if (advert !== null) out.push({ id: m.id, tier: m.tier, dservices: m.dservices, draining: m.draining, advert });
    }
    return out;
  };
  const controller = new PlacementController(
    {
      clock: { now: () => Date.now() },
      miners,
      dservices: p.dservices,
      packages: p.packages,
      queueOf: (d, t) => {
        const q = p.broker.queueOf(d, t);
        return { depth: q.depth, oldestMs: q.oldestMs };
      },
      inFlightOf: (d, t) => p.broker.runningOf(d, t),
      send: p.send,
      log,
      probes,
      ...(reputation !== null ? { reputationOf: (id: string) => reputation.of(id) } : {}),
      defaultTier: p.defaultTier,
      // A finished probe counts as a change of membership: a miner believed least while its probe
      // was pending may now have room for what could not be placed.
      quiet: () => ({ membership: p.broker.membershipVersion + (probes?.version ?? 0), work: p.broker.unitsHeld }),
      fencesWaiting: (d, t) => p.broker.fencesWaiting(d, t),
    },
    p.options,
  );
  return {
    controller,
    probes,
    wake: (d, t, r) => controller.wake(d, t, r ?? null),
    view: (d, t, r) => controller.view(d, t, r ?? null),
    onPlaced: (id, f) => controller.onPlaced(id, f),
    onProbed: (id, f) => probes?.onProbed(id, f),
    status: () => ({
      ...controller.status(),
      probes: probes === null ? null : {
        ...probes.counters,
        // Miners waiting for a probe, and those that found the queue full (counted least until probed).
        waiting: probes.waiting,
        // Each miner's claim beside what the probe measured (or why it could not).
        miners: miners().map((m) => {
          const r = probes.resultOf(m.id);
          return {
            id: m.id.slice(0, 16),
            claimed: { ...m.advert.resources, ...(m.advert.region !== undefined ? { region: m.advert.region } : {}), priceFloor: m.advert.priceFloor ?? 0 },
            probe: r === undefined ? 'pending' : r.ok ? { measured: r.measured, hashesPerSec: r.measurement.hashesPerSec, rttMs: r.measurement.rttMs, selfReported: r.selfReported } : { failed: r.reason },
          };
        }),
      },
    }),
    start: () => {
      controller.start();
      reputation?.start();
    },
    stop: () => {
      controller.stop();
      reputation?.stop();
      probes?.stop();
    },
  };
}
