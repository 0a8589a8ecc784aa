/**
 * The Central Service's logic, free of HTTP: accounts, users, credentials, second factor, API
 * keys, tokens, registries, selection and the audit log. The HTTP layer checks roles from its
 * route table; this layer checks ownership (which account, whose key) and writes the audit log.
 */
import type { PackageStore } from './packages/package-store.js';
import { EventEmitter } from 'node:events';
import { CentralError, badRequest, conflict, forbidden, notFound } from './errors.js';
import { systemClock, type Clock } from './clock.js';
import { newId, newSecret, sha256Hex } from './ids.js';
import { Argon2Hasher, passwordProblems, type PasswordHasher } from './auth/passwords.js';
import { defaultCommonPasswords } from './auth/common-passwords.js';
import { LOCKOUT_DEFAULTS, lockDurationMs, type LockoutPolicy } from './auth/lockout.js';
import { matchTotp, newRecoveryCodes, newTotpSecret, provisioningUri, recoveryCodeHash } from './auth/totp.js';
import { DEFAULT_KEY_SCOPES, hashApiKey, isValidScope, looksLikeApiKey, newApiKeySecret } from './auth/api-keys.js';
import { TokenIssuer, createTokenVerifier, looksLikeJwt } from './auth/tokens.js';
import { recentTokenRevocations, revocationWindowMs, type TokenRevocationSet } from './auth/token-revocations.js';
import { dserviceRecord, nodeUrlProblems, type DServiceSubmission } from './registry/descriptors.js';
import { GeoIp } from './registry/geoip.js';
import { normaliseAttestationKey } from './registry/attestation-key.js';
import { selectNodesForDApp, selectNodesForMiner, type LatLon, type RankedNode } from './selection.js';
import type {
  AccountKind, AccountRecord, ApiKeyRecord, ApprovalState, AuditInput, AuditQuery, CentralStore, DServiceCapacity,
  DServiceRecord, GrantedTier, MinerRecord, NodeHealth, NodeRecord, Role, UserRecord,
} from './store/store.js';

export const SYSTEM_ACCOUNT_NAME = 'cgn';
export const STAFF_ROLES: readonly Role[] = ['administrator', 'operator', 'monitor'];
export const SESSION_PREFIX = 'cgs_';

export type Actor =
  | { kind: 'session'; user: UserRecord; account: AccountRecord; sessionHash: string }
  | { kind: 'key'; key: ApiKeyRecord; account: AccountRecord; scopes: string[] }
  | { kind: 'token'; keyId: string; account: AccountRecord; scopes: string[] };

export interface Ctx {
  ip: string | null;
}

export interface CentralServiceOptions {
  clock?: Clock;
  hasher?: PasswordHasher;
  lockout?: LockoutPolicy;
  /** Session lifetime, ms. Default 12 h. */
  sessionTtlMs?: number;
  /** A list of common passwords (folded: `foldPassword`) instead of the shipped one. */
  commonPasswords?: ReadonlySet<string>;
  tokens?: TokenIssuer;
  geoip?: GeoIp;
  /** `lastUsedAt` of a key is written at most this often, ms. Default 60 s. */
  keyTouchIntervalMs?: number;
  /** A node not heard from for this long is treated as unavailable by selection. Default 60 s. */
  staleAfterMs?: number;
}

export interface PrincipalView {
  account: string;
  keyId: string;
  scopes: string[];
  endUser: string | null;
  /** Epoch ms the key expires, or null. */
  expiresAt: number | null;
}

interface Events {
  keyRevoked: [{ keyId: string; hash: string; accountId: string }];
  /** Access tokens of a key (revoked) or an account (disabled) issued up to `at` must be refused. */
  tokensRevoked: [{ kind: 'key' | 'account'; id: string; at: number }];
  directoryChanged: [];
  dservicesChanged: [];
  attestationChanged: [];
  /** A miner key was revoked, or its granted tier or attestation key changed: nodes re-check it. */
  minerChanged: [{ id: string }];
  /** An account's fair-queue weight or quotas changed: nodes fetch the policies again. */
  accountsChanged: [];
}

export const userView = (u: UserRecord) => ({
  id: u.id, accountId: u.accountId, login: u.login, role: u.role, owner: u.owner, disabled: u.disabled, createdAt: u.createdAt,
});
export const keyView = (k: ApiKeyRecord) => ({
  id: k.id, prefix: k.prefix, accountId: k.accountId, userId: k.userId, name: k.name, scopes: k.scopes, createdAt: k.createdAt,
  createdBy: k.createdBy, revokedAt: k.revokedAt, lastUsedAt: k.lastUsedAt, expiresAt: k.expiresAt,
});
export const accountView = (a: AccountRecord) => ({ ...a });

export class CentralService extends EventEmitter<Events> {
  readonly clock: Clock;
  readonly hasher: PasswordHasher;
  readonly tokens: TokenIssuer;
  readonly geoip: GeoIp;
  /** Uploaded DService package archives by digest (`packages/package-store.ts`); null: uploads refused. */
  packages: PackageStore | null = null;
  private readonly lockout: LockoutPolicy;
  private readonly sessionTtlMs: number;
  private readonly common: ReadonlySet<string>;
  private readonly touchEveryMs: number;
  private readonly staleAfterMs: number;
  private readonly lastTouch = new Map<string, number>();
  private dummyHash: Promise<string> | null = null;
  private verifyOwnToken: ((t: string) => Promise<{ account: string; keyId: string; scopes: string[] }>) | null = null;

  constructor(readonly store: CentralStore, options: CentralServiceOptions = {}) {
    super();
    this.clock = options.clock ?? systemClock;
    this.hasher = options.hasher ?? new Argon2Hasher();
    this.lockout = options.lockout ?? LOCKOUT_DEFAULTS;
    this.sessionTtlMs = options.sessionTtlMs ?? 12 * 3600_000;
    // Built here, once, so the first sign-up does not pay for it.
    this.common = options.commonPasswords ?? defaultCommonPasswords();
    this.tokens = options.tokens ?? new TokenIssuer(store, this.clock);
    this.geoip = options.geoip ?? GeoIp.fromFile();
    this.touchEveryMs = options.keyTouchIntervalMs ?? 60_000;
    this.staleAfterMs = options.staleAfterMs ?? 60_000;
  }

  async init(): Promise<void> {
    await this.tokens.init();
    this.verifyOwnToken = createTokenVerifier({
      jwks: async () => this.tokens.jwks(), issuer: this.tokens.issuer, audience: this.tokens.audience, clock: this.clock, refetchMinIntervalMs: 0,
    });
  }

  // ---------------------------------------------------------------- audit

  async audit(e: Omit<AuditInput, 'at' | 'details' | 'accountId' | 'subject' | 'ip' | 'outcome'> & Partial<AuditInput>): Promise<void> {
    await this.store.appendAudit({
      at: this.clock.now(), type: e.type, actor: e.actor, accountId: e.accountId ?? null, subject: e.subject ?? null,
      ip: e.ip ?? null, outcome: e.outcome ?? 'ok', details: e.details ?? {},
    });
  }

  queryAudit(q: AuditQuery) {
    return this.store.queryAudit(q);
  }

  // ---------------------------------------------------------------- helpers

  private checkPassword(password: string, login: string): void {
    const problems = passwordProblems(password, { login, common: this.common });
    if (problems.length > 0) {
      throw new CentralError('weak_password', `password ${problems.join('; ')}`, { details: { problems } });
    }
  }

  private async account(id: string): Promise<AccountRecord> {
    const a = await this.store.getAccount(id);
    if (a === undefined) throw notFound(`account ${id}`);
    return a;
  }

  private static actorId(a: Actor): string {
    return a.kind === 'session' ? a.user.id : a.kind === 'key' ? a.key.id : a.keyId;
  }

  static isStaff(a: Actor, roles: readonly Role[] = STAFF_ROLES): boolean {
    return a.kind === 'session' && roles.includes(a.user.role);
  }

  private static session(a: Actor): Extract<Actor, { kind: 'session' }> {
    if (a.kind !== 'session') throw new CentralError('unauthorized', 'this needs a user session (log in), not an API key or token');
    return a;
  }

  /** A user (role `user`) of this very account. */
  private static member(a: Actor, accountId: string): UserRecord | null {
    return a.kind === 'session' && a.user.role === 'user' && a.user.accountId === accountId ? a.user : null;
  }

  private async denied(actor: Actor, what: string, ctx: Ctx, accountId: string | null = null): Promise<never> {
    await this.audit({ type: 'access_denied', actor: CentralService.actorId(actor), accountId, ip: ctx.ip, outcome: 'denied', details: { what } });
    throw forbidden(`not allowed: ${what}`);
  }

  // ---------------------------------------------------------------- bootstrap and accounts

  /** Creates the system account and a first administrator when the store has no users. */
  async bootstrapAdmin(login: string, password: string): Promise<{ created: boolean; userId: string | null }> {
    if ((await this.store.countUsers()) > 0) return { created: false, userId: null };
    this.checkPassword(password, login);
    const now = this.clock.now();
    let sys = await this.store.getAccountByName(SYSTEM_ACCOUNT_NAME);
    if (sys === undefined) {
      sys = { id: newId('acc'), name: SYSTEM_ACCOUNT_NAME, kinds: ['system'], allowedRegions: null, disabled: false, createdAt: now };
      await this.store.createAccount(sys);
    }
    const user: UserRecord = { id: newId('usr'), accountId: sys.id, login: login.toLowerCase(), role: 'administrator', owner: true, disabled: false, createdAt: now };
    await this.store.createUser(user, { userId: user.id, passwordHash: await this.hasher.hash(password), failedCount: 0, lockedUntil: 0, changedAt: now });
    await this.audit({ type: 'account_created', actor: 'system', accountId: sys.id, subject: sys.id, details: { name: sys.name, kinds: sys.kinds } });
    await this.audit({ type: 'user_created', actor: 'system', accountId: sys.id, subject: user.id, details: { login: user.login, role: user.role } });
    return { created: true, userId: user.id };
  }

  async createAccount(
    actor: Actor,
    input: { name: string; kinds: AccountKind[]; allowedRegions?: string[] | null; owner: { login: string; password: string } },
    ctx: Ctx,
  ) {
    if (!CentralService.isStaff(actor, ['administrator'])) return this.denied(actor, 'create accounts', ctx);
    if (input.kinds.includes('system')) throw badRequest('kinds: "system" is reserved for the network operator\'s account');
    if ((await this.store.getAccountByName(input.name)) !== undefined) throw conflict(`an account named "${input.name}" exists`);
    if ((await this.store.getUserByLogin(input.owner.login)) !== undefined) throw conflict(`login "${input.owner.login}" is taken`);
    this.checkPassword(input.owner.password, input.owner.login);
    const now = this.clock.now();
    const account: AccountRecord = {
      id: newId('acc'), name: input.name, kinds: [...new Set(input.kinds)], allowedRegions: input.allowedRegions ?? null, disabled: false, createdAt: now,
    };
    const owner: UserRecord = { id: newId('usr'), accountId: account.id, login: input.owner.login.toLowerCase(), role: 'user', owner: true, disabled: false, createdAt: now };
    await this.store.createAccount(account);
    await this.store.createUser(owner, { userId: owner.id, passwordHash: await this.hasher.hash(input.owner.password), failedCount: 0, lockedUntil: 0, changedAt: now });
    const by = CentralService.actorId(actor);
    await this.audit({ type: 'account_created', actor: by, accountId: account.id, subject: account.id, ip: ctx.ip, details: { name: account.name, kinds: account.kinds } });
    await this.audit({ type: 'user_created', actor: by, accountId: account.id, subject: owner.id, ip: ctx.ip, details: { login: owner.login, role: 'user', owner: true } });
    return { account: accountView(account), owner: userView(owner) };
  }

  async listAccounts(actor: Actor, ctx: Ctx) {
    if (!CentralService.isStaff(actor)) return this.denied(actor, 'list accounts', ctx);
    return (await this.store.listAccounts()).map(accountView);
  }

  async getAccount(actor: Actor, id: string, ctx: Ctx) {
    if (!CentralService.isStaff(actor) && CentralService.member(actor, id) === null) return this.denied(actor, `read account ${id}`, ctx, id);
    return accountView(await this.account(id));
  }

  async updateAccount(actor: Actor, id: string, patch: { kinds?: AccountKind[]; allowedRegions?: string[] | null; disabled?: boolean; policy?: AccountRecord['policy'] }, ctx: Ctx) {
    if (!CentralService.isStaff(actor, ['administrator'])) return this.denied(actor, 'update accounts', ctx, id);
    const a = await this.account(id);
    if (a.kinds.includes('system') && (patch.disabled === true || (patch.kinds !== undefined && !patch.kinds.includes('system')))) {
      throw badRequest('the system account cannot be disabled or lose its kind');
    }
    if (patch.kinds?.includes('system') && !a.kinds.includes('system')) throw badRequest('kinds: "system" is reserved');
    const clean: Partial<Pick<AccountRecord, 'kinds' | 'allowedRegions' | 'disabled' | 'policy'>> = {};
    if (patch.kinds !== undefined) clean.kinds = [...new Set(patch.kinds)];
    if (patch.allowedRegions !== undefined) clean.allowedRegions = patch.allowedRegions;
    if (patch.disabled !== undefined) clean.disabled = patch.disabled;
    if (patch.policy !== undefined) clean.policy = patch.policy;
    await this.store.updateAccount(id, clean);
    await this.audit({ type: 'account_updated', actor: CentralService.actorId(actor), accountId: id, subject: id, ip: ctx.ip, details: { ...clean } });
    if (patch.disabled === true) for (const k of await this.store.listApiKeys(id)) if (k.revokedAt === null) this.emit('keyRevoked', { keyId: k.id, hash: k.hash, accountId: id });
    if (patch.disabled === true) this.emit('tokensRevoked', { kind: 'account', id, at: this.clock.now() });
    if (patch.policy !== undefined || patch.allowedRegions !== undefined) this.emit('accountsChanged');
    return accountView(await this.account(id));
  }

  /**
   * Every account's weight, quotas and data regions set here, for the nodes (`account_policies` on
   * the link): the nodes' brokers send an account's work only to miners in its regions.
   */
  async accountPolicies(): Promise<{ byAccount: Record<string, NonNullable<AccountRecord['policy']> & { regions?: string[] }> }> {
    const byAccount: Record<string, NonNullable<AccountRecord['policy']> & { regions?: string[] }> = {};
    for (const a of await this.store.listAccounts()) {
      if (a.policy == null && a.allowedRegions === null) continue;
      byAccount[a.id] = { ...(a.policy ?? {}), ...(a.allowedRegions !== null ? { regions: a.allowedRegions } : {}) };
    }
    return { byAccount };
  }

  // ---------------------------------------------------------------- users and roles

  async addUser(actor: Actor, accountId: string, input: { login: string; password: string; role?: Role }, ctx: Ctx) {
    const account = await this.account(accountId);
    const admin = CentralService.isStaff(actor, ['administrator']);
    const owner = CentralService.member(actor, accountId)?.owner === true;
    if (!admin && !owner) return this.denied(actor, `add users to account ${accountId}`, ctx, accountId);
    const role: Role = input.role ?? (account.kinds.includes('system') ? 'monitor' : 'user');
    if (!admin && role !== 'user') return this.denied(actor, `give role ${role}`, ctx, accountId);
    this.roleFits(role, account);
    if ((await this.store.getUserByLogin(input.login)) !== undefined) throw conflict(`login "${input.login}" is taken`);
    this.checkPassword(input.password, input.login);
    const now = this.clock.now();
    const user: UserRecord = { id: newId('usr'), accountId, login: input.login.toLowerCase(), role, owner: false, disabled: false, createdAt: now };
    await this.store.createUser(user, { userId: user.id, passwordHash: await this.hasher.hash(input.password), failedCount: 0, lockedUntil: 0, changedAt: now });
    await this.audit({ type: 'user_created', actor: CentralService.actorId(actor), accountId, subject: user.id, ip: ctx.ip, details: { login: user.login, role } });
    return userView(user);
  }

  private roleFits(role: Role, account: AccountRecord): void {
    const staff = STAFF_ROLES.includes(role);
    if (staff && !account.kinds.includes('system')) throw badRequest(`role ${role} is for the network operator's staff (system account) only`);
    if (!staff && account.kinds.includes('system')) throw badRequest('users of the system account have a staff role: administrator, operator or monitor');
  }

  async listUsers(actor: Actor, accountId: string, ctx: Ctx) {
    const ok = CentralService.isStaff(actor, ['administrator', 'operator']) || CentralService.member(actor, accountId)?.owner === true;
    if (!ok) return this.denied(actor, `list users of account ${accountId}`, ctx, accountId);
    await this.account(accountId);
    return (await this.store.listUsers(accountId)).map(userView);
  }

  async setRole(actor: Actor, userId: string, role: Role, ctx: Ctx) {
    if (!CentralService.isStaff(actor, ['administrator'])) return this.denied(actor, 'change roles', ctx);
    const user = await this.store.getUser(userId);
    if (user === undefined) throw notFound(`user ${userId}`);
    this.roleFits(role, await this.account(user.accountId));
    if (user.role === 'administrator' && role !== 'administrator') {
      const admins = (await this.store.listUsers(user.accountId)).filter((u) => u.role === 'administrator' && !u.disabled);
      if (admins.length <= 1) throw conflict('cannot demote the last administrator');
    }
    await this.store.setUserRole(userId, role);
    await this.audit({ type: 'role_changed', actor: CentralService.actorId(actor), accountId: user.accountId, subject: userId, ip: ctx.ip, details: { from: user.role, to: role } });
    return userView({ ...user, role });
  }

  // ---------------------------------------------------------------- login, sessions, passwords

  /**
   * Failed logins of names that are no user, counted like a user's (bounded: the oldest names are
   * forgotten first), so that an unknown login locks when a real one would.
   */
  private readonly unknownLogins = new Map<string, { failed: number; lockedUntil: number }>();

  private unknownLoginFailed(login: string, now: number): void {
    const e = this.unknownLogins.get(login) ?? { failed: 0, lockedUntil: 0 };
    this.unknownLogins.delete(login);
    if (this.unknownLogins.size >= 10_000) this.unknownLogins.delete(this.unknownLogins.keys().next().value!);
    e.failed++;
    const ms = lockDurationMs(e.failed, this.lockout);
    e.lockedUntil = ms > 0 ? now + ms : 0;
    this.unknownLogins.set(login, e);
  }

  /**
   * Password login with the second factor when enrolled. Locked users are refused before the
   * password is looked at; wrong passwords and wrong or replayed codes count as failures.
   */
  async login(input: { login: string; password: string; totp?: string; recoveryCode?: string }, ctx: Ctx) {
    const now = this.clock.now();
    const user = await this.store.getUserByLogin(input.login);
    const cred = user && (await this.store.getCredential(user.id));
    if (user === undefined || cred === undefined) {
      // An unknown login is locked out exactly like a real one (same schedule, same answers), so
      // neither the answer nor its timing tells whether a login exists.
      const ghost = this.unknownLogins.get(input.login);
      if (ghost !== undefined && ghost.lockedUntil > now) {
        const retryAfterS = Math.ceil((ghost.lockedUntil - now) / 1000);
        await this.audit({ type: 'login_locked', actor: 'anonymous', ip: ctx.ip, outcome: 'denied', details: { login: input.login.slice(0, 64), retryAfterS, reason: 'unknown login' } });
        throw new CentralError('locked', `too many failed logins; try again in ${retryAfterS} s`, { retryAfterS });
      }
      // Same work as a real check, so timing does not tell whether a login exists.
      await this.hasher.verify(await (this.dummyHash ??= this.hasher.hash('Dummy-password-1!')), input.password);
      this.unknownLoginFailed(input.login, now);
      await this.audit({ type: 'login_failed', actor: 'anonymous', ip: ctx.ip, outcome: 'failure', details: { login: input.login.slice(0, 64), reason: 'unknown login' } });
      throw new CentralError('unauthorized', 'wrong login or password');
    }
    if (cred.lockedUntil > now) {
      const retryAfterS = Math.ceil((cred.lockedUntil - now) / 1000);
      await this.audit({ type: 'login_locked', actor: user.id, accountId: user.accountId, subject: user.id, ip: ctx.ip, outcome: 'denied', details: { retryAfterS } });
      throw new CentralError('locked', `too many failed logins; try again in ${retryAfterS} s`, { retryAfterS });
    }
    const fail = async (reason: string, message: string): Promise<never> => {
      const count = await this.store.recordLoginFailure(user.id, (n) => {
        const ms = lockDurationMs(n, this.lockout);
        return ms > 0 ? now + ms : 0;
      });
      await this.audit({ type: 'login_failed', actor: user.id, accountId: user.accountId, subject: user.id, ip: ctx.ip, outcome: 'failure', details: { reason, consecutive: count } });
      const lockMs = lockDurationMs(count, this.lockout);
      if (lockMs > 0) {
        await this.audit({ type: 'lockout', actor: 'system', accountId: user.accountId, subject: user.id, ip: ctx.ip, outcome: 'ok', details: { seconds: lockMs / 1000, consecutive: count } });
      }
      throw new CentralError('unauthorized', message);
    };
    if (!(await this.hasher.verify(cred.passwordHash, input.password))) return fail('wrong password', 'wrong login or password');
    const account = await this.account(user.accountId);
    if (user.disabled || account.disabled) {
      await this.audit({ type: 'login_failed', actor: user.id, accountId: user.accountId, subject: user.id, ip: ctx.ip, outcome: 'denied', details: { reason: 'disabled' } });
      throw new CentralError('forbidden', 'this user or account is disabled');
    }
    const totp = await this.store.getTotp(user.id);
    let factor: 'password' | 'totp' | 'recovery_code' = 'password';
    if (totp !== undefined && totp.confirmedAt !== null) {
      if (input.totp !== undefined) {
        const step = matchTotp(totp.secret, input.totp, now);
        if (step === null) return fail('wrong TOTP code', 'wrong second-factor code');
        if (!(await this.store.advanceTotpStep(user.id, step))) return fail('replayed TOTP code', 'this second-factor code was already used; wait for the next one');
        factor = 'totp';
      } else if (input.recoveryCode !== undefined) {
        if (!(await this.store.useRecoveryCode(user.id, recoveryCodeHash(user.id, input.recoveryCode), now))) return fail('wrong recovery code', 'wrong or used recovery code');
        factor = 'recovery_code';
        await this.audit({ type: 'recovery_code_used', actor: user.id, accountId: user.accountId, subject: user.id, ip: ctx.ip, details: { left: await this.store.countRecoveryCodes(user.id) } });
      } else {
        throw new CentralError('mfa_required', 'this user has a second factor: send "totp" (or "recoveryCode") with the password');
      }
    }
    await this.store.resetLoginFailures(user.id);
    if (this.hasher instanceof Argon2Hasher && this.hasher.needsRehash(cred.passwordHash)) {
      await this.store.setPassword(user.id, await this.hasher.hash(input.password), cred.changedAt);
    }
    const token = newSecret(SESSION_PREFIX);
    const expiresAt = now + this.sessionTtlMs;
    await this.store.createSession({ hash: sha256Hex(token), userId: user.id, createdAt: now, expiresAt });
    await this.audit({ type: 'login_ok', actor: user.id, accountId: user.accountId, subject: user.id, ip: ctx.ip, details: { factor } });
    return { token, tokenType: 'Bearer' as const, expiresAt, user: userView(user) };
  }

  async logout(actor: Actor, ctx: Ctx): Promise<void> {
    const s = CentralService.session(actor);
    await this.store.deleteSession(s.sessionHash);
    await this.audit({ type: 'logout', actor: s.user.id, accountId: s.user.accountId, subject: s.user.id, ip: ctx.ip });
  }

  async changePassword(actor: Actor, input: { currentPassword: string; newPassword: string }, ctx: Ctx): Promise<void> {
    const s = CentralService.session(actor);
    const cred = await this.store.getCredential(s.user.id);
    if (cred === undefined || !(await this.hasher.verify(cred.passwordHash, input.currentPassword))) {
      await this.audit({ type: 'password_change_failed', actor: s.user.id, accountId: s.user.accountId, subject: s.user.id, ip: ctx.ip, outcome: 'failure' });
      throw new CentralError('unauthorized', 'current password is wrong');
    }
    this.checkPassword(input.newPassword, s.user.login);
    await this.store.setPassword(s.user.id, await this.hasher.hash(input.newPassword), this.clock.now());
    await this.store.deleteUserSessions(s.user.id);
    await this.audit({ type: 'password_changed', actor: s.user.id, accountId: s.user.accountId, subject: s.user.id, ip: ctx.ip });
  }

  async me(actor: Actor) {
    const s = CentralService.session(actor);
    const totp = await this.store.getTotp(s.user.id);
    return {
      user: userView(s.user), account: accountView(s.account),
      totp: totp === undefined ? 'off' : totp.confirmedAt === null ? 'pending' : 'on',
      recoveryCodesLeft: totp?.confirmedAt ? await this.store.countRecoveryCodes(s.user.id) : 0,
    };
  }

  // ---------------------------------------------------------------- TOTP

  async beginTotp(actor: Actor, ctx: Ctx) {
    const s = CentralService.session(actor);
    const cur = await this.store.getTotp(s.user.id);
    if (cur !== undefined && cur.confirmedAt !== null) throw conflict('a second factor is already on');
    const secret = newTotpSecret();
    await this.store.putTotp({ userId: s.user.id, secret, confirmedAt: null, lastStep: 0 });
    await this.audit({ type: 'totp_enrolment_started', actor: s.user.id, accountId: s.user.accountId, subject: s.user.id, ip: ctx.ip });
    return { secret, uri: provisioningUri(secret, s.user.login) };
  }

  async confirmTotp(actor: Actor, code: string, ctx: Ctx) {
    const s = CentralService.session(actor);
    const cur = await this.store.getTotp(s.user.id);
    if (cur === undefined) throw conflict('start enrolment first');
    if (cur.confirmedAt !== null) throw conflict('a second factor is already on');
    const now = this.clock.now();
    const step = matchTotp(cur.secret, code, now);
    if (step === null || !(await this.store.confirmTotp(s.user.id, now, step))) {
      await this.audit({ type: 'totp_failed', actor: s.user.id, accountId: s.user.accountId, subject: s.user.id, ip: ctx.ip, outcome: 'failure' });
      throw badRequest('wrong code: check the authenticator\'s clock and enter the current code');
    }
    const codes = newRecoveryCodes();
    await this.store.replaceRecoveryCodes(s.user.id, codes.map((c) => recoveryCodeHash(s.user.id, c)), now);
    await this.audit({ type: 'totp_enabled', actor: s.user.id, accountId: s.user.accountId, subject: s.user.id, ip: ctx.ip });
    return { recoveryCodes: codes };
  }

  // ---------------------------------------------------------------- bearer authentication

  /** The actor behind an `Authorization: Bearer` value, or null when it is unknown/expired/revoked. */
  async authenticate(bearer: string): Promise<Actor | null> {
    const now = this.clock.now();
    if (bearer.startsWith(SESSION_PREFIX) && bearer.length < 100) {
      const s = await this.store.getSession(sha256Hex(bearer));
      if (s === undefined || s.expiresAt <= now) return null;
      const user = await this.store.getUser(s.userId);
      if (user === undefined || user.disabled) return null;
      const account = await this.store.getAccount(user.accountId);
      if (account === undefined || account.disabled) return null;
      return { kind: 'session', user, account, sessionHash: s.hash };
    }
    if (looksLikeApiKey(bearer)) {
      const p = await this.verifyKeyHash(hashApiKey(bearer));
      if (p === null) return null;
      const key = (await this.store.getApiKey(p.keyId))!;
      return { kind: 'key', key, account: (await this.store.getAccount(p.account))!, scopes: p.scopes };
    }
    if (looksLikeJwt(bearer) && this.verifyOwnToken !== null) {
      try {
        const t = await this.verifyOwnToken(bearer);
        // A token outlives nothing it was issued for: its key revoked or expired, or its account
        // disabled, refuses it at once here (nodes learn it from the tokens_revoked push).
        const key = await this.store.getApiKey(t.keyId);
        if (key === undefined || key.accountId !== t.account || key.revokedAt !== null || (key.expiresAt !== null && key.expiresAt <= now)) return null;
        const account = await this.store.getAccount(t.account);
        if (account === undefined || account.disabled) return null;
        return { kind: 'token', keyId: t.keyId, account, scopes: t.scopes };
      } catch {
        return null;
      }
    }
    return null;
  }

  // ---------------------------------------------------------------- API keys

  async createKey(
    actor: Actor,
    accountId: string,
    input: { name: string; scopes?: string[]; userId?: string | null; expiresInS?: number },
    ctx: Ctx,
  ) {
    const me = CentralService.member(actor, accountId);
    if (me === null) return this.denied(actor, `create keys for account ${accountId}`, ctx, accountId);
    const scopes = input.scopes ?? [...DEFAULT_KEY_SCOPES];
    const bad = scopes.filter((s) => !isValidScope(s));
    if (bad.length > 0 || scopes.length === 0) throw badRequest(`scopes: unknown scope ${bad.join(', ') || '(none given)'}; use work, work:<dservice>, select, token`);
    let userId: string | null = me.owner ? (input.userId ?? null) : me.id;
    if (!me.owner && input.userId !== undefined && input.userId !== me.id) return this.denied(actor, 'create keys for other users', ctx, accountId);
    if (userId !== null) {
      const u = await this.store.getUser(userId);
      if (u === undefined || u.accountId !== accountId) throw badRequest(`userId: no user ${userId} in this account`);
    }
    const now = this.clock.now();
    const s = newApiKeySecret();
    const rec: ApiKeyRecord = {
      id: newId('key'), hash: s.hash, prefix: s.prefix, accountId, userId, name: input.name, scopes: [...new Set(scopes)],
      createdAt: now, createdBy: me.id, revokedAt: null, lastUsedAt: null, expiresAt: input.expiresInS === undefined ? null : now + input.expiresInS * 1000,
    };
    await this.store.createApiKey(rec);
    await this.audit({ type: 'key_created', actor: me.id, accountId, subject: rec.id, ip: ctx.ip, details: { name: rec.name, scopes: rec.scopes, userId, prefix: rec.prefix } });
    return { key: s.key, ...keyView(rec) };
  }

  async listKeys(actor: Actor, accountId: string, ctx: Ctx) {
    const me = CentralService.member(actor, accountId);
    if (!CentralService.isStaff(actor, ['administrator', 'operator']) && me === null) return this.denied(actor, `list keys of account ${accountId}`, ctx, accountId);
    await this.account(accountId);
    const keys = await this.store.listApiKeys(accountId);
    return keys.filter((k) => me === null || me.owner || k.userId === me.id).map(keyView);
  }

  async revokeKey(actor: Actor, accountId: string, keyId: string, ctx: Ctx) {
    const me = CentralService.member(actor, accountId);
    const admin = CentralService.isStaff(actor, ['administrator']);
    if (!admin && me === null) return this.denied(actor, `revoke keys of account ${accountId}`, ctx, accountId);
    const key = await this.store.getApiKey(keyId);
    if (key === undefined || key.accountId !== accountId) throw notFound(`key ${keyId}`);
    if (!admin && !me!.owner && key.userId !== me!.id) return this.denied(actor, `revoke key ${keyId}`, ctx, accountId);
    const now = this.clock.now();
    const changed = await this.store.revokeApiKey(keyId, now);
    if (changed) {
      await this.audit({ type: 'key_revoked', actor: CentralService.actorId(actor), accountId, subject: keyId, ip: ctx.ip, details: { prefix: key.prefix } });
      this.emit('keyRevoked', { keyId, hash: key.hash, accountId });
      this.emit('tokensRevoked', { kind: 'key', id: keyId, at: now });
    }
    return keyView({ ...key, revokedAt: key.revokedAt ?? now });
  }

  /** What a node asks over the link: the principal behind a key's SHA-256, or null. */
  async verifyKeyHash(hash: string): Promise<PrincipalView | null> {
    if (!/^[0-9a-f]{64}$/.test(hash)) return null;
    const k = await this.store.getApiKeyByHash(hash);
    const now = this.clock.now();
    if (k === undefined || k.revokedAt !== null || (k.expiresAt !== null && k.expiresAt <= now)) return null;
    const account = await this.store.getAccount(k.accountId);
    if (account === undefined || account.disabled) return null;
    const last = this.lastTouch.get(k.id) ?? k.lastUsedAt ?? 0;
    if (now - last >= this.touchEveryMs) {
      this.lastTouch.set(k.id, now);
      await this.store.touchApiKey(k.id, now);
    }
    return { account: k.accountId, keyId: k.id, scopes: k.scopes, endUser: k.userId, expiresAt: k.expiresAt };
  }

  // ---------------------------------------------------------------- OAuth2 client credentials

  /** Keys revoked and accounts disabled whose tokens may still verify: what nodes must refuse. */
  tokenRevocations(): Promise<TokenRevocationSet> {
    return recentTokenRevocations(this.store, this.clock.now(), revocationWindowMs(this.tokens.ttlS));
  }

  async issueToken(input: { clientId: string; clientSecret: string; scope?: string }, ctx: Ctx) {
    const refuse = async (why: string): Promise<never> => {
      await this.audit({ type: 'token_refused', actor: input.clientId.slice(0, 64) || 'anonymous', ip: ctx.ip, outcome: 'failure', details: { reason: why } });
      throw new CentralError('unauthorized', 'invalid client credentials', { details: { oauthError: 'invalid_client' } });
    };
    if (!looksLikeApiKey(input.clientSecret)) return refuse('malformed secret');
    const p = await this.verifyKeyHash(hashApiKey(input.clientSecret));
    if (p === null || p.keyId !== input.clientId) return refuse('unknown, revoked or mismatched key');
    if (!p.scopes.includes('token')) return refuse('key lacks the token scope');
    const granted = p.scopes.filter((s) => s !== 'token');
    let scopes = granted;
    if (input.scope !== undefined && input.scope.trim() !== '') {
      const asked = input.scope.trim().split(/\s+/);
      const extra = asked.filter((s) => !granted.includes(s));
      if (extra.length > 0) throw new CentralError('bad_request', `scope not granted to this client: ${extra.join(' ')}`, { details: { oauthError: 'invalid_scope' } });
      scopes = asked;
    }
    const t = await this.tokens.issue({ clientId: p.keyId, account: p.account, scopes, notAfter: p.expiresAt });
    await this.audit({ type: 'token_issued', actor: p.keyId, accountId: p.account, subject: t.claims.jti, ip: ctx.ip, details: { scopes, expiresIn: t.expiresIn } });
    return { access_token: t.token, token_type: 'Bearer', expires_in: t.expiresIn, scope: scopes.join(' ') };
  }

  // ---------------------------------------------------------------- DService registry

  async registerDService(actor: Actor, input: DServiceSubmission, ctx: Ctx) {
    const s = CentralService.session(actor);
    let developer: string;
    if (s.user.role === 'administrator') {
      developer = input.developer ?? s.account.id;
      await this.account(developer);
    } else {
      if (s.user.role !== 'user' || !s.account.kinds.includes('developer')) return this.denied(actor, 'register DServices (needs a developer account)', ctx, s.account.id);
      // What the account publishes (and is paid for) is its owner's decision, not any member's.
      if (!s.user.owner) return this.denied(actor, `register DServices for account ${s.account.id} (only its owner may)`, ctx, s.account.id);
      if (input.developer !== undefined && input.developer !== s.account.id) return this.denied(actor, 'register DServices for another developer', ctx, s.account.id);
      developer = s.account.id;
    }
    const existing = await this.store.listDServices({});
    const sameName = existing.filter((d) => d.name === input.name);
    if (sameName.some((d) => d.developer !== developer)) throw conflict(`DService name "${input.name}" belongs to another developer`);
    if (sameName.some((d) => d.version === input.version)) throw conflict(`${input.name}@${input.version} is already registered`);
    const rec = dserviceRecord(input, developer, s.user.id, this.clock.now());
    await this.store.createDService(rec);
    await this.audit({ type: 'dservice_registered', actor: s.user.id, accountId: developer, subject: `${rec.name}@${rec.version}`, ip: ctx.ip, details: { digest: rec.digest } });
    return rec;
  }

  private canSeeDService(actor: Actor, d: DServiceRecord): boolean {
    return CentralService.isStaff(actor) || d.state === 'approved' || (actor.kind === 'session' && actor.account.id === d.developer);
  }

  async listDServices(actor: Actor, filter: { state?: ApprovalState }) {
    return (await this.store.listDServices(filter.state === undefined ? {} : { state: filter.state })).filter((d) => this.canSeeDService(actor, d)).map((d) => this.withPackage(d));
  }

  /** A descriptor with its uploaded package (`{digest, sizeBytes}`), or `package: null` when none was uploaded. */
  private withPackage(d: DServiceRecord): DServiceRecord & { package: { digest: string; sizeBytes: number } | null } {
    return { ...d, package: this.packages?.get(d.digest) ?? null };
  }

  async getDService(actor: Actor, name: string, version: string) {
    const d = await this.store.getDService(name, version);
    if (d === undefined || !this.canSeeDService(actor, d)) throw notFound(`DService ${name}@${version}`);
    return this.withPackage(d);
  }

  async decideDService(actor: Actor, name: string, version: string, state: 'approved' | 'rejected', reason: string | undefined, ctx: Ctx) {
    if (!CentralService.isStaff(actor, ['administrator'])) return this.denied(actor, 'approve DServices', ctx);
    const d = await this.store.getDService(name, version);
    if (d === undefined) throw notFound(`DService ${name}@${version}`);
    const by = CentralService.actorId(actor);
    await this.store.decideDService(name, version, state, by, this.clock.now());
    await this.audit({ type: state === 'approved' ? 'dservice_approved' : 'dservice_rejected', actor: by, accountId: d.developer, subject: `${name}@${version}`, ip: ctx.ip, details: reason === undefined ? {} : { reason } });
    this.emit('dservicesChanged');
    return (await this.store.getDService(name, version))!;
  }

  /** Approved descriptors, for nodes (routing) and miners (digest check). */
  approvedDServices() {
    return this.store.listDServices({ state: 'approved' });
  }

  /**
   * Sets (or clears, with null) where an account's earnings are paid: its DServices' developer
   * share. The account's owner and administrators may; nodes learn it with the
   * approved descriptors (pushed now) and register it in their ledgers, and credits held for
   * want of an address are paid in the next cycle.
   */
  async setPayoutAddress(actor: Actor, id: string, address: string | null, ctx: Ctx) {
    if (!CentralService.isStaff(actor, ['administrator']) && CentralService.member(actor, id)?.owner !== true) return this.denied(actor, `set the payout address of account ${id}`, ctx, id);
    if (address !== null && !/^0x[0-9a-fA-F]{40}$/.test(address)) throw badRequest('address: must be an EVM address, 0x and 40 hex digits');
    await this.account(id);
    const payoutAddress = address === null ? null : address.toLowerCase();
    await this.store.updateAccount(id, { payoutAddress });
    await this.audit({ type: 'payout_address_set', actor: CentralService.actorId(actor), accountId: id, subject: id, ip: ctx.ip, details: { address: payoutAddress } });
    this.emit('dservicesChanged');
    return accountView(await this.account(id));
  }

  /** The payout addresses of these accounts (developers), where set. */
  async payoutAddresses(ids: Iterable<string>): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const id of new Set(ids)) {
      const a = await this.store.getAccount(id);
      if (a?.payoutAddress) out.set(id, a.payoutAddress);
    }
    return out;
  }

  // ---------------------------------------------------------------- node directory

  async registerNode(
    actor: Actor,
    input: { id: string; operatorAccount: string; region: string; lat: number; lon: number; urls: NodeRecord['urls'] },
    ctx: Ctx,
  ) {
    if (!CentralService.isStaff(actor, ['administrator', 'operator'])) return this.denied(actor, 'register nodes', ctx);
    const problems = nodeUrlProblems(input.urls);
    if (problems.length > 0) throw badRequest(problems.join('; '));
    await this.account(input.operatorAccount);
    if ((await this.store.getNode(input.id)) !== undefined) throw conflict(`node ${input.id} exists`);
    const n: NodeRecord = { ...input, health: 'unknown', lastSeenAt: 0, draining: false, capacity: {}, createdAt: this.clock.now() };
    await this.store.putNode(n);
    await this.audit({ type: 'node_registered', actor: CentralService.actorId(actor), accountId: input.operatorAccount, subject: input.id, ip: ctx.ip, details: { region: input.region, central: input.urls.central } });
    this.emit('directoryChanged');
    return n;
  }

  async listNodes(actor: Actor, ctx: Ctx) {
    if (!CentralService.isStaff(actor)) return this.denied(actor, 'list nodes', ctx);
    return this.store.listNodes();
  }

  async updateNode(
    actor: Actor,
    id: string,
    patch: Partial<Pick<NodeRecord, 'region' | 'lat' | 'lon' | 'urls' | 'health' | 'draining'>>,
    ctx: Ctx,
  ) {
    if (!CentralService.isStaff(actor, ['administrator', 'operator'])) return this.denied(actor, 'update nodes', ctx);
    const n = await this.store.getNode(id);
    if (n === undefined) throw notFound(`node ${id}`);
    const next: NodeRecord = { ...n, ...patch, urls: { ...n.urls, ...patch.urls } };
    const problems = nodeUrlProblems(next.urls);
    if (problems.length > 0) throw badRequest(problems.join('; '));
    await this.store.putNode(next);
    await this.audit({ type: 'node_updated', actor: CentralService.actorId(actor), accountId: n.operatorAccount, subject: id, ip: ctx.ip, details: { ...patch } });
    if (patch.urls !== undefined) this.emit('directoryChanged');
    return next;
  }

  async deleteNode(actor: Actor, id: string, ctx: Ctx): Promise<void> {
    if (!CentralService.isStaff(actor, ['administrator'])) return this.denied(actor, 'remove nodes', ctx);
    const n = await this.store.getNode(id);
    if (n === undefined || !(await this.store.deleteNode(id))) throw notFound(`node ${id}`);
    await this.audit({ type: 'node_removed', actor: CentralService.actorId(actor), accountId: n.operatorAccount, subject: id, ip: ctx.ip });
    this.emit('directoryChanged');
  }

  /** What the link learned from a node's status. */
  async reportNodeState(id: string, s: { health: NodeHealth; draining?: boolean; capacity?: Record<string, DServiceCapacity> }): Promise<void> {
    const patch: Partial<Pick<NodeRecord, 'health' | 'lastSeenAt' | 'draining' | 'capacity'>> = { health: s.health };
    if (s.health !== 'down') patch.lastSeenAt = this.clock.now();
    if (s.draining !== undefined) patch.draining = s.draining;
    if (s.capacity !== undefined) patch.capacity = s.capacity;
    await this.store.updateNodeState(id, patch);
  }

  // ---------------------------------------------------------------- miners

  /**
   * An account owner registers a miner key; it is granted `open`. `dedicated` is granted by staff
   * only (`grantMinerTier`), and `attested` by nodes for a verified quote, so neither can be asked
   * for here. An attestation key (the TPM's AK public key) may be registered with it.
   */
  async registerMiner(actor: Actor, input: { publicKey: string; name: string; tier?: string; attestationKey?: string }, ctx: Ctx) {
    const s = CentralService.session(actor);
    if (s.user.role !== 'user' || !s.account.kinds.includes('miner')) return this.denied(actor, 'register miners (needs a miner operator account)', ctx, s.account.id);
    if (!s.user.owner) return this.denied(actor, `register miners for account ${s.account.id} (only its owner may)`, ctx, s.account.id);
    if (input.tier !== undefined && input.tier !== 'open') {
      return this.denied(actor, input.tier === 'dedicated'
        ? 'claim the dedicated tier: it is granted by CGN staff to operators under contract (register the miner as open, then ask an administrator or operator to grant it)'
        : `claim the ${input.tier} tier: nodes grant attested to a miner whose TPM quote verifies against its registered attestation key (register the key with attestationKey)`, ctx, s.account.id);
    }
    const id = input.publicKey.toLowerCase();
    const attestationKey = input.attestationKey === undefined ? null : normaliseAttestationKey(input.attestationKey);
    if ((await this.store.getMiner(id)) !== undefined) throw conflict('this miner key is already registered');
    const m: MinerRecord = { id, accountId: s.account.id, name: input.name, tier: 'open', attestationKey, createdAt: this.clock.now(), createdBy: s.user.id, revokedAt: null };
    await this.store.createMiner(m);
    await this.audit({ type: 'miner_registered', actor: s.user.id, accountId: s.account.id, subject: id, ip: ctx.ip, details: { name: m.name, tier: m.tier, attestationKey: attestationKey !== null } });
    return m;
  }

  /** Staff grant (or take back) the dedicated tier: an operator under contract. */
  async grantMinerTier(actor: Actor, id: string, tier: GrantedTier, ctx: Ctx) {
    if (!CentralService.isStaff(actor, ['administrator', 'operator'])) return this.denied(actor, `grant miner tiers (staff only: ${tier} is granted to operators under contract)`, ctx);
    const m = await this.store.getMiner(id.toLowerCase());
    if (m === undefined) throw notFound(`miner ${id}`);
    await this.store.updateMiner(m.id, { tier });
    this.emit('minerChanged', { id: m.id });
    await this.audit({ type: 'miner_tier_granted', actor: CentralService.actorId(actor), accountId: m.accountId, subject: m.id, ip: ctx.ip, details: { from: m.tier, to: tier } });
    return (await this.store.getMiner(m.id))!;
  }

  /** The account's owner (or an administrator) sets or clears the miner's TPM attestation key. */
  async setMinerAttestationKey(actor: Actor, id: string, pem: string | null, ctx: Ctx) {
    const m = await this.store.getMiner(id.toLowerCase());
    if (m === undefined) throw notFound(`miner ${id}`);
    if (!CentralService.isStaff(actor, ['administrator']) && CentralService.member(actor, m.accountId)?.owner !== true) {
      return this.denied(actor, `set the attestation key of miner ${id} (only an administrator or its account's owner may)`, ctx, m.accountId);
    }
    const attestationKey = pem === null ? null : normaliseAttestationKey(pem);
    await this.store.updateMiner(m.id, { attestationKey });
    this.emit('minerChanged', { id: m.id });
    await this.audit({ type: 'miner_attestation_key', actor: CentralService.actorId(actor), accountId: m.accountId, subject: m.id, ip: ctx.ip, details: { set: attestationKey !== null } });
    return (await this.store.getMiner(m.id))!;
  }

  // ---------------------------------------------------------------- attestation allow-list

  async listRuntimeMeasurements(actor: Actor, ctx: Ctx) {
    if (!CentralService.isStaff(actor)) return this.denied(actor, 'list runtime measurements', ctx);
    return this.store.listRuntimeMeasurements();
  }

  /** Administrators add a known-good miner runtime measurement to the attestation allow-list. */
  async allowRuntime(actor: Actor, input: { digest: string; note: string }, ctx: Ctx) {
    if (!CentralService.isStaff(actor, ['administrator'])) return this.denied(actor, 'change the attestation allow-list', ctx);
    const r = { digest: input.digest.toLowerCase(), note: input.note, createdAt: this.clock.now(), createdBy: CentralService.actorId(actor) };
    await this.store.putRuntimeMeasurement(r);
    await this.audit({ type: 'runtime_allowed', actor: r.createdBy, subject: r.digest, ip: ctx.ip, details: { note: r.note } });
    this.emit('attestationChanged');
    return r;
  }

  async disallowRuntime(actor: Actor, digest: string, ctx: Ctx): Promise<void> {
    if (!CentralService.isStaff(actor, ['administrator'])) return this.denied(actor, 'change the attestation allow-list', ctx);
    if (!(await this.store.deleteRuntimeMeasurement(digest.toLowerCase()))) throw notFound(`runtime measurement ${digest}`);
    await this.audit({ type: 'runtime_disallowed', actor: CentralService.actorId(actor), subject: digest.toLowerCase(), ip: ctx.ip });
    this.emit('attestationChanged');
  }

  /** For nodes: the known-good runtime measurements (DServices are allowed by their approved digests). */
  async attestationPolicy(): Promise<{ runtimes: string[] }> {
    return { runtimes: (await this.store.listRuntimeMeasurements()).map((r) => r.digest) };
  }

  async listMiners(actor: Actor, ctx: Ctx) {
    if (CentralService.isStaff(actor)) return this.store.listMiners();
    const s = CentralService.session(actor);
    if (s.user.role !== 'user') return this.denied(actor, 'list miners', ctx);
    return this.store.listMiners(s.account.id);
  }

  async revokeMiner(actor: Actor, id: string, ctx: Ctx) {
    const m = await this.store.getMiner(id.toLowerCase());
    if (m === undefined) throw notFound(`miner ${id}`);
    if (!CentralService.isStaff(actor, ['administrator']) && CentralService.member(actor, m.accountId)?.owner !== true) {
      return this.denied(actor, `revoke miner ${id} (only an administrator or its account's owner may)`, ctx, m.accountId);
    }
    await this.store.revokeMiner(m.id, this.clock.now());
    this.emit('minerChanged', { id: m.id });
    await this.audit({ type: 'miner_revoked', actor: CentralService.actorId(actor), accountId: m.accountId, subject: m.id, ip: ctx.ip });
    return (await this.store.getMiner(m.id))!;
  }

  /** For nodes: may this miner key join, which tier is it granted, and its attestation key. */
  async minerStatus(id: string): Promise<{ allowed: boolean; tier: GrantedTier | null; account: string | null; attestationKey: string | null }> {
    const m = await this.store.getMiner(id.toLowerCase());
    if (m === undefined || m.revokedAt !== null) return { allowed: false, tier: null, account: null, attestationKey: null };
    return { allowed: true, tier: m.tier, account: m.accountId, attestationKey: m.attestationKey };
  }

  // ---------------------------------------------------------------- selection

  private locate(input: { lat?: number; lon?: number; ip?: string }, remoteIp: string | null): { location: LatLon | null; source: string } {
    if (input.lat !== undefined && input.lon !== undefined) return { location: { lat: input.lat, lon: input.lon }, source: 'coordinates' };
    if ((input.lat === undefined) !== (input.lon === undefined)) throw badRequest('give both lat and lon, or neither');
    const ip = input.ip ?? remoteIp;
    const g = ip === null ? null : this.geoip.lookup(ip);
    return g === null ? { location: null, source: 'unknown' } : { location: { lat: g.lat, lon: g.lon }, source: `geoip:${g.region}` };
  }

  async selectForDApp(actor: Actor, input: { lat?: number; lon?: number; ip?: string; dservices: string[]; limit?: number }, ctx: Ctx) {
    if (actor.kind !== 'session' && !actor.scopes.includes('select')) return this.denied(actor, 'node selection (needs the select scope)', ctx, actor.account.id);
    const approved = new Set((await this.store.listDServices({ state: 'approved' })).map((d) => d.name));
    const unknown = input.dservices.filter((d) => !approved.has(d));
    if (unknown.length > 0) throw notFound(`approved DService ${unknown.join(', ')}`);
    const { location, source } = this.locate(input, ctx.ip);
    const nodes: RankedNode[] = selectNodesForDApp(await this.store.listNodes(), {
      location, dservices: input.dservices, allowedRegions: actor.account.allowedRegions, now: this.clock.now(),
      staleAfterMs: this.staleAfterMs, ...(input.limit === undefined ? {} : { limit: input.limit }),
    });
    return { location, locatedBy: source, nodes };
  }

  async selectForMiner(input: { lat?: number; lon?: number; ip?: string; offers: string[]; limit?: number }, ctx: Ctx) {
    const { location, source } = this.locate(input, ctx.ip);
    const nodes = selectNodesForMiner(await this.store.listNodes(), {
      location, offers: input.offers, now: this.clock.now(), staleAfterMs: this.staleAfterMs, ...(input.limit === undefined ? {} : { limit: input.limit }),
    });
    return { location, locatedBy: source, nodes };
  }

  // ---------------------------------------------------------------- status

  async status() {
    const nodes = await this.store.listNodes();
    const ds = await this.store.listDServices({});
    const count = <T extends string>(xs: T[]) => xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});
    return {
      accounts: (await this.store.listAccounts()).length,
      users: await this.store.countUsers(),
      dservices: count(ds.map((d) => d.state)),
      nodes: count(nodes.map((n) => n.health)),
      time: this.clock.now(),
    };
  }
}
