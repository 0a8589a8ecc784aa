/** The set of recent token revocations central sends a node whose link opens, read from the audit log. */
import { describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { ManualClock } from '../clock.js';
import { SqliteCentralStore } from '../store/sqlite.js';
import { TokenIssuer } from './tokens.js';
import { recentTokenRevocations, revocationEntry, revocationWindowMs, TOKEN_REVOCATION_MARGIN_MS } from './token-revocations.js';

const audit = (store: SqliteCentralStore, type: string, subject: string, at: number, details: Record<string, unknown> = {}, outcome: 'ok' | 'denied' = 'ok') =>
  store.appendAudit({ at, type, actor: 'usr_admin', accountId: null, subject, ip: null, outcome, details });

describe('recent token revocations', () => {
  const window = revocationWindowMs(300);

  it('spans the token lifetime plus a margin for clock tolerance', () => {
    expect(window).toBe(300_000 + TOKEN_REVOCATION_MARGIN_MS);
    expect(revocationEntry('key_1', 1000, 1000, window)).toEqual({ id: 'key_1', at: 1000, forMs: window });
    expect(revocationEntry('key_1', 1000, 1000 + window + 5, window).forMs).toBe(0);
  });

  it('lists keys revoked and accounts disabled within the window, each with what is left of it', async () => {
    const store = new SqliteCentralStore({ path: ':memory:' });
    const now = 10_000_000;
    audit(store, 'key_revoked', 'key_old', now - window - 1);
    audit(store, 'key_revoked', 'key_1', now - 60_000);
    audit(store, 'key_revoked', 'key_2', now - 1000, {}, 'denied');
    audit(store, 'account_updated', 'acc_1', now - 2000, { disabled: true });
    audit(store, 'account_updated', 'acc_1', now - 1000, { disabled: false });
    audit(store, 'account_updated', 'acc_2', now - 3000, { kinds: ['enterprise'] });
    audit(store, 'key_created', 'key_3', now - 10);
    const set = await recentTokenRevocations(store, now, window);
    expect(set.keys).toEqual([{ id: 'key_1', at: now - 60_000, forMs: window - 60_000 }]);
    // acc_1 was re-enabled since: still listed, as its tokens from before the disabling stay refused
    expect(set.accounts).toEqual([{ id: 'acc_1', at: now - 2000, forMs: window - 2000 }]);
    store.close();
  });

  it('reads past one page of the audit log', async () => {
    const store = new SqliteCentralStore({ path: ':memory:' });
    const now = 10_000_000;
    for (let i = 0; i < 2500; i++) audit(store, 'key_revoked', `key_${i}`, now - 100_000 + i);
    const set = await recentTokenRevocations(store, now, window);
    expect(set.keys).toHaveLength(2500);
    store.close();
  });
});

describe('access tokens never outlive their key', () => {
  it('a token of a key that expires sooner than the token lifetime expires with the key', async () => {
    const store = new SqliteCentralStore({ path: ':memory:' });
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const issuer = new TokenIssuer(store, clock);
    await issuer.init();
    const t = await issuer.issue({ clientId: 'key_1', account: 'acc_1', scopes: ['work'], notAfter: clock.now() + 42_000 });
    expect(t.expiresIn).toBe(42);
    expect(decodeJwt(t.token).exp).toBe(clock.now() / 1000 + 42);
    const full = await issuer.issue({ clientId: 'key_1', account: 'acc_1', scopes: ['work'], notAfter: null });
    expect(full.expiresIn).toBe(300);
    store.close();
  });
});
