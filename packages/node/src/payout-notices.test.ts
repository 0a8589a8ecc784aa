import { describe, expect, it } from 'vitest';
import type { Credit, CycleInfo, HeldCredit } from '@cgn/ledger';
import { parseEarnedNotice } from '@cgn/miner';
import { PayoutNotifier, earnedNotices, heldNotices, type PayoutNotice } from './payout-notices.js';

const M1 = 'a1'.repeat(32);
const M2 = 'b2'.repeat(32);
const credit = (role: Credit['role'], beneficiary: string, tokens: bigint, held: bigint): Credit => ({ role, beneficiary, address: '0x' + '00'.repeat(20), tokens, records: 1, held, released: 0n });
const heldOf = (cycle: number, beneficiary: string, tokens: bigint): HeldCredit => ({ cycle, account: 'acc', role: 'miner', beneficiary, tokens, releasedIn: null });

describe('heldNotices', () => {
  it('tells each connected miner with held earnings what it earned and what is held in all, in CGN with base units', () => {
    const credits = [credit('miner', M1, 190n, 190n), credit('miner', M2, 50n, 0n), credit('developer', M1, 10n, 10n)];
    const notices = heldNotices(4, credits, [heldOf(3, M1, 10n), heldOf(4, M1, 190n)], () => true);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ minerId: M1, kind: 'earnings_held' });
    expect(notices[0]!.message).toContain('billing cycle 4 closed');
    expect(notices[0]!.message).toContain('(190 base units)');
    expect(notices[0]!.message).toContain('(200 base units) held for it in all');
    expect(notices[0]!.message).toContain('--payout-address');
  });

  it('says nothing to miners that are not connected', () => {
    expect(heldNotices(1, [credit('miner', M1, 5n, 5n)], [], () => false)).toEqual([]);
  });
});

describe('PayoutNotifier', () => {
  it('announces cycles sealed after it started, once each', async () => {
    let cycles: CycleInfo[] = [{ id: 1, openedAt: 0, rate: { num: 1n, den: 1n }, closedAt: 1, sealedAt: 1 }, { id: 2, openedAt: 1, rate: { num: 1n, den: 1n }, closedAt: null, sealedAt: null }];
    const credits = new Map<number, Credit[]>([[1, [credit('miner', M1, 7n, 7n)]], [2, [credit('miner', M1, 9n, 9n)]]]);
    const sent: PayoutNotice[] = [];
    const n = new PayoutNotifier({
      store: { cycles: () => cycles, credits: (id) => credits.get(id) ?? [], heldCredits: () => [heldOf(1, M1, 7n), heldOf(2, M1, 9n)] },
      connected: (id) => id === M1,
      send: (x) => sent.push(x),
    });
    expect(await n.check()).toBe(0); // cycle 1 was sealed before the node started
    cycles = [cycles[0]!, { ...cycles[1]!, closedAt: 2, sealedAt: 2 }, { id: 3, openedAt: 2, rate: { num: 1n, den: 1n }, closedAt: null, sealedAt: null }];
    expect(await n.check()).toBe(1);
    expect(sent[0]!.message).toContain('billing cycle 2 closed');
    expect(await n.check()).toBe(0);
  });
});

describe('earnedNotices', () => {
  it('tells each connected miner with an address what this cycle pays it, and where', () => {
    const paid = { ...credit('miner', M1, 300n, 0n), address: '0x' + 'ab'.repeat(20), released: 50n };
    const [n, ...rest] = earnedNotices(6, [paid, credit('miner', 'other', 10n, 10n), credit('developer', 'dev', 99n, 0n)], (id) => id === M1);
    expect(rest).toEqual([]);
    expect(n).toMatchObject({ minerId: M1, kind: 'earnings' });
    expect(n!.message).toMatch(/^billing cycle 6 closed: this miner is paid .*\(350 base units\) to 0xabab.*held from earlier cycles.*claimable once the cycle is anchored/);
    // The miner's control app reads the cycle and the amount back.
    expect(parseEarnedNotice(n!.message)).toEqual({ cycleId: '6', baseUnits: 350n });
    // Everything held (no address): no earnings notice (heldNotices speaks then).
    expect(earnedNotices(6, [credit('miner', M1, 5n, 5n)], () => true)).toEqual([]);
  });
});
