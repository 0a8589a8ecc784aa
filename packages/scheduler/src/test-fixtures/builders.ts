/** Builders for tests: a miner, a demand, an instance, a clock, with overridable defaults. */
import { resources } from '../resources.js';
import type { Clock, DServiceDemand, InstanceView, MinerView, Resources } from '../types.js';

export function clockAt(now: number): Clock & { set(t: number): void } {
  let t = now;
  return { now: () => t, set: (x) => (t = x) };
}

export function miner(id: string, over: Partial<MinerView> & { cap?: Partial<Resources> } = {}): MinerView {
  const { cap, ...rest } = over;
  return {
    id,
    tier: 'open',
    region: 'eu-west',
    status: 'online',
    claimed: resources({ cpus: 4, memoryMb: 8192, diskMb: 20_000, gpus: 0, bandwidthMbps: 100, ...cap }),
    priceFloor: 10,
    ...rest,
  };
}

export function demand(name: string, over: Partial<DServiceDemand> & { need?: Partial<Resources>; tier?: DServiceDemand['requirements']['tier']; regions?: string[] } = {}): DServiceDemand {
  const { need, tier, regions, ...rest } = over;
  return {
    name,
    version: '1.0.0',
    account: 'acct-a',
    requirements: { resources: resources({ cpus: 1, memoryMb: 512, ...need }), tier: tier ?? 'open', ...(regions !== undefined ? { regions } : {}) },
    minInstances: 0,
    maxInstances: 10,
    queueDepth: 0,
    queueWaitMs: 0,
    ...rest,
  };
}

let seq = 0;
export function instance(d: DServiceDemand, minerId: string, over: Partial<InstanceView> = {}): InstanceView {
  return {
    id: `i${String(++seq).padStart(4, '0')}`,
    dservice: d.name,
    version: d.version,
    tier: d.requirements.tier,
    account: d.account,
    minerId,
    resources: { ...d.requirements.resources },
    state: 'ready',
    since: 0,
    ...over,
  };
}
