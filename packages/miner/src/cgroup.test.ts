/**
 * cgroup support detection, group setup and the limits modes, against fake hierarchies in a temp
 * dir (the kernel's files are plain files there), so they run anywhere.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CgroupError, CgroupGroup, DEFAULT_PIDS, detectCgroups, groupPrefix, limitsOf, sweepStaleGroups, type CgroupSupport } from './cgroup.js';
import { resolveLimits } from './limits.js';
import { tempDir } from '../test/fixtures.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
let n = 0;

function fakeV1(controllers: string[]): { mounts: string; root: string } {
  const root = join(tmp.path, `v1-${++n}`);
  const lines = controllers.map((c) => {
    mkdirSync(join(root, c), { recursive: true });
    return `cgroup ${join(root, c)} cgroup rw,nosuid,relatime,${c === 'cpu' ? 'cpu,cpuacct' : c} 0 0`;
  });
  // A hybrid host's unified mount without the memory controller does not count as v2.
  mkdirSync(join(root, 'unified'), { recursive: true });
  writeFileSync(join(root, 'unified', 'cgroup.controllers'), 'hugetlb\n');
  lines.push(`cgroup2 ${join(root, 'unified')} cgroup2 rw,relatime 0 0`);
  return { mounts: `proc /proc proc rw 0 0\n${lines.join('\n')}\n`, root };
}

function fakeV2(controllers = 'cpuset cpu io memory hugetlb pids'): { mounts: string; root: string } {
  const root = join(tmp.path, `v2-${++n}`);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'cgroup.controllers'), `${controllers}\n`);
  writeFileSync(join(root, 'cgroup.subtree_control'), '');
  return { mounts: `cgroup2 ${root} cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n`, root };
}

const read = (f: string): string => readFileSync(f, 'utf8').trim();

describe('limitsOf', () => {
  it('takes cpus and memoryMb from the descriptor, pids from it or the default', () => {
    expect(limitsOf({ resources: { cpus: 2, memoryMb: 64 } })).toEqual({ cpus: 2, memoryMb: 64, pids: DEFAULT_PIDS });
    expect(limitsOf({ resources: { cpus: 1, memoryMb: 128, pids: 16 } })).toEqual({ cpus: 1, memoryMb: 128, pids: 16 });
  });
});

describe('detectCgroups', () => {
  it('v2: the unified hierarchy with memory, pids and cpu; enables them for cgn/', () => {
    const { mounts, root } = fakeV2();
    const s = detectCgroups(mounts);
    expect(s).toMatchObject({ version: 'v2', missing: [], warning: null });
    expect(s.parents).toEqual({ memory: join(root, 'cgn'), pids: join(root, 'cgn'), cpu: join(root, 'cgn') });
    expect(read(join(root, 'cgroup.subtree_control'))).toBe('+memory +pids +cpu');
    expect(read(join(root, 'cgn', 'cgroup.subtree_control'))).toBe('+memory +pids +cpu');
  });

  it('v1 (a hybrid host whose unified mount has no memory controller): one hierarchy per controller', () => {
    const { mounts, root } = fakeV1(['memory', 'pids', 'cpu']);
    const s = detectCgroups(mounts);
    expect(s).toMatchObject({ version: 'v1', missing: [], warning: null });
    expect(s.parents).toEqual({ memory: join(root, 'memory', 'cgn'), pids: join(root, 'pids', 'cgn'), cpu: join(root, 'cpu', 'cgn') });
  });

  it('names what it cannot enforce: a missing controller, or no cgroup at all', () => {
    const partial = detectCgroups(fakeV1(['memory']).mounts);
    expect(partial.version).toBe('v1');
    expect(partial.missing).toEqual(['pids', 'cpu']);
    expect(partial.warning).toMatch(/lacks pids, cpu .*NOT enforced/);
    const none = detectCgroups('proc /proc proc rw 0 0\n');
    expect(none).toMatchObject({ version: null, missing: ['memory', 'pids', 'cpu'] });
    expect(none.warning).toMatch(/no writable cgroup here.*WITHOUT CPU, memory or process limits/);
  });

  it('a hierarchy it cannot write to does not count', () => {
    const { root } = fakeV1([]);
    writeFileSync(join(root, 'memory'), 'not a directory');
    const s = detectCgroups(`cgroup ${join(root, 'memory')} cgroup rw,memory 0 0\n`);
    expect(s.version).toBeNull();
    expect(s.warning).toMatch(/cgroup v1 memory: .*ENOTDIR|EEXIST/);
  });
});

describe('CgroupGroup', () => {
  const limits = { cpus: 2, memoryMb: 64, pids: 32 };

  it('v1: writes memory, pids and CPU quota into each hierarchy; the process joins every one', () => {
    const s = detectCgroups(fakeV1(['memory', 'pids', 'cpu']).mounts);
    const g = CgroupGroup.create(s, 'abc.1-echo-1', limits);
    expect(read(join(s.parents.memory!, 'abc.1-echo-1', 'memory.limit_in_bytes'))).toBe(String(64 * 1024 * 1024));
    expect(read(join(s.parents.pids!, 'abc.1-echo-1', 'pids.max'))).toBe('32');
    expect(read(join(s.parents.cpu!, 'abc.1-echo-1', 'cpu.cfs_period_us'))).toBe('100000');
    expect(read(join(s.parents.cpu!, 'abc.1-echo-1', 'cpu.cfs_quota_us'))).toBe('200000');
    expect(g.procsFiles).toHaveLength(3);
    writeFileSync(join(s.parents.memory!, 'abc.1-echo-1', 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    expect(g.oomKills()).toBe(2);
  });

  it('v2: one group with memory.max, pids.max and cpu.max', () => {
    const s = detectCgroups(fakeV2().mounts);
    const g = CgroupGroup.create(s, 'abc.1-echo-2', limits);
    const dir = join(s.parents.memory!, 'abc.1-echo-2');
    expect(g.paths).toEqual([dir]);
    expect(read(join(dir, 'memory.max'))).toBe(String(64 * 1024 * 1024));
    expect(read(join(dir, 'pids.max'))).toBe('32');
    expect(read(join(dir, 'cpu.max'))).toBe('200000 100000');
    expect(g.oomKills()).toBeNull(); // no memory.events yet
    writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n');
    expect(g.oomKills()).toBe(1);
  });

  it('refuses without support, and names a bad group name', () => {
    const none: CgroupSupport = { version: null, parents: {}, missing: ['memory', 'pids', 'cpu'], warning: 'no cgroup' };
    expect(() => CgroupGroup.create(none, 'x', limits)).toThrow(CgroupError);
    const s = detectCgroups(fakeV2().mounts);
    expect(() => CgroupGroup.create(s, '../escape', limits)).toThrow(/bad cgroup name/);
  });

  it('sweeps the empty groups of miners that are gone, not those of running ones', () => {
    const s = detectCgroups(fakeV2().mounts);
    const parent = s.parents.memory!;
    const gone = `${groupPrefix('ab12', 2 ** 22 + 7)}echo-1`; // above the largest pid
    const mine = `${groupPrefix('ab12')}echo-1`;
    mkdirSync(join(parent, gone));
    mkdirSync(join(parent, mine));
    mkdirSync(join(parent, 'someone-else'));
    expect(sweepStaleGroups(s)).toBe(1);
    expect(existsSync(join(parent, gone))).toBe(false);
    expect(existsSync(join(parent, mine))).toBe(true);
    expect(existsSync(join(parent, 'someone-else'))).toBe(true);
  });
});

describe('resolveLimits', () => {
  const v2 = (): CgroupSupport => detectCgroups(fakeV2().mounts);
  const none = (): CgroupSupport => detectCgroups('');

  it('auto: cgroups where they work, else no limits with the warning', () => {
    expect(resolveLimits('auto', v2)).toMatchObject({ support: { version: 'v2' }, warning: null });
    const fallback = resolveLimits('auto', none);
    expect(fallback.support).toBeNull();
    expect(fallback.warning).toMatch(/WITHOUT CPU, memory or process limits/);
  });

  it('cgroup: an error a user can act on when they cannot be enforced; none: off, and says so', () => {
    expect(() => resolveLimits('cgroup', none)).toThrow(/limits "cgroup" were asked for but cannot be enforced here/);
    expect(resolveLimits('cgroup', v2).support?.version).toBe('v2');
    const off = resolveLimits('none', v2);
    expect(off.support).toBeNull();
    expect(off.warning).toMatch(/--limits none/);
  });
});
