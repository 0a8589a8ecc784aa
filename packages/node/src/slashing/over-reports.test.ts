import { describe, expect, it } from 'vitest';
import { buildOverReportEvidence, evidenceHash, EvidenceStore, OVER_REPORT_KIND, type OverReport } from './evidence.js';
import { OverReportTally } from './over-reports.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const report = (i: number): OverReport => ({ workId: `w_${i}`, dservice: 'echo', cpus: 1, nodeExecUs: 2000, reportedCpuUs: 5_000_000_000, billedCpuUs: 2000, at: new Date(1_700_000_000_000 + i).toISOString() });

describe('OverReportTally', () => {
  it('turns three gross over-reports within the window into evidence, and starts over', () => {
    let now = 0;
    const t = new OverReportTally({ threshold: 3, windowMs: 1000 }, () => now);
    expect(t.add('m', report(1))).toBeNull();
    now = 500;
    expect(t.add('m', report(2))).toBeNull();
    expect(t.add('other', report(9))).toBeNull();
    now = 900;
    expect(t.add('m', report(3))?.map((r) => r.workId)).toEqual(['w_1', 'w_2', 'w_3']);
    expect(t.add('m', report(4))).toBeNull();
  });

  it('forgets reports older than the window', () => {
    let now = 0;
    const t = new OverReportTally({ threshold: 3, windowMs: 1000 }, () => now);
    t.add('m', report(1));
    t.add('m', report(2));
    now = 1001;
    expect(t.add('m', report(3))).toBeNull(); // the first two are stale
    now = 1500;
    expect(t.add('m', report(4))).toBeNull();
    expect(t.add('m', report(5))?.map((r) => r.workId)).toEqual(['w_3', 'w_4', 'w_5']);
  });
});

describe('over-report evidence', () => {
  it('is hashed like dispute evidence, names the cheater and bans it at this node', () => {
    const e = buildOverReportEvidence('bb'.repeat(32), [report(1), report(2), report(3)], { node: 'n', addressOf: () => '0x00000000000000000000000000000000000000B2', now: () => 1_700_000_000_100 });
    expect(e.record).toMatchObject({ kind: OVER_REPORT_KIND, workId: 'w_3', cheater: { minerId: 'bb'.repeat(32) } });
    expect(e.hash).toBe(evidenceHash(e.record));
    const dir = mkdtempSync(join(tmpdir(), 'cgn-over-'));
    try {
      const s = new EvidenceStore(join(dir, 'e.jsonl'));
      s.add(e);
      s.close();
      const again = new EvidenceStore(join(dir, 'e.jsonl'));
      expect(again.isBanned('bb'.repeat(32), null)).toBe(true);
      expect(again.isBanned('cc'.repeat(32), '0x00000000000000000000000000000000000000b2')).toBe(true);
      expect(again.pending().map((p) => p.hash)).toEqual([e.hash]);
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
