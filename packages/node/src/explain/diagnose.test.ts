import { describe, expect, it } from 'vitest';
import { CgnError } from '@cgn/protocol';
import { diagnose, refusalOf, type DiagnoseInput, type MinerView } from './diagnose.js';

const miner = (over: Partial<MinerView> = {}): MinerView => ({ id: 'm', tier: 'open', memoryMb: 1024, slots: 2, inUse: 0, draining: false, ...over });
const input = (over: Partial<DiagnoseInput> = {}): DiagnoseInput => ({
  dservice: 'img', tier: 'open', descriptor: { memoryMb: 512 }, miners: [miner()], queue: { depth: 0, accounts: 0, oldestMs: 0, accountDepth: null }, account: null, quota: null, ...over,
});

describe('diagnose', () => {
  it('runnable: a miner with a free slot', () => {
    const d = diagnose(input());
    expect(d).toMatchObject({ runnable: true, reason: null, miners: { eligible: 1, freeSlots: 2 } });
    expect(d.message).toMatch(/2 slots free: it runs at once/);
  });

  it('busy is not a reason: the work queues', () => {
    const d = diagnose(input({ miners: [miner({ inUse: 2 })], queue: { depth: 7, accounts: 2, oldestMs: 30, accountDepth: null } }));
    expect(d.runnable).toBe(true);
    expect(d.message).toMatch(/busy: it waits in the queue \(7 queued, 2 accounts waiting/);
  });

  it('each reason, in order', () => {
    expect(diagnose(input({ descriptor: null })).reason).toBe('unknown_dservice');
    expect(diagnose(input({ miners: [] })).reason).toBe('no_miner');
    const tier = diagnose(input({ tier: 'dedicated', miners: [miner(), miner({ tier: 'attested' })] }));
    expect(tier.reason).toBe('no_miner_in_tier');
    expect(tier.message).toMatch(/miners run it in: open \(1\), attested \(1\)/);
    const mem = diagnose(input({ miners: [miner({ memoryMb: 256 }), miner({ memoryMb: 300 })] }));
    expect(mem.reason).toBe('not_enough_memory');
    expect(mem.message).toMatch(/needs 512 MB .* has 300 MB/);
    expect(diagnose(input({ miners: [miner({ draining: true })] })).reason).toBe('all_draining');
    const quota = new CgnError('rate_limited', 'account a is at its quota', { details: { quota: 'concurrentRequests' } });
    const q = diagnose(input({ account: 'a', quota: { usage: { inFlight: 3, maxConcurrent: 3, perSecond: null, burst: null, tokens: null }, refusal: quota } }));
    expect(q).toMatchObject({ reason: 'quota', quota: { refused: 'concurrentRequests', inFlight: 3 } });
  });

  it('a miner without the memory in another tier does not count; a big one in the tier does', () => {
    const d = diagnose(input({ miners: [miner({ memoryMb: 100 }), miner({ memoryMb: 4096, inUse: 2 })] }));
    expect(d).toMatchObject({ runnable: true, miners: { eligible: 1, freeSlots: 0, largestMemoryMb: 4096 } });
  });

  it('the refusal is a 503 problem naming the reason (404 for an unknown DService)', () => {
    const e = refusalOf(diagnose(input({ miners: [] })));
    expect([e.code, e.httpStatus, e.details?.['reason']]).toEqual(['dservice_unavailable', 503, 'no_miner']);
    expect(refusalOf(diagnose(input({ descriptor: null }))).httpStatus).toBe(404);
  });

  describe('with placement', () => {
    it('placement under way: runnable, with the estimate and where it comes from', () => {
      const d = diagnose(input({ miners: [], placement: { state: 'placing', minerId: 'ab'.repeat(32), instanceId: 'i1', estimateMs: 2400, basis: 'the median of the last 3 cold starts' } }));
      expect(d).toMatchObject({ runnable: true, reason: null, placement: { state: 'placing', estimateMs: 2400 } });
      expect(d.message).toMatch(/placement under way: an instance of img is starting on miner abababababababab; ready in about 2 s \(the median of the last 3 cold starts\)/);
    });

    it('placeable: a request would start one; a quota still refuses', () => {
      const p = { state: 'placeable' as const, eligible: 2, estimateMs: 5000, basis: 'the default' };
      expect(diagnose(input({ miners: [], placement: p }))).toMatchObject({ runnable: true, reason: null });
      const quota = new CgnError('rate_limited', 'account a is at its quota', { details: { quota: 'concurrentRequests' } });
      const q = diagnose(input({ miners: [], account: 'a', placement: p, quota: { usage: { inFlight: 3, maxConcurrent: 3, perSecond: null, burst: null, tokens: null }, refusal: quota } }));
      expect(q.reason).toBe('quota');
    });

    it('blocked: the scheduler\'s reason, refused at once as a 503 naming it', () => {
      const d = diagnose(input({ miners: [], placement: { state: 'blocked', reason: 'no_eligible_miner', blocking: 'memory', message: 'no online miner in tier open with enough memory: an instance needs 9000 MB of memory, the largest has 4096' } }));
      expect(d).toMatchObject({ runnable: false, reason: 'not_enough_memory' });
      expect(d.message).toMatch(/img cannot be placed: .*needs 9000 MB/);
      const e = refusalOf(d);
      expect([e.httpStatus, e.details?.['reason']]).toEqual([503, 'not_enough_memory']);
      expect(diagnose(input({ miners: [], placement: { state: 'blocked', reason: 'no_eligible_miner', blocking: 'region', message: 'x' } })).reason).toBe('no_miner_in_region');
      expect(diagnose(input({ miners: [], placement: { state: 'blocked', reason: 'no_eligible_miner', blocking: 'gpu', message: 'x' } })).reason).toBe('not_enough_resources');
      expect(diagnose(input({ miners: [], placement: { state: 'blocked', reason: 'no_free_capacity', blocking: null, message: 'x' } })).reason).toBe('no_free_capacity');
      // No miner online at all: the plain reason; a miner runs it but not in the tier: that reason, and placement's too.
      expect(diagnose(input({ miners: [], placement: { state: 'blocked', reason: 'no_eligible_miner', blocking: 'online', message: 'no miner is online' } }))).toMatchObject({ reason: 'no_miner', message: expect.stringMatching(/no miner connected to this node runs img/) });
      const tier = diagnose(input({ tier: 'dedicated', placement: { state: 'blocked', reason: 'no_eligible_miner', blocking: 'tier', message: 'no online miner in tier dedicated' } }));
      expect(tier).toMatchObject({ reason: 'no_miner_in_tier' });
      expect(tier.message).toMatch(/miners run it in: open \(1\)\..*; nor can it be placed: no online miner in tier dedicated/);
    });

    it('has no say when a connected miner runs it, or for an unknown DService', () => {
      const p = { state: 'blocked' as const, reason: 'no_eligible_miner' as const, blocking: 'memory', message: 'x' };
      expect(diagnose(input({ placement: p }))).toMatchObject({ runnable: true });
      expect(diagnose(input({ descriptor: null, placement: p })).reason).toBe('unknown_dservice');
      expect(diagnose(input({ miners: [], placement: { state: 'none' } }))).toMatchObject({ reason: 'no_miner', placement: null });
    });
  });
});

describe('diagnose: the account\'s data regions', () => {
  it('names the regions when no miner in them runs the DService, and where the miners are', () => {
    const d = diagnose(input({ account: 'acme', regions: ['eu'], miners: [miner({ region: 'us-east' }), miner({ region: 'us-east' }), miner({ region: null })] }));
    expect(d).toMatchObject({ runnable: false, reason: 'no_miner_in_region', regions: ['eu'], miners: { eligible: 0 } });
    expect(d.message).toMatch(/no open-tier miner in the account's regions \(eu\) runs img; the miners that can run it are in: us-east \(2\), no region \(1\)/);
    const e = refusalOf(d);
    expect(e.code).toBe('dservice_unavailable');
    expect(e.details).toMatchObject({ reason: 'no_miner_in_region', regions: ['eu'] });
  });

  it('a miner in a sub-region counts; only miners in the regions are eligible; busy in-region miners queue the work', () => {
    const d = diagnose(input({ account: 'acme', regions: ['eu'], miners: [miner({ region: 'eu-west', inUse: 2 }), miner({ region: 'us' })] }));
    expect(d).toMatchObject({ runnable: true, reason: null, miners: { eligible: 1, freeSlots: 0 } });
    expect(diagnose(input({ account: 'acme', regions: null, miners: [miner({ region: 'us' })] })).runnable).toBe(true);
  });

  it('an earlier reason wins (tier, memory); draining in-region miners are all_draining', () => {
    expect(diagnose(input({ regions: ['eu'], miners: [miner({ region: 'us', memoryMb: 10 })] })).reason).toBe('not_enough_memory');
    expect(diagnose(input({ regions: ['eu'], miners: [miner({ region: 'eu', draining: true }), miner({ region: 'us' })] })).reason).toBe('all_draining');
  });

  it('placement that can start an instance in the regions lets the work wait; one that cannot says both', () => {
    const miners = [miner({ region: 'us' })];
    const placing = diagnose(input({ regions: ['eu'], miners, placement: { state: 'placeable', eligible: 1, estimateMs: 3000, basis: 'default' } }));
    expect(placing.runnable).toBe(true);
    const blocked = diagnose(input({ regions: ['eu'], miners, placement: { state: 'blocked', reason: 'no_eligible_miner', blocking: 'region', message: "no online miner in tier open in the account's regions (eu)" } }));
    expect(blocked).toMatchObject({ runnable: false, reason: 'no_miner_in_region' });
    expect(blocked.message).toMatch(/nor can it be placed: no online miner in tier open in the account's regions \(eu\)/);
  });
});
