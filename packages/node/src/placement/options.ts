/** The placement controller's options, each with its default, checked once. */
import type { AutoscalePolicy } from '@cgn/scheduler';
import { PROBE_DEFAULTS, type ProbeOptions } from './probe-check.js';

export interface PlacementOptions {
  /** Places DServices that have a package on connected miners. Default true. */
  enabled: boolean;
  /** How often autoscale + place run, ms. Default 1000. */
  tickMs: number;
  /** An instance still starting after this long is given up and placed elsewhere, ms. Default 60000. */
  coldStartTimeoutMs: number;
  /** The cold-start estimate before any was measured, ms. Default 5000. */
  defaultColdStartMs: number;
  /** Most instances of a DService whose descriptor sets no `instances.max`. Default 8. */
  defaultMaxInstances: number;
  /** Autoscale policy (the scheduler's defaults otherwise), e.g. a short `idleToZeroMs`. */
  autoscale: Partial<AutoscalePolicy>;
  /** The capability probe each joining miner runs; false: none. */
  probe: ProbeOptions | false;
}

export type PlacementOptionsInput = Partial<Omit<PlacementOptions, 'probe'>> & { probe?: Partial<ProbeOptions> | false };

export const PLACEMENT_DEFAULTS: PlacementOptions = {
  enabled: true,
  tickMs: 1000,
  coldStartTimeoutMs: 60_000,
  defaultColdStartMs: 5000,
  defaultMaxInstances: 8,
  autoscale: {},
  probe: PROBE_DEFAULTS,
};

export function resolvePlacementOptions(input: PlacementOptionsInput = {}): PlacementOptions {
  const o: PlacementOptions = {
    ...PLACEMENT_DEFAULTS,
    ...input,
    autoscale: { ...input.autoscale },
    probe: input.probe === false ? false : { ...PROBE_DEFAULTS, ...input.probe },
  };
  for (const k of ['tickMs', 'coldStartTimeoutMs', 'defaultColdStartMs'] as const) {
    if (!(Number.isFinite(o[k]) && o[k] >= 1)) throw new Error(`option placement.${k}: must be a number of milliseconds (at least 1)`);
  }
  if (!(Number.isSafeInteger(o.defaultMaxInstances) && o.defaultMaxInstances >= 1)) throw new Error('option placement.defaultMaxInstances: must be an integer of at least 1');
  if (o.probe !== false) {
    const p = o.probe;
    for (const k of ['steps', 'checkpoints', 'maxChains', 'segments', 'timeoutMs', 'deadlineMs', 'rounds', 'maxHashesPerSecPerCore', 'maxQueue'] as const) {
      if (!(Number.isSafeInteger(p[k]) && p[k] >= 1)) throw new Error(`option placement.probe.${k}: must be an integer of at least 1`);
    }
    if (!(Number.isSafeInteger(p.payloadBytes) && p.payloadBytes >= 0 && p.payloadBytes <= 4 * 1024 * 1024)) throw new Error('option placement.probe.payloadBytes: must be an integer from 0 to 4 MiB');
    if (p.checkpoints > 1024 || p.steps / p.checkpoints < 1) throw new Error('option placement.probe.checkpoints: must be at most 1024 and at most steps');
    if (p.maxChains > 64) throw new Error('option placement.probe.maxChains: must be at most 64');
    if (p.rounds > 10) throw new Error('option placement.probe.rounds: must be at most 10');
  }
  return o;
}
