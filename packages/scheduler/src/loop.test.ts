/**
 * autoscale and place together, as a node would run them on a one-second tick, over simulated time
 * with a simple queue: work arrives at a given rate, each ready instance finishes `concurrency`
 * units per second, and a started instance becomes ready after a cold start of 3 s (or never, on a
 * broken miner).
 */
import { describe, expect, it } from 'vitest';
import { autoscale, type AutoscaleMemory } from './autoscale.js';
import { place } from './place.js';
import { clockAt, demand, miner } from './test-fixtures/builders.js';
import type { InstanceView, MinerView } from './types.js';

interface Sim {
  t: number;
  queue: number;
  lastRequestAt?: number;
  instances: InstanceView[];
  memory: AutoscaleMemory;
  maxSeen: number;
  firstStartAt?: number;
  firstReadyAt?: number;
}

function run(rate: (t: number) => number, seconds: number, miners: MinerView[], broken = new Set<string>(), sim?: Sim, max = 4): Sim {
  const d = demand('gen', { minInstances: 0, maxInstances: max });
  const s: Sim = sim ?? { t: 0, queue: 0, instances: [], memory: new Map(), maxSeen: 0 };
  const clock = clockAt(0);
  let seq = s.instances.length;
  for (let end = s.t + seconds; s.t < end; s.t++) {
    clock.set(s.t * 1000);
    const arriving = rate(s.t);
    s.queue += arriving;
    if (arriving > 0) s.lastRequestAt = s.t * 1000;
    // Cold start: ready 3 s after it was started, unless its miner is broken.
    s.instances = s.instances.map((i) => (i.state === 'starting' && !broken.has(i.minerId) && s.t * 1000 - i.since >= 3000 ? { ...i, state: 'ready', since: s.t * 1000 } : i));
    const ready = s.instances.filter((i) => i.state === 'ready').length;
    const served = Math.min(s.queue, ready * 2);
    s.queue -= served;
    const scaled = autoscale(s.memory, [{
      dservice: 'gen', tier: 'open', minInstances: 0, maxInstances: max, ready, starting: s.instances.length - ready, concurrency: 2,
      queueDepth: s.queue, queueWaitMs: s.queue > 0 ? 2000 : 0, inFlight: served,
      ...(s.lastRequestAt !== undefined ? { lastRequestAt: s.lastRequestAt } : {}),
    }], clock);
    s.memory = scaled.memory;
    const plan = place({ miners, instances: s.instances, accounts: [] }, [{ ...d, desiredInstances: scaled.desired[0]!.instances }], clock);
    const stopped = new Set(plan.decisions.flatMap((x) => (x.kind === 'stop' ? [x.instanceId] : [])));
    s.instances = s.instances.filter((i) => !stopped.has(i.id));
    for (const x of plan.decisions) {
      if (x.kind !== 'start') continue;
      s.firstStartAt ??= s.t;
      s.instances.push({ id: `i${String(++seq).padStart(4, '0')}`, dservice: 'gen', version: d.version, tier: 'open', account: d.account, minerId: x.minerId, resources: x.resources, state: 'starting', since: s.t * 1000 });
    }
    if (s.firstReadyAt === undefined && s.instances.some((i) => i.state === 'ready')) s.firstReadyAt = s.t;
    s.maxSeen = Math.max(s.maxSeen, s.instances.length);
  }
  return s;
}

describe('autoscale + place on a tick', () => {
  const miners = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => miner(id));

  it('starts from zero on the first request, grows with the load, never above max, and goes back to zero when idle', () => {
    // Nothing for 10 s, then 20 units/s for a minute, then nothing.
    const s = run((t) => (t >= 10 && t < 70 ? 20 : 0), 70, miners);
    expect(s.firstStartAt).toBe(10); // the tick of the first request: no waiting before the cold start
    expect(s.firstReadyAt).toBe(13); // bounded by the cold start itself
    expect(s.instances).toHaveLength(4); // the load needs 10 instances; max is 4
    expect(s.maxSeen).toBe(4);
    const idle = run(() => 0, 400, miners, new Set(), s);
    expect(idle.instances).toHaveLength(0);
  });

  it('replaces an instance whose miner never gets it ready, so a cold start stays bounded', () => {
    // At most one instance, and the first miner broken: the instance started there is given up
    // after the cold-start budget (120 s) and started on the other one.
    const two = [miner('a'), miner('b')];
    const s = run((t) => (t < 200 ? 1 : 0), 200, two, new Set(['a']), undefined, 1);
    expect(s.firstStartAt).toBe(0);
    expect(s.firstReadyAt).toBeGreaterThan(120);
    expect(s.firstReadyAt).toBeLessThanOrEqual(125);
    expect(s.instances.some((i) => i.minerId === 'b' && i.state === 'ready')).toBe(true);
  });
});
