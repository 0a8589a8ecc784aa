/** The banner's isolation warning: silent when DServices are sandboxed and limited, plain and actionable when not. */
import { describe, expect, it } from 'vitest';
import { bwrapProblem, type CgroupSupport } from '@cgn/miner';
import { checkIsolation, isolationNotice } from './isolation-notice.js';

const limited: CgroupSupport = { version: 'v2', parents: { memory: '/x', pids: '/x', cpu: '/x' }, missing: [], warning: null };
const unlimited: CgroupSupport = { version: null, parents: {}, missing: ['memory', 'pids', 'cpu'], warning: 'no writable cgroup here (EACCES)' };

describe('isolation notice', () => {
  it('says nothing when bubblewrap works and the limits are enforced', async () => {
    const c = await checkIsolation('auto', async () => null, () => limited);
    expect(c).toEqual({ sandboxProblem: null, limitsProblem: null });
    expect(isolationNotice(c)).toBe('');
  });

  it('without a working bubblewrap: NO SANDBOX, why, and how to install it', async () => {
    const c = await checkIsolation('auto', () => bwrapProblem('/nonexistent/bwrap'), () => limited);
    const text = isolationNotice(c);
    expect(text).toMatch(/WARNING: NO SANDBOX/);
    expect(text).toMatch(/Why: \/nonexistent\/bwrap cannot run/);
    expect(text).toMatch(/apt-get install bubblewrap/);
    expect(text).not.toMatch(/NO RESOURCE LIMITS/);
  });

  it('--sandbox none and no cgroups: both said', async () => {
    const text = isolationNotice(await checkIsolation('none', async () => null, () => unlimited));
    expect(text).toMatch(/NO SANDBOX[\s\S]*Why: the sandbox was turned off \(--sandbox none\)[\s\S]*Fix: start without --sandbox none/);
    expect(text).not.toMatch(/apt-get/);
    expect(text).toMatch(/NO RESOURCE LIMITS[\s\S]*Why: no writable cgroup here \(EACCES\)[\s\S]*run as root/);
  });
});
