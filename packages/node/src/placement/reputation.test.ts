import { describe, expect, it } from 'vitest';
import type { ActivityLine } from '@cgn/ledger';
import { MinerReputation } from './reputation.js';

describe('miner reputation for placement', () => {
  it('reads the ledger window into success and latency per miner; a miner without records has none (the neutral prior)', async () => {
    const lines: ActivityLine[] = [
      { subject: 'fast', dservice: 'echo', records: 10, failures: 0, latencyUs: 10_000 },
      { subject: 'slow', dservice: 'echo', records: 10, failures: 5, latencyUs: 40_000 },
    ];
    let asked: unknown = null;
    const r = new MinerReputation({ activity: (_by, f) => ((asked = f), lines), now: () => 5_000_000, log: () => {} }, 1_000_000);
    await r.refresh();
    expect(asked).toEqual({ from: 4_000_000, to: 5_000_000 });
    expect(r.of('fast')).toMatchObject({ records: 10, success: 1, latency: 1 });
    expect(r.of('slow')).toMatchObject({ records: 10, success: 0.5, latency: 0.25 });
    expect(r.of('new')).toBeUndefined();
  });

  it('keeps the previous levels when the ledger cannot be read, and says so', async () => {
    let fail = false;
    const logs: string[] = [];
    const r = new MinerReputation({
      activity: () => {
        if (fail) throw new Error('database is locked');
        return [{ subject: 'm', dservice: 'echo', records: 1, failures: 0, latencyUs: 1 }];
      },
      now: () => 0, log: (_l, msg) => logs.push(msg),
    });
    await r.refresh();
    fail = true;
    await r.refresh();
    expect(r.of('m')).toMatchObject({ records: 1 });
    expect(logs[0]).toMatch(/could not read/);
  });
});
