import { describe, expect, it } from 'vitest';
import { openLedger } from '@cgn/ledger';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BILLING_DEFAULTS, NodeBilling } from './billing.js';

describe('NodeBilling prices from central', () => {
  it("prices each approved DService with its schedule (per tier, else its base) and every other with the node's default", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-billing-'));
    const ledger = openLedger({ path: join(dir, 'ledger.sqlite') });
    const billing = await NodeBilling.open(ledger.store, BILLING_DEFAULTS);
    try {
      const s = (req: number) => ({ perRequestMicros: req, perCpuSecondMicros: 0, perMbMicros: 0 });
      billing.applyApproved([
        { name: 'priced', price: { ...s(5), tiers: { dedicated: s(9) } } },
        { name: 'unpriced', price: null },
      ]);
      expect(billing.schedule('priced', 'open')).toEqual({ perRequest: 5n, perCpuSecond: 0n, perMb: 0n });
      expect(billing.schedule('priced', 'dedicated').perRequest).toBe(9n);
      expect(billing.schedule('unpriced', 'open').perRequest).toBe(100n);
      expect(billing.schedule('unknown', 'attested').perCpuSecond).toBe(1000n);
      // A later list without prices for a DService puts it back on the default.
      billing.applyApproved([{ name: 'priced', price: null }]);
      expect(billing.schedule('priced', 'open').perRequest).toBe(100n);
    } finally {
      billing.stop();
      ledger.store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
