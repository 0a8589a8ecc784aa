import { describe, expect, it } from 'vitest';
import { formatCgn } from '@cgn/protocol';
import { NO_CHAIN, parseEarnedNotice, unclaimedText, type ChainFigures } from './earnings.js';

const T = 10n ** 18n;
const chain = (claimed: string[]): ChainFigures => ({
  known: true, asOfBlock: '9', readAt: 0, tokens: '0', stake: '0', unbonding: '0', banned: false, openTierEligible: false, claimedTotal: '0', slashedTotal: '0',
  perCycle: claimed.map((cycleId) => ({ cycleId, amount: '1', txHash: '0x' })),
});

describe('earnings per cycle and unclaimed', () => {
  it("reads a node's earnings notice back, and nothing else", () => {
    expect(parseEarnedNotice(`billing cycle 12 closed: this miner is paid ${formatCgn(15n * T / 10n)} to 0xabc; claimable once the cycle is anchored`)).toEqual({ cycleId: '12', baseUnits: 15n * T / 10n });
    expect(parseEarnedNotice(`billing cycle 3 closed: this miner earned ${formatCgn(5n)}, held because it has no payout address`)).toBeNull();
    expect(parseEarnedNotice('billing cycle 3 closed: this miner is paid lots')).toBeNull();
  });

  it('unclaimed: the announced cycles the chain has no claim for', () => {
    const earned = new Map([['1', 2n * T], ['2', 3n * T], ['3', T / 2n]]);
    expect(unclaimedText(earned, chain(['1']), true)).toMatch(/^3\.5 CGN in 2 cycles/);
    expect(unclaimedText(earned, chain(['1', '2', '3']), true)).toMatch(/^0 CGN in 0 cycles/);
    expect(unclaimedText(new Map(), chain([]), true)).toMatch(/none announced yet/);
    expect(unclaimedText(earned, { known: false, reason: 'unknown: cannot read the chain' }, true)).toBe('unknown: cannot read the chain');
    expect(unclaimedText(earned, { known: false, reason: NO_CHAIN }, false)).toBe(NO_CHAIN);
  });
});
