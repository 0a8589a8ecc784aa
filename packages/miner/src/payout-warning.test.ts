import { describe, expect, it } from 'vitest';
import { noPayoutAddressWarning, noticeLine } from './payout-warning.js';

describe('payout warnings on the miner console', () => {
  it('says what happens without a payout address and how to give one', () => {
    const w = noPayoutAddressWarning();
    expect(w).toMatch(/^cgn miner: WARNING: no --payout-address/);
    expect(w).toContain('held');
    expect(w).toContain('--payout-address new');
  });

  it('shows a node notice as one plain line, control characters removed', () => {
    expect(noticeLine({ kind: 'earnings_held', message: 'cycle 3 closed\u001b[31m' })).toBe('cgn miner: WARNING: cycle 3 closed [31m');
    expect(noticeLine({ kind: 'other', message: 'hi' })).toBe('cgn miner: hi');
  });
});
