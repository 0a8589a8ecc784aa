import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdleDetector, cgroupCpuMs, ownerBusyShare, parseCgroupCpuStat, parsePidStat, parseProcStat } from './idle.js';

describe('idle detection', () => {
  it('reads the cpu line of /proc/stat (idle and iowait are idle)', () => {
    const t = parseProcStat('cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\nintr 1\n');
    expect(t).toEqual({ totalMs: 10_000, idleMs: 8_500 });
    expect(parseProcStat('nothing here')).toBeNull();
    expect(parseProcStat('cpu  a b c d')).toBeNull();
  });

  it('reads utime + stime of /proc/<pid>/stat, whatever the command name holds', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i));
    fields[11] = '150'; // utime (field 14)
    fields[12] = '50'; // stime (field 15)
    expect(parsePidStat(`1234 (node ) x) ${fields.join(' ')}`)).toBe(2000);
    expect(parsePidStat('garbage')).toBeNull();
  });

  it('counts a DService sandbox whole from its cgroup v2 cpu.stat; v1 (no usage) falls back to pids', () => {
    expect(parseCgroupCpuStat('usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n')).toBe(2500);
    expect(parseCgroupCpuStat('nr_periods 0\nnr_throttled 0\n')).toBeNull();
    const dir = mkdtempSync(join(tmpdir(), 'cgn-cpustat-'));
    try {
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      for (const [d, usec] of [[a, 1000], [b, 3000]] as const) {
        mkdirSync(d);
        writeFileSync(join(d, 'cpu.stat'), `usage_usec ${usec}\n`);
      }
      expect(cgroupCpuMs([a, b, join(dir, 'gone')])).toBe(4);
      writeFileSync(join(b, 'cpu.stat'), 'nr_periods 0\n');
      expect(cgroupCpuMs([a, b])).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the owner's share is the busy time less the miner's own, over all time", () => {
    const prev = { totalMs: 0, idleMs: 0 };
    // 10 s of CPU time passed, 6 s busy, of which the miner used 4 s: the owner used 2 s.
    expect(ownerBusyShare(prev, { totalMs: 10_000, idleMs: 4_000 }, 4_000)).toBeCloseTo(0.2);
    // The miner's own count may lag /proc/stat: never below 0, never above 1.
    expect(ownerBusyShare(prev, { totalMs: 10_000, idleMs: 4_000 }, 9_000)).toBe(0);
    expect(ownerBusyShare(prev, { totalMs: 10_000, idleMs: 0 }, -5)).toBe(1);
    expect(ownerBusyShare(prev, prev, 0)).toBe(0);
  });

  it('busy only after a sustained run above the threshold, idle only after a longer run below', () => {
    const d = new IdleDetector({ thresholdPct: 30, busyAfterMs: 10_000, idleAfterMs: 60_000 });
    expect(d.observe(0, 0.9)).toBe(false);
    expect(d.observe(5_000, 0.9)).toBe(false);
    expect(d.observe(9_999, 0.9)).toBe(false);
    expect(d.observe(10_000, 0.9)).toBe(true);
    // A dip resets nothing until it lasts: a short quiet spell keeps it busy.
    expect(d.observe(20_000, 0.1)).toBe(true);
    expect(d.observe(30_000, 0.8)).toBe(true);
    expect(d.observe(40_000, 0.1)).toBe(true);
    expect(d.observe(99_999, 0.1)).toBe(true);
    expect(d.observe(100_000, 0.1)).toBe(false);
    // A burst shorter than busyAfterMs does not make it busy.
    expect(d.observe(101_000, 0.95)).toBe(false);
    expect(d.observe(105_000, 0.05)).toBe(false);
    expect(d.observe(112_000, 0.95)).toBe(false);
    expect(d.share).toBeCloseTo(0.95);
  });

  it('property: constant load settles on the side of the threshold it is on', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, noNaN: true }), (threshold, share) => {
      const d = new IdleDetector({ thresholdPct: threshold, busyAfterMs: 1000, idleAfterMs: 5000 });
      let busy = false;
      for (let t = 0; t <= 10_000; t += 500) busy = d.observe(t, share);
      expect(busy).toBe(share * 100 > threshold);
    }));
  });
});
