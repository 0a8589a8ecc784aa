/**
 * The contract every `CentralStore` adapter meets (SQLite now, PostgreSQL later):
 *
 * ```ts
 * describeCentralStore('SqliteCentralStore', () => sqliteFixture());
 * ```
 * A fixture gives a fresh empty store, a way to reopen it on the same data, and cleanup.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AccountRecord, ApiKeyRecord, CentralStore, DServiceRecord, NodeRecord, UserRecord } from '../store/store.js';

export interface StoreFixture {
  store: CentralStore;
  reopen(): Promise<CentralStore>;
  cleanup(): Promise<void>;
}

const T = 1_750_000_000_000;
const account = (id: string, over: Partial<AccountRecord> = {}): AccountRecord => ({ id, name: `name-${id}`, kinds: ['enterprise'], allowedRegions: null, disabled: false, createdAt: T, ...over });
const user = (id: string, accountId: string, over: Partial<UserRecord> = {}): UserRecord => ({ id, accountId, login: `login-${id}`, role: 'user', owner: false, disabled: false, createdAt: T, ...over });
const cred = (userId: string) => ({ userId, passwordHash: '$argon2id$x', failedCount: 0, lockedUntil: 0, changedAt: T });
const key = (id: string, accountId: string, over: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
  id, hash: id.padEnd(64, '0').slice(0, 64), prefix: 'cgn_abcdef', accountId, userId: null, name: id, scopes: ['work'], createdAt: T, createdBy: 'u',
  revokedAt: null, lastUsedAt: null, expiresAt: null, ...over,
});
const dservice = (name: string, version: string, over: Partial<DServiceRecord> = {}): DServiceRecord => ({
  name, version, digest: 'a'.repeat(64), entry: 'dist/server.js', developer: 'acc-1', deterministic: false,
  resources: { cpus: 1, memoryMb: 256, diskMb: 0, gpus: 0 }, maxBodyBytes: 1024, concurrency: 1, timeouts: { requestMs: 1000 },
  price: { perRequestMicros: 1, perCpuSecondMicros: 2, perMbMicros: 3 }, state: 'pending', submittedAt: T, submittedBy: 'u', decidedAt: null, decidedBy: null, ...over,
});
const node = (id: string): NodeRecord => ({
  id, operatorAccount: 'acc-1', region: 'eu', lat: 1.5, lon: -2.25, health: 'unknown', lastSeenAt: 0, draining: false, capacity: {}, createdAt: T,
  urls: { work: 'http://w', miner: 'ws://m', status: 'http://s', central: 'wss://c' },
});

export function describeCentralStore(name: string, make: () => Promise<StoreFixture>): void {
  describe(`CentralStore contract: ${name}`, () => {
    let f: StoreFixture | null = null;
    const fresh = async () => (f = await make()).store;
    afterEach(async () => {
      await f?.cleanup();
      f = null;
    });

    it('accounts and users round-trip; logins are unique and case-insensitive', async () => {
      const s = await fresh();
      await s.createAccount(account('acc-1', { kinds: ['enterprise', 'developer'], allowedRegions: ['eu'] }));
      await s.createUser(user('u1', 'acc-1', { login: 'alice', owner: true }), cred('u1'));
      expect(await s.getAccount('acc-1')).toEqual(account('acc-1', { kinds: ['enterprise', 'developer'], allowedRegions: ['eu'] }));
      expect(await s.getAccountByName('name-acc-1')).toMatchObject({ id: 'acc-1' });
      expect(await s.getUserByLogin('ALICE')).toMatchObject({ id: 'u1', owner: true });
      await expect(Promise.resolve().then(() => s.createUser(user('u2', 'acc-1', { login: 'alice' }), cred('u2')))).rejects.toThrow();
      expect(await s.getUser('u2')).toBeUndefined(); // nothing half-written
      expect(await s.countUsers()).toBe(1);
      expect(await s.updateAccount('acc-1', { disabled: true, allowedRegions: null })).toBe(true);
      expect(await s.getAccount('acc-1')).toMatchObject({ disabled: true, allowedRegions: null, kinds: ['enterprise', 'developer'] });
      expect(await s.updateAccount('nope', { disabled: true })).toBe(false);
      expect(await s.setUserRole('u1', 'monitor')).toBe(true);
      expect((await s.listUsers('acc-1')).map((u) => u.role)).toEqual(['monitor']);
    });

    it('counts login failures atomically and keeps the longest lock', async () => {
      const s = await fresh();
      await s.createAccount(account('acc-1'));
      await s.createUser(user('u1', 'acc-1'), cred('u1'));
      const counts = await Promise.all(Array.from({ length: 5 }, () => s.recordLoginFailure('u1', (n) => (n === 5 ? T + 60_000 : 0))));
      expect([...counts].sort()).toEqual([1, 2, 3, 4, 5]);
      expect(await s.getCredential('u1')).toMatchObject({ failedCount: 5, lockedUntil: T + 60_000 });
      await s.recordLoginFailure('u1', () => 0);
      expect((await s.getCredential('u1'))!.lockedUntil).toBe(T + 60_000);
      await s.resetLoginFailures('u1');
      expect(await s.getCredential('u1')).toMatchObject({ failedCount: 0, lockedUntil: 0 });
    });

    it('TOTP steps only move forward; recovery codes work once', async () => {
      const s = await fresh();
      await s.createAccount(account('acc-1'));
      await s.createUser(user('u1', 'acc-1'), cred('u1'));
      await s.putTotp({ userId: 'u1', secret: 'S', confirmedAt: null, lastStep: 0 });
      expect(await s.confirmTotp('u1', T, 100)).toBe(true);
      expect(await s.confirmTotp('u1', T, 101)).toBe(false); // already confirmed
      expect(await s.advanceTotpStep('u1', 100)).toBe(false);
      expect(await s.advanceTotpStep('u1', 99)).toBe(false);
      expect(await s.advanceTotpStep('u1', 101)).toBe(true);
      await s.replaceRecoveryCodes('u1', ['h1', 'h2'], T);
      expect(await s.useRecoveryCode('u1', 'h1', T)).toBe(true);
      expect(await s.useRecoveryCode('u1', 'h1', T)).toBe(false);
      expect(await s.useRecoveryCode('u1', 'zz', T)).toBe(false);
      expect(await s.countRecoveryCodes('u1')).toBe(1);
      await s.deleteTotp('u1');
      expect(await s.getTotp('u1')).toBeUndefined();
      expect(await s.countRecoveryCodes('u1')).toBe(0);
    });

    it('API keys: by hash, revoked once, last use only moves forward; sessions', async () => {
      const s = await fresh();
      await s.createAccount(account('acc-1'));
      await s.createUser(user('u1', 'acc-1'), cred('u1'));
      await s.createApiKey(key('k1', 'acc-1', { scopes: ['work:echo', 'select'] }));
      expect(await s.getApiKeyByHash(key('k1', 'acc-1').hash)).toMatchObject({ id: 'k1', scopes: ['work:echo', 'select'] });
      expect(await s.revokeApiKey('k1', T + 1)).toBe(true);
      expect(await s.revokeApiKey('k1', T + 2)).toBe(false);
      expect((await s.getApiKey('k1'))!.revokedAt).toBe(T + 1);
      await s.touchApiKey('k1', T + 10);
      await s.touchApiKey('k1', T + 5);
      expect((await s.getApiKey('k1'))!.lastUsedAt).toBe(T + 10);
      expect((await s.listApiKeys('acc-1')).map((k) => k.id)).toEqual(['k1']);
      await s.createSession({ hash: 'sh', userId: 'u1', createdAt: T, expiresAt: T + 1 });
      expect(await s.getSession('sh')).toMatchObject({ userId: 'u1' });
      await s.deleteUserSessions('u1');
      expect(await s.getSession('sh')).toBeUndefined();
    });

    it('DServices, nodes, miners', async () => {
      const s = await fresh();
      await s.createAccount(account('acc-1'));
      await s.createDService(dservice('echo', '1'));
      await s.createDService(dservice('echo', '2', { developer: 'acc-2' }));
      await expect(Promise.resolve().then(() => s.createDService(dservice('echo', '1')))).rejects.toThrow();
      expect(await s.decideDService('echo', '1', 'approved', 'admin', T + 5)).toBe(true);
      expect((await s.listDServices({ state: 'approved' })).map((d) => d.version)).toEqual(['1']);
      expect((await s.listDServices({ developer: 'acc-2' })).map((d) => d.version)).toEqual(['2']);
      expect(await s.getDService('echo', '1')).toEqual(dservice('echo', '1', { state: 'approved', decidedAt: T + 5, decidedBy: 'admin' }));
      await s.putNode(node('n1'));
      expect(await s.getNode('n1')).toEqual(node('n1'));
      expect(await s.updateNodeState('n1', { health: 'up', lastSeenAt: T, capacity: { echo: { slots: 2, busy: 1, queued: 0 } } })).toBe(true);
      expect(await s.getNode('n1')).toMatchObject({ health: 'up', lastSeenAt: T, capacity: { echo: { slots: 2, busy: 1, queued: 0 } }, region: 'eu' });
      expect(await s.deleteNode('n1')).toBe(true);
      expect(await s.deleteNode('n1')).toBe(false);
      await s.createMiner({ id: 'ab'.repeat(32), accountId: 'acc-1', name: 'rig', tier: 'open', attestationKey: null, createdAt: T, createdBy: 'u', revokedAt: null });
      expect(await s.updateMiner('ab'.repeat(32), { tier: 'dedicated', attestationKey: 'PEM' })).toBe(true);
      expect(await s.getMiner('ab'.repeat(32))).toMatchObject({ tier: 'dedicated', attestationKey: 'PEM' });
      expect(await s.updateMiner('cd'.repeat(32), { tier: 'dedicated' })).toBe(false);
      await s.putRuntimeMeasurement({ digest: 'ef'.repeat(32), note: 'cgn-miner 0.1', createdAt: T, createdBy: 'u' });
      await s.putRuntimeMeasurement({ digest: 'ef'.repeat(32), note: 'renamed', createdAt: T, createdBy: 'u' });
      expect(await s.listRuntimeMeasurements()).toEqual([{ digest: 'ef'.repeat(32), note: 'renamed', createdAt: T, createdBy: 'u' }]);
      expect(await s.deleteRuntimeMeasurement('ef'.repeat(32))).toBe(true);
      expect(await s.listRuntimeMeasurements()).toEqual([]);
      expect(await s.revokeMiner('ab'.repeat(32), T)).toBe(true);
      expect(await s.revokeMiner('ab'.repeat(32), T)).toBe(false);
      expect(await s.listMiners('acc-1')).toHaveLength(1);
    });

    it('the audit log is append-only, newest first, filterable and bounded', async () => {
      const s = await fresh();
      for (let i = 0; i < 30; i++) {
        await s.appendAudit({ at: T + i, type: i % 2 ? 'login_ok' : 'login_failed', actor: `u${i % 3}`, accountId: i % 5 ? 'acc-1' : null, subject: null, ip: null, outcome: 'ok', details: { i } });
      }
      const all = await s.queryAudit({ limit: 1000 });
      expect(all).toHaveLength(30);
      expect(all[0]!.details).toEqual({ i: 29 });
      expect((await s.queryAudit({ type: 'login_ok' })).every((e) => e.type === 'login_ok')).toBe(true);
      expect((await s.queryAudit({ actor: 'u1', accountId: 'acc-1' })).every((e) => e.actor === 'u1' && e.accountId === 'acc-1')).toBe(true);
      expect((await s.queryAudit({ since: T + 10, until: T + 20 })).map((e) => e.details['i'])).toEqual([19, 18, 17, 16, 15, 14, 13, 12, 11, 10]);
      const page1 = await s.queryAudit({ limit: 10 });
      const page2 = await s.queryAudit({ limit: 10, beforeSeq: page1.at(-1)!.seq });
      expect(page2[0]!.details).toEqual({ i: 19 });
    });

    it('keeps everything across a reopen (restart)', async () => {
      const s = await fresh();
      await s.createAccount(account('acc-1'));
      await s.createApiKey(key('k1', 'acc-1'));
      await s.addSigningKey({ kid: 'k', alg: 'EdDSA', privateJwk: '{}', publicJwk: '{}', createdAt: T, retiredAt: null });
      const r = await f!.reopen();
      expect(await r.getApiKey('k1')).toMatchObject({ id: 'k1' });
      expect(await r.listSigningKeys()).toHaveLength(1);
      await r.retireSigningKeys(T + 1);
      expect((await r.listSigningKeys())[0]!.retiredAt).toBe(T + 1);
    });
  });
}
