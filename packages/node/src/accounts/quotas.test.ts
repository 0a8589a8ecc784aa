import { describe, expect, it } from 'vitest';
import { AccountPolicies, AccountPolicyError, parseAccountPolicy } from './policies.js';
import { QuotaGate } from './quotas.js';

const gate = (byAccount: ConstructorParameters<typeof AccountPolicies>[1]) => {
  let now = 0;
  const policies = new AccountPolicies(undefined, byAccount);
  return { g: new QuotaGate(policies, () => now), advance: (ms: number) => (now += ms), policies };
};

describe('account policies', () => {
  it('fills from the defaults and names a wrong field', () => {
    expect(parseAccountPolicy({ maxConcurrent: 5 }, 'x')).toEqual({ weight: 1, maxConcurrent: 5, perSecond: null, burst: null, regions: null });
    expect(() => parseAccountPolicy({ weight: 0 }, 'accounts.byAccount.a')).toThrow(new AccountPolicyError('accounts.byAccount.a.weight: must be a positive number'));
    expect(() => parseAccountPolicy({ maxConcurent: 5 }, 'p')).toThrow(/p.maxConcurent: not a field/);
    expect(parseAccountPolicy({ maxConcurrent: null }, 'p', { weight: 2, maxConcurrent: 3, perSecond: null, burst: null }).maxConcurrent).toBeNull();
  });

  it('set and replaceAll change what an account gets', () => {
    const p = new AccountPolicies();
    expect(p.weightOf('a')).toBe(1);
    p.set('a', { weight: 3 });
    expect(p.weightOf('a')).toBe(3);
    p.replaceAll({ b: { weight: 2 } }, { maxConcurrent: 10 });
    expect(p.get('a')).toEqual({ weight: 1, maxConcurrent: 10, perSecond: null, burst: null, regions: null });
    expect(p.get('b').maxConcurrent).toBe(10);
    p.set('b', null);
    expect(p.weightOf('b')).toBe(1);
  });
});

describe('QuotaGate', () => {
  it('no quota: every request is admitted', () => {
    const { g } = gate({});
    for (let i = 0; i < 1000; i++) expect(g.take('a')).toBeNull();
    expect(g.usageOf('a').inFlight).toBe(1000);
  });

  it('concurrent requests: refused at the limit naming the quota, admitted again after a release', () => {
    const { g } = gate({ a: { maxConcurrent: 2 } });
    expect(g.take('a')).toBeNull();
    expect(g.take('a')).toBeNull();
    const e = g.take('a')!;
    expect(e.code).toBe('rate_limited');
    expect(e.httpStatus).toBe(429);
    expect(e.details).toMatchObject({ quota: 'concurrentRequests', limit: 2, retryAfterS: 1 });
    expect(e.message).toMatch(/account a is at its quota of 2 concurrent requests/);
    expect(g.take('b')).toBeNull(); // another account is not held
    g.release('a');
    expect(g.take('a')).toBeNull();
    expect(g.counters.refusedConcurrent).toBe(1);
  });

  it('requests per second: a bucket of `burst`, refilled at the rate, Retry-After until a token', () => {
    const { g, advance } = gate({ a: { perSecond: 2, burst: 3 } });
    for (let i = 0; i < 3; i++) {
      expect(g.take('a')).toBeNull();
      g.release('a');
    }
    const e = g.take('a')!;
    expect(e.details).toMatchObject({ quota: 'requestsPerSecond', limit: 2, retryAfterS: 1 });
    advance(500);
    expect(g.take('a')).toBeNull();
    expect(g.take('a')).not.toBeNull();
    advance(10_000);
    expect(g.usageOf('a').tokens).toBe(3);
  });

  it('a slow rate says how long to wait', () => {
    const { g } = gate({ a: { perSecond: 0.1, burst: 1 } });
    expect(g.take('a')).toBeNull();
    expect(g.take('a')!.details).toMatchObject({ retryAfterS: 10 });
    expect(g.check('a')).not.toBeNull();
  });
});

describe('the --accounts file', () => {
  it('reads defaults and accounts, and names the file and field of a mistake', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { readAccountsFile } = await import('./policies-file.js');
    const dir = mkdtempSync(join(tmpdir(), 'cgn-accounts-'));
    try {
      const f = join(dir, 'accounts.json');
      writeFileSync(f, JSON.stringify({ defaults: { maxConcurrent: 100 }, byAccount: { acme: { weight: 2 } } }));
      const r = readAccountsFile(f);
      expect(r.defaults).toEqual({ weight: 1, maxConcurrent: 100, perSecond: null, burst: null, regions: null });
      expect(new AccountPolicies(r.defaults as never, r.byAccount).get('acme')).toEqual({ weight: 2, maxConcurrent: 100, perSecond: null, burst: null, regions: null });
      writeFileSync(f, JSON.stringify({ byAccount: { acme: { perSecond: -1 } } }));
      expect(() => readAccountsFile(f)).toThrow(`${f}: byAccount.acme.perSecond: must be a positive number or null (no quota)`);
      writeFileSync(f, JSON.stringify({ quotas: {} }));
      expect(() => readAccountsFile(f)).toThrow(/"quotas" is not a field/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
