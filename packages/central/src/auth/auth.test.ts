import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { passwordProblems, Argon2Hasher, ARGON2_TEST, ARGON2_DEFAULTS } from './passwords.js';
import { lockDurationMs } from './lockout.js';
import { totpCode, matchTotp } from './totp.js';
import { ManualClock } from '../clock.js';
import { CentralService } from '../service.js';
import { SqliteCentralStore } from '../store/sqlite.js';
import { CentralError } from '../errors.js';

describe('password policy', () => {
  it.each([
    ['Tr0ub4dor&3x', []],
    ['Ab!defgh', []],
    ['short!A', ['at least 8']],
    ['A!' + 'x'.repeat(31), ['at most 32']],
    ['alllower!case', ['upper-case']],
    ['ALLUPPER!CASE', ['lower-case']],
    ['NoSpecials123', ['special']],
    ['Password1!', ['too common']],
    ['!!Qwerty2024', ['too common']],
    ['Welcome123!', ['too common']],
  ])('%s', (pw, expected) => {
    const p = passwordProblems(pw);
    if (expected.length === 0) expect(p).toEqual([]);
    for (const e of expected) expect(p.join('; ')).toContain(e);
  });

  it('refuses the login inside the password', () => {
    expect(passwordProblems('Alice-Secure#9', { login: 'alice' }).join()).toContain('login');
  });

  it('production argon2 defaults are memory-hard (OWASP: 19 MiB, t=2, p=1)', async () => {
    expect(ARGON2_DEFAULTS).toEqual({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
    const h = new Argon2Hasher(ARGON2_TEST);
    const hash = await h.hash('Tr0ub4dor&3x');
    expect(hash).toMatch(/^\$argon2id\$/);
    expect(await h.verify(hash, 'Tr0ub4dor&3x')).toBe(true);
    expect(await h.verify(hash, 'Tr0ub4dor&3y')).toBe(false);
    expect(new Argon2Hasher().needsRehash(hash)).toBe(true);
  });
});

describe('lockout schedule', () => {
  it('60 s at the 5th and 10th failure, 1 h from the 15th, nothing in between', () => {
    const locks = Array.from({ length: 21 }, (_, i) => lockDurationMs(i));
    expect(locks[4]).toBe(0);
    expect(locks[5]).toBe(60_000);
    expect(locks[6]).toBe(0);
    expect(locks[10]).toBe(60_000);
    expect(locks[15]).toBe(3_600_000);
    expect(locks[20]).toBe(3_600_000);
  });
});

describe('login, lockout and TOTP (service, injected clock)', () => {
  let clock: ManualClock;
  let store: SqliteCentralStore;
  let svc: CentralService;
  const ctx = { ip: '192.0.2.7' };
  const PW = 'Correct-Horse9!';

  beforeEach(async () => {
    clock = new ManualClock(Date.UTC(2025, 0, 1));
    store = new SqliteCentralStore({ path: ':memory:' });
    svc = new CentralService(store, { clock, hasher: new Argon2Hasher(ARGON2_TEST) });
    await svc.init();
    await svc.bootstrapAdmin('boss', PW);
  });
  afterEach(() => store.close());

  const reasonOf = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
      return 'ok';
    } catch (e) {
      if (e instanceof CentralError) return e.reason + (e.retryAfterS !== undefined ? `:${e.retryAfterS}` : '');
      throw e;
    }
  };
  const attempt = (pw: string, extra: { totp?: string; recoveryCode?: string } = {}) => reasonOf(svc.login({ login: 'boss', password: pw, ...extra }, ctx));

  it('locks 60 s after 5 failures, refuses even the right password while locked, and unlocks after', async () => {
    for (let i = 0; i < 4; i++) expect(await attempt('wrong-Pass1!')).toBe('unauthorized');
    expect(await attempt('wrong-Pass1!')).toBe('unauthorized'); // 5th: sets the lock
    expect(await attempt(PW)).toBe('locked:60');
    clock.advance(59_000);
    expect(await attempt(PW)).toBe('locked:1');
    clock.advance(1_000);
    expect(await attempt(PW)).toBe('ok');
    // success reset the count: 4 more failures do not lock
    for (let i = 0; i < 4; i++) expect(await attempt('nope-Nope1!')).toBe('unauthorized');
    expect(await attempt(PW)).toBe('ok');
  });

  it('an unknown login answers exactly like a real one: 401, then locked after 5 failures (logins cannot be discovered)', async () => {
    const as = (login: string, pw: string) => reasonOf(svc.login({ login, password: pw }, ctx));
    const real: string[] = [];
    const ghost: string[] = [];
    for (let i = 0; i < 7; i++) {
      real.push(await as('boss', 'wrong-Pass1!'));
      ghost.push(await as('nobody-here', 'wrong-Pass1!'));
    }
    expect(ghost).toEqual(real);
    expect(real).toEqual(['unauthorized', 'unauthorized', 'unauthorized', 'unauthorized', 'unauthorized', 'locked:60', 'locked:60']);
    clock.advance(60_000);
    expect(await as('nobody-here', 'wrong-Pass1!')).toBe(await as('boss', 'wrong-Pass1!'));
  });

  it('locks for one hour after 15 consecutive failures; attempts while locked do not extend it', async () => {
    const fail = async (n: number) => {
      for (let i = 0; i < n; i++) expect(await attempt('wrong-Pass1!')).toBe('unauthorized');
    };
    await fail(5);
    clock.advance(60_000);
    await fail(5); // 10
    expect(await attempt(PW)).toBe('locked:60');
    clock.advance(60_000);
    await fail(5); // 15
    expect(await attempt(PW)).toBe('locked:3600');
    expect(await attempt('wrong-Pass1!')).toBe('locked:3600');
    clock.advance(3_599_000);
    expect(await attempt(PW)).toBe('locked:1');
    clock.advance(1_000);
    expect(await attempt(PW)).toBe('ok');
    const events = await store.queryAudit({ type: 'lockout' });
    expect(events.map((e) => e.details['seconds'])).toEqual([3600, 60, 60]);
  });

  it('enrols TOTP, then wants a code; a wrong or replayed code is refused and counts as a failure', async () => {
    const { token } = await svc.login({ login: 'boss', password: PW }, ctx);
    const actor = (await svc.authenticate(token))!;
    const { secret, uri } = await svc.beginTotp(actor, ctx);
    expect(uri).toMatch(/^otpauth:\/\/totp\/CGN:boss\?/);
    expect(uri).toContain(`secret=${secret}`);
    // a wrong code does not confirm
    const wrong = String((Number(totpCode(secret, clock.now())) + 1) % 1_000_000).padStart(6, '0');
    expect(await reasonOf(svc.confirmTotp(actor, wrong, ctx))).toBe('bad_request');
    const { recoveryCodes } = await svc.confirmTotp(actor, totpCode(secret, clock.now()), ctx);
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);

    // password alone no longer suffices
    expect(await attempt(PW)).toBe('mfa_required');
    // the code used to confirm enrolment cannot log in (same step)
    expect(await attempt(PW, { totp: totpCode(secret, clock.now()) })).toBe('unauthorized');
    clock.advance(30_000);
    const code = totpCode(secret, clock.now());
    expect(await attempt(PW, { totp: wrong === code ? '000000' : wrong })).toBe('unauthorized');
    expect(await attempt(PW, { totp: code })).toBe('ok');
    // replay of the very same code, in the same step or the next one (within the drift window)
    expect(await attempt(PW, { totp: code })).toBe('unauthorized');
    clock.advance(30_000);
    expect(matchTotp(secret, code, clock.now())).not.toBeNull(); // still inside the window...
    expect(await attempt(PW, { totp: code })).toBe('unauthorized'); // ...but refused as a replay
    const failures = await store.queryAudit({ type: 'login_failed' });
    expect(failures.map((e) => e.details['reason'])).toContain('replayed TOTP code');
    expect(failures.map((e) => e.details['reason'])).toContain('wrong TOTP code');

    // recovery codes work once each
    const rc = recoveryCodes[0]!;
    expect(await attempt(PW, { recoveryCode: rc.toUpperCase() })).toBe('ok');
    expect(await attempt(PW, { recoveryCode: rc })).toBe('unauthorized');
  });

  it('an unknown login is refused like a wrong password', async () => {
    expect(await reasonOf(svc.login({ login: 'nobody', password: PW }, ctx))).toBe('unauthorized');
  });
});
