/**
 * Turns the configured limits mode into what the miner enforces: cgroups where the host lets it
 * (see cgroup.ts), or nothing with a warning the operator sees in the log and the status.
 */
import { CgroupError, detectCgroups, type CgroupSupport } from './cgroup.js';
import type { LimitsMode } from './options.js';

export interface ResolvedLimits {
  /** The cgroups that enforce the limits; null: none are enforced. */
  support: CgroupSupport | null;
  /** What is not enforced and why. */
  warning: string | null;
}

/** `cgroup` without a usable memory cgroup is an error; `auto` falls back with a warning. */
export function resolveLimits(mode: LimitsMode, detect: () => CgroupSupport = () => detectCgroups()): ResolvedLimits {
  if (mode === 'none') {
    return { support: null, warning: 'DService limits are off (--limits none): DServices run WITHOUT CPU, memory or process limits' };
  }
  const s = detect();
  if (s.version === null || (mode === 'cgroup' && s.missing.includes('memory'))) {
    if (mode === 'cgroup') {
      throw new CgroupError('cgroup_unavailable', `limits "cgroup" were asked for but cannot be enforced here: ${s.warning ?? 'no memory cgroup'}`);
    }
    return { support: null, warning: s.warning };
  }
  return { support: s, warning: s.warning };
}
