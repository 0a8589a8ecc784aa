/** The node's set of revoked token credentials against a fake link and a manual clock. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { decodeLinkFrame, encodeLinkFrame, LINK_MAX_REVOCATIONS } from '@cgn/protocol';
import { TokenRevocations } from './token-revocations.js';
import { CentralKeyVerifier, type KeyLink } from './key-verifier.js';
import type { NodeTokenVerifier, TokenPrincipal } from './token-verifier.js';

class Clock {
  constructor(public t = 1_000_000) {}
  now(): number {
    return this.t;
  }
}

class FakeLink extends EventEmitter {
  connected = true;
  async request(): Promise<unknown> {
    throw new Error('not used');
  }
}

const token = (keyId: string, account: string, issuedAt: number) => ({ keyId, account, issuedAt });
const entry = (id: string, at: number, forMs = 360_000) => ({ id, at, forMs });

describe('TokenRevocations', () => {
  it('refuses nothing until central has sent its set: the node cannot know (stale)', () => {
    const r = new TokenRevocations({ clock: new Clock() });
    expect(r.check(token('key_1', 'acc_1', 0))).toBe('stale');
    r.apply({ sync: true, keys: [], accounts: [] });
    expect(r.check(token('key_1', 'acc_1', 0))).toBe('ok');
  });

  it('refuses every token of a revoked key, and an account\'s tokens issued up to its disabling', () => {
    const clock = new Clock();
    const r = new TokenRevocations({ clock });
    r.apply({ sync: true, keys: [entry('key_1', 900_000)], accounts: [entry('acc_2', 950_000)] });
    expect(r.check(token('key_1', 'acc_1', 999_000))).toBe('revoked');
    expect(r.check(token('key_9', 'acc_1', 999_000))).toBe('ok');
    expect(r.check(token('key_9', 'acc_2', 950_000))).toBe('revoked');
    expect(r.check(token('key_9', 'acc_2', 949_000))).toBe('revoked');
    expect(r.check(token('key_9', 'acc_2', 951_000))).toBe('ok'); // issued after re-enabling
    expect(r.counters.refused).toBe(3);
  });

  it('drops an entry once every token it could concern has expired', () => {
    const clock = new Clock();
    const r = new TokenRevocations({ clock });
    r.apply({ sync: true, keys: [entry('key_1', 1, 1000)], accounts: [] });
    clock.t += 999;
    expect(r.check(token('key_1', 'a', 0))).toBe('revoked');
    clock.t += 1;
    expect(r.check(token('key_1', 'a', 0))).toBe('ok');
    r.apply({ sync: false, keys: [], accounts: [] });
    expect(r.size).toEqual({ keys: 0, accounts: 0 });
  });

  it('merges pushes: a later set from another central replica does not erase an entry', () => {
    const r = new TokenRevocations({ clock: new Clock() });
    r.apply({ sync: false, keys: [entry('key_1', 5)], accounts: [entry('acc_1', 10)] });
    r.apply({ sync: true, keys: [], accounts: [entry('acc_1', 7, 10)] });
    expect(r.check(token('key_1', 'x', 0))).toBe('revoked');
    expect(r.check(token('k', 'acc_1', 9))).toBe('revoked'); // the later disabling time is kept
  });

  it('without central, tokens are taken for the grace only, then are stale until a new set arrives', () => {
    const clock = new Clock();
    const link = new FakeLink();
    const r = new TokenRevocations({ clock, graceMs: 30_000 }).attach(link as unknown as KeyLink & { connected: boolean });
    link.emit('push', { t: 'push', v: 1, kind: 'tokens_revoked', sync: true, keys: [], accounts: [] });
    link.connected = false;
    link.emit('disconnected', 'central', '1006');
    clock.t += 30_000;
    expect(r.check(token('k', 'a', 0))).toBe('ok');
    clock.t += 1;
    expect(r.check(token('k', 'a', 0))).toBe('stale');
    link.connected = true;
    link.emit('connected', 'central');
    expect(r.check(token('k', 'a', 0))).toBe('stale'); // connected, but the set has not come yet
    link.emit('push', { t: 'push', v: 1, kind: 'tokens_revoked', sync: true, keys: [entry('key_x', 1)], accounts: [] });
    expect(r.check(token('k', 'a', 0))).toBe('ok');
    expect(r.check(token('key_x', 'a', 0))).toBe('revoked');
    r.detach();
    expect(link.listenerCount('push')).toBe(0);
  });

  it('one central leaving while another stays connected keeps tokens checked', () => {
    const clock = new Clock();
    const link = new FakeLink();
    const r = new TokenRevocations({ clock, graceMs: 10 }).attach(link as unknown as KeyLink & { connected: boolean });
    r.apply({ sync: true, keys: [], accounts: [] });
    link.emit('disconnected', 'central-b', '1001'); // link.connected is still true
    clock.t += 1000;
    expect(r.check(token('k', 'a', 0))).toBe('ok');
  });
});

describe('CentralKeyVerifier with token revocations', () => {
  const principal: TokenPrincipal = { account: 'acc_1', keyId: 'key_1', scopes: ['work'], endUser: null, expiresAt: 2e12, issuedAt: 1_000_000 };
  const tokens = { verifySync: () => principal, verify: async () => principal } as unknown as NodeTokenVerifier;
  const jwt = 'aaaa.bbbb.cccc';

  it('answers 401 (invalid) for a revoked token and 503 (unavailable) when the node cannot know', async () => {
    const clock = new Clock();
    const link = new FakeLink();
    const revocations = new TokenRevocations({ clock });
    const v = new CentralKeyVerifier(link as unknown as KeyLink, { clock, tokens, revocations });
    expect(v.verify(jwt)).toBeNull();
    expect(await v.lookup(jwt)).toEqual({ principal: null, from: 'unavailable' });
    revocations.apply({ sync: true, keys: [], accounts: [] });
    expect(v.verify(jwt)).toMatchObject({ keyId: 'key_1', via: 'token' });
    revocations.apply({ sync: false, keys: [entry('key_1', clock.t)], accounts: [] });
    expect(v.verify(jwt)).toBeNull();
    expect(await v.lookup(jwt)).toEqual({ principal: null, from: 'invalid' });
    expect(v.counters).toMatchObject({ tokensRevoked: 1, tokensUnverifiable: 1 });
    v.close();
  });
});

describe('tokens_revoked link frames', () => {
  it('round-trip and are checked field by field', () => {
    const f = { t: 'push', kind: 'tokens_revoked', sync: true, keys: [entry('key_1', 5)], accounts: [entry('acc_1', 6, 0)] } as const;
    expect(decodeLinkFrame(encodeLinkFrame(f))).toEqual({ ...f, v: 1 });
    const base = { t: 'push', v: 1, kind: 'tokens_revoked', sync: false, keys: [], accounts: [] };
    for (const bad of [
      { ...base, sync: 'yes' },
      { ...base, keys: 'key_1' },
      { ...base, keys: [{ id: 'key 1', at: 1, forMs: 1 }] },
      { ...base, keys: [{ id: 'k', at: -1, forMs: 1 }] },
      { ...base, accounts: [{ id: 'a', at: 1, forMs: 1.5 }] },
      { ...base, accounts: [{ id: 'a', at: 1, forMs: 7 * 86_400_000 + 1 }] },
      { ...base, keys: Array.from({ length: LINK_MAX_REVOCATIONS / 2 + 1 }, (_, i) => entry(`k${i}`, 1)), accounts: Array.from({ length: LINK_MAX_REVOCATIONS / 2 }, (_, i) => entry(`a${i}`, 1)) },
    ]) expect(() => decodeLinkFrame(JSON.stringify(bad)), JSON.stringify(bad).slice(0, 120)).toThrow(/bad link frame/);
  });
});
