import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveAccount, resolveMiner } from './resolve.js';

const A = { id: 'acc_AAAAAAAAAAAAAAAA', name: 'acme' };
const B = { id: 'acc_ABBBBBBBBBBBBBBB', name: 'beta' };
const M1 = 'ab'.repeat(32);
const M2 = 'abcd'.repeat(16);
const M3 = 'ff'.repeat(32);

describe('resolveAccount', () => {
  it('takes an id, a name (any case) or an unambiguous id prefix', () => {
    expect(resolveAccount(A.id, [A, B], 'at central')).toBe(A.id);
    expect(resolveAccount('ACME', [A, B], 'at central')).toBe(A.id);
    expect(resolveAccount('acc_AB', [A, B], 'at central')).toBe(B.id);
  });

  it('refuses an unknown or ambiguous one, naming what exists', () => {
    expect(() => resolveAccount('demo', [A, B], 'at central')).toThrow(/no account "demo" at central; accounts: acc_AAAAAAAAAAAAAAAA \(acme\), acc_ABBBBBBBBBBBBBBB \(beta\)/);
    expect(() => resolveAccount('acc_A', [A, B], 'in this ledger')).toThrow(/several account ids in this ledger/);
    expect(() => resolveAccount('x', [], 'in this ledger')).toThrow(/accounts: \(none yet\)/);
  });
});

describe('resolveMiner', () => {
  it('takes the full id, the 16-digit log id, or any unambiguous prefix, in any case', () => {
    expect(resolveMiner(M1, [M1, M2, M3], 'in this ledger')).toBe(M1);
    expect(resolveMiner(M1.slice(0, 16).toUpperCase(), [M1, M2, M3], 'in this ledger')).toBe(M1);
    expect(resolveMiner('f', [M1, M2, M3], 'in this ledger')).toBe(M3);
  });

  it('refuses an unknown, ambiguous or non-hex one, naming the miners by their short id', () => {
    expect(() => resolveMiner('ab', [M1, M2, M3], 'in this ledger')).toThrow(`several miner ids in this ledger: ${M1.slice(0, 16)}, ${M2.slice(0, 16)}`);
    expect(() => resolveMiner('00', [M1], 'in this ledger')).toThrow(`no miner "00" in this ledger; miners: ${M1.slice(0, 16)}`);
    expect(() => resolveMiner('zz', [M1], 'in this ledger')).toThrow(/not a miner id/);
    expect(() => resolveMiner('00'.repeat(32), [M1], 'in this ledger')).toThrow(/no miner/);
    expect(resolveMiner('00'.repeat(32), [M1], 'in this ledger', { allowUnknown: true })).toBe('00'.repeat(32));
  });

  it('property: any prefix that only one known id has resolves to it; a full known id always resolves to itself', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[0-9a-f]{64}$/), { minLength: 1, maxLength: 8 }), fc.nat(), fc.integer({ min: 1, max: 64 }), (ids, i, n) => {
        const id = ids[i % ids.length]!;
        expect(resolveMiner(id, ids, '')).toBe(id);
        const prefix = id.slice(0, n);
        const owners = ids.filter((x) => x.startsWith(prefix));
        if (owners.length === 1) expect(resolveMiner(prefix, ids, '')).toBe(id);
        else expect(() => resolveMiner(prefix, ids, '')).toThrow(/several/);
      }),
    );
  });
});
