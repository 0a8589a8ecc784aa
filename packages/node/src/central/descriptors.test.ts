import { describe, expect, it } from 'vitest';
import { parseApprovedDescriptors } from './descriptors.js';

const base = {
  name: 'echo', version: '1.0.0', digest: 'a'.repeat(64), entry: 'dist/server.js', developer: 'acc_dev', deterministic: true,
  resources: { cpus: 1, memoryMb: 128, diskMb: 0, gpus: 0 }, maxBodyBytes: 1024, concurrency: 2, timeouts: { requestMs: 1000 },
  price: { perRequestMicros: 1, perCpuSecondMicros: 0, perMbMicros: 0 },
};

describe('approved descriptors from central', () => {
  it("carry the developer's own payout address (lower case), or null when it set none or sent junk", () => {
    const [a, b, c] = parseApprovedDescriptors({
      dservices: [{ ...base, developerAddress: `0x${'AB'.repeat(20)}` }, { ...base, name: 'b', developerAddress: null }, { ...base, name: 'c', developerAddress: 'nope' }],
    });
    expect(a!.developerAddress).toBe(`0x${'ab'.repeat(20)}`);
    expect(b!.developerAddress).toBeNull();
    expect(c!.developerAddress).toBeNull();
  });
});

describe("central's prices on approved descriptors", () => {
  it('are null when none were set, and a tier schedule takes the base for fields it leaves out', () => {
    const [none, priced] = parseApprovedDescriptors({
      dservices: [{ ...base, price: null }, { ...base, name: 'p', price: { perRequestMicros: 5, perCpuSecondMicros: 6, perMbMicros: 7, tiers: { attested: { perRequestMicros: 50 } } } }],
    });
    expect(none!.price).toBeNull();
    expect(priced!.price).toEqual({ perRequestMicros: 5, perCpuSecondMicros: 6, perMbMicros: 7, tiers: { attested: { perRequestMicros: 50, perCpuSecondMicros: 6, perMbMicros: 7 } } });
  });

  it('refuse a negative or fractional price', () => {
    expect(() => parseApprovedDescriptors({ dservices: [{ ...base, price: { perRequestMicros: -1, perCpuSecondMicros: 0, perMbMicros: 0 } }] })).toThrow(/perRequestMicros/);
    expect(() => parseApprovedDescriptors({ dservices: [{ ...base, price: { perRequestMicros: 1.5, perCpuSecondMicros: 0, perMbMicros: 0 } }] })).toThrow(/whole number/);
  });
});
