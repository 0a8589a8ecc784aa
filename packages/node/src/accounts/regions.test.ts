import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { AccountPolicies, AccountPolicyError, parseAccountPolicy } from './policies.js';
import { readAccountsFile } from './policies-file.js';

describe('account data regions in policies', () => {
  it('are checked: a list of region names (deduplicated), or null for anywhere', () => {
    expect(parseAccountPolicy({ regions: ['eu', 'us-east', 'eu'] }, 'x').regions).toEqual(['eu', 'us-east']);
    expect(parseAccountPolicy({ regions: null }, 'x', { ...parseAccountPolicy({ regions: ['eu'] }, 'd') }).regions).toBeNull();
    expect(parseAccountPolicy({}, 'x', parseAccountPolicy({ regions: ['eu'] }, 'd')).regions).toEqual(['eu']);
    expect(() => parseAccountPolicy({ regions: [] }, 'account a')).toThrow(new AccountPolicyError('account a.regions: is empty (no miner could ever run the account\'s work); give a list of region names like ["eu", "us-east"], or null for anywhere'));
    expect(() => parseAccountPolicy({ regions: 'eu' }, 'a')).toThrow(/a\.regions: must be a list/);
    expect(() => parseAccountPolicy({ regions: ['EU West'] }, 'a')).toThrow(/"EU West" is not a region name/);
    expect(() => parseAccountPolicy({ regions: Array.from({ length: 65 }, (_, i) => `r${i}`) }, 'a')).toThrow(/more than 64 regions/);
  });

  it('regionsOf gives one shared set per policy, null when anywhere, and follows replaceAll', () => {
    const p = new AccountPolicies(undefined, { acme: { regions: ['eu'] } });
    const fence = p.regionsOf('acme');
    expect(fence).toEqual(new Set(['eu']));
    expect(p.regionsOf('acme')).toBe(fence); // the same object: nothing allocated per request
    expect(p.regionsOf('other')).toBeNull();
    p.replaceAll({ acme: { weight: 2 }, beta: { regions: ['us-east', 'us-west'] } });
    expect(p.regionsOf('acme')).toBeNull();
    expect(p.regionsOf('beta')).toEqual(new Set(['us-east', 'us-west']));
    expect(() => p.replaceAll({ beta: { regions: [''] } })).toThrow(AccountPolicyError);
    expect(p.regionsOf('beta')).toEqual(new Set(['us-east', 'us-west'])); // a bad list changes nothing
  });

  it('come from the --accounts file too, validated with the file and field named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-regions-'));
    try {
      const f = join(dir, 'accounts.json');
      writeFileSync(f, JSON.stringify({ byAccount: { acme: { regions: ['eu'] } } }));
      const r = readAccountsFile(f);
      expect(new AccountPolicies(r.defaults as never, r.byAccount).regionsOf('acme')).toEqual(new Set(['eu']));
      writeFileSync(f, JSON.stringify({ byAccount: { acme: { regions: ['eu', 7] } } }));
      expect(() => readAccountsFile(f)).toThrow(`${f}: byAccount.acme.regions: 7 is not a region name`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
