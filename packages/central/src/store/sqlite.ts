/**
 * The embedded central store: one SQLite file (better-sqlite3) in WAL mode. Lists and small
 * objects (kinds, scopes, capacity...) are JSON columns; everything queried by is a real column.
 * Migrations run once each, in order, recorded in `central_migrations`; a database written by a
 * newer version is refused rather than misread.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type {
  AccountRecord, ApiKeyRecord, ApprovalState, AuditEvent, AuditInput, AuditQuery, CentralStore, CredentialRecord,
  DServiceRecord, MinerRecord, NodeRecord, Role, RuntimeMeasurementRecord, SessionRecord, SigningKeyRecord, TotpRecord, UserRecord,
} from './store.js';

const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE accounts (
        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, kinds TEXT NOT NULL, allowed_regions TEXT,
        disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
      CREATE TABLE users (
        id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), login TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL, owner INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
      CREATE INDEX users_account ON users(account_id);
      CREATE TABLE credentials (
        user_id TEXT PRIMARY KEY REFERENCES users(id), password_hash TEXT NOT NULL,
        failed_count INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0, changed_at INTEGER NOT NULL);
      CREATE TABLE totp (
        user_id TEXT PRIMARY KEY REFERENCES users(id), secret TEXT NOT NULL, confirmed_at INTEGER, last_step INTEGER NOT NULL);
      CREATE TABLE recovery_codes (
        user_id TEXT NOT NULL REFERENCES users(id), hash TEXT NOT NULL, created_at INTEGER NOT NULL, used_at INTEGER,
        PRIMARY KEY (user_id, hash));
      CREATE TABLE sessions (
        hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
      CREATE INDEX sessions_user ON sessions(user_id);
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT, name TEXT NOT NULL, scopes TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL,
        revoked_at INTEGER, last_used_at INTEGER, expires_at INTEGER);
      CREATE INDEX api_keys_account ON api_keys(account_id);
      CREATE TABLE dservices (
        name TEXT NOT NULL, version TEXT NOT NULL, digest TEXT NOT NULL, entry TEXT NOT NULL, developer TEXT NOT NULL,
        deterministic INTEGER NOT NULL, resources TEXT NOT NULL, max_body_bytes INTEGER NOT NULL, concurrency INTEGER NOT NULL,
        timeouts TEXT NOT NULL, price TEXT NOT NULL, state TEXT NOT NULL, submitted_at INTEGER NOT NULL, submitted_by TEXT NOT NULL,
        decided_at INTEGER, decided_by TEXT, PRIMARY KEY (name, version));
      CREATE TABLE nodes (
        id TEXT PRIMARY KEY, operator_account TEXT NOT NULL, region TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
        urls TEXT NOT NULL, health TEXT NOT NULL, last_seen_at INTEGER NOT NULL, draining INTEGER NOT NULL,
        capacity TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE miners (
        id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, tier TEXT NOT NULL,
        created_at INTEGER NOT NULL, created_by TEXT NOT NULL, revoked_at INTEGER);
      CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL,
        account_id TEXT, subject TEXT, ip TEXT, outcome TEXT NOT NULL, details TEXT NOT NULL);
      CREATE INDEX audit_type ON audit(type, seq);
      CREATE INDEX audit_account ON audit(account_id, seq);
      CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
      CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
      CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY, alg TEXT NOT NULL, private_jwk TEXT NOT NULL, public_jwk TEXT NOT NULL,
        created_at INTEGER NOT NULL, retired_at INTEGER);
    `,
  },
  {
    // Tiers are granted: a self-claimed 'attested' becomes 'open' (nodes grant attested per quote).
    version: 2,
    sql: `
      UPDATE miners SET tier = 'open' WHERE tier NOT IN ('open', 'dedicated');
      ALTER TABLE miners ADD COLUMN attestation_key TEXT;
      CREATE TABLE attestation_runtimes (
        digest TEXT PRIMARY KEY, note TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL);
    `,
  },
  {
    // An account's own payout address (a developer's share of its DServices' earnings).
    version: 3,
    sql: `ALTER TABLE accounts ADD COLUMN payout_address TEXT;`,
  },
  {
    // An account's fair-queue weight and quotas at the nodes (JSON).
    version: 4,
    sql: `ALTER TABLE accounts ADD COLUMN policy TEXT;`,
  },
];

export interface SqliteCentralStoreOptions {
  /** Database file (created with its directory), or `:memory:`. */
  path: string;
  busyTimeoutMs?: number;
}

type Row = Record<string, unknown>;
const j = (v: unknown): string => JSON.stringify(v);
const pj = <T>(v: unknown): T => JSON.parse(v as string) as T;
const num = (v: unknown): number => v as number;
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : (v as number));

function toAccount(r: Row): AccountRecord {
  return {
    id: r['id'] as string, name: r['name'] as string, kinds: pj(r['kinds']),
    allowedRegions: r['allowed_regions'] === null ? null : pj(r['allowed_regions']),
    disabled: r['disabled'] === 1, createdAt: num(r['created_at']),
    ...(typeof r['payout_address'] === 'string' ? { payoutAddress: r['payout_address'] } : {}),
    ...(typeof r['policy'] === 'string' ? { policy: pj(r['policy']) } : {}),
  };
}
function toUser(r: Row): UserRecord {
  return {
    id: r['id'] as string, accountId: r['account_id'] as string, login: r['login'] as string, role: r['role'] as Role,
    owner: r['owner'] === 1, disabled: r['disabled'] === 1, createdAt: num(r['created_at']),
  };
}
function toKey(r: Row): ApiKeyRecord {
  return {
    id: r['id'] as string, hash: r['hash'] as string, prefix: r['prefix'] as string, accountId: r['account_id'] as string,
    userId: (r['user_id'] as string | null) ?? null, name: r['name'] as string, scopes: pj(r['scopes']),
    createdAt: num(r['created_at']), createdBy: r['created_by'] as string, revokedAt: numOrNull(r['revoked_at']),
    lastUsedAt: numOrNull(r['last_used_at']), expiresAt: numOrNull(r['expires_at']),
  };
}
function toDService(r: Row): DServiceRecord {
  return {
    name: r['name'] as string, version: r['version'] as string, digest: r['digest'] as string, entry: r['entry'] as string,
    developer: r['developer'] as string, deterministic: r['deterministic'] === 1, resources: pj(r['resources']),
    maxBodyBytes: num(r['max_body_bytes']), concurrency: num(r['concurrency']), timeouts: pj(r['timeouts']), price: pj(r['price']),
    state: r['state'] as ApprovalState, submittedAt: num(r['submitted_at']), submittedBy: r['submitted_by'] as string,
    decidedAt: numOrNull(r['decided_at']), decidedBy: (r['decided_by'] as string | null) ?? null,
  };
}
function toNode(r: Row): NodeRecord {
  return {
    id: r['id'] as string, operatorAccount: r['operator_account'] as string, region: r['region'] as string,
    lat: num(r['lat']), lon: num(r['lon']), urls: pj(r['urls']), health: r['health'] as NodeRecord['health'],
    lastSeenAt: num(r['last_seen_at']), draining: r['draining'] === 1, capacity: pj(r['capacity']), createdAt: num(r['created_at']),
  };
}
function toMiner(r: Row): MinerRecord {
  return {
    id: r['id'] as string, accountId: r['account_id'] as string, name: r['name'] as string, tier: r['tier'] as MinerRecord['tier'],
    attestationKey: (r['attestation_key'] as string | null) ?? null,
    createdAt: num(r['created_at']), createdBy: r['created_by'] as string, revokedAt: numOrNull(r['revoked_at']),
  };
}
function toAudit(r: Row): AuditEvent {
  return {
    seq: num(r['seq']), at: num(r['at']), type: r['type'] as string, actor: r['actor'] as string,
    accountId: (r['account_id'] as string | null) ?? null, subject: (r['subject'] as string | null) ?? null,
    ip: (r['ip'] as string | null) ?? null, outcome: r['outcome'] as AuditEvent['outcome'], details: pj(r['details']),
  };
}

export class SqliteCentralStore implements CentralStore {
  private readonly db: Database.Database;

  constructor(options: SqliteCentralStoreOptions) {
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
    this.migrate();
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS central_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT MAX(version) AS v FROM central_migrations').get() as { v: number | null };
    const current = row.v ?? 0;
    const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
    if (current > latest) throw new Error(`central database is at schema ${current}, newer than this program (${latest}); refusing to open it`);
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO central_migrations (version, applied_at) VALUES (?, ?)').run(m.version, Date.now());
      })();
    }
  }

  private one(sql: string, ...p: unknown[]): Row | undefined {
    return this.db.prepare(sql).get(...p) as Row | undefined;
  }
  private all(sql: string, ...p: unknown[]): Row[] {
    return this.db.prepare(sql).all(...p) as Row[];
  }
  private run(sql: string, ...p: unknown[]): number {
    return this.db.prepare(sql).run(...p).changes;
  }

  // accounts
  createAccount(a: AccountRecord): void {
    this.run('INSERT INTO accounts (id, name, kinds, allowed_regions, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      a.id, a.name, j(a.kinds), a.allowedRegions === null ? null : j(a.allowedRegions), a.disabled ? 1 : 0, a.createdAt);
  }
  getAccount(id: string): AccountRecord | undefined {
    const r = this.one('SELECT * FROM accounts WHERE id = ?', id);
    return r && toAccount(r);
  }
  getAccountByName(name: string): AccountRecord | undefined {
    const r = this.one('SELECT * FROM accounts WHERE name = ?', name);
    return r && toAccount(r);
  }
  listAccounts(): AccountRecord[] {
    return this.all('SELECT * FROM accounts ORDER BY created_at, id').map(toAccount);
  }
  updateAccount(id: string, patch: Partial<Pick<AccountRecord, 'kinds' | 'allowedRegions' | 'disabled' | 'payoutAddress' | 'policy'>>): boolean {
    const a = this.getAccount(id);
    if (a === undefined) return false;
    const n = { ...a, ...patch };
    return this.run('UPDATE accounts SET kinds = ?, allowed_regions = ?, disabled = ?, payout_address = ?, policy = ? WHERE id = ?',
      j(n.kinds), n.allowedRegions === null ? null : j(n.allowedRegions), n.disabled ? 1 : 0, n.payoutAddress ?? null, n.policy == null ? null : j(n.policy), id) === 1;
  }

  // users and credentials
  createUser(u: UserRecord, c: CredentialRecord): void {
    this.db.transaction(() => {
      this.run('INSERT INTO users (id, account_id, login, role, owner, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        u.id, u.accountId, u.login, u.role, u.owner ? 1 : 0, u.disabled ? 1 : 0, u.createdAt);
      this.run('INSERT INTO credentials (user_id, password_hash, failed_count, locked_until, changed_at) VALUES (?, ?, ?, ?, ?)',
        u.id, c.passwordHash, c.failedCount, c.lockedUntil, c.changedAt);
    })();
  }
  getUser(id: string): UserRecord | undefined {
    const r = this.one('SELECT * FROM users WHERE id = ?', id);
    return r && toUser(r);
  }
  getUserByLogin(login: string): UserRecord | undefined {
    const r = this.one('SELECT * FROM users WHERE login = ?', login.toLowerCase());
    return r && toUser(r);
  }
  listUsers(accountId?: string): UserRecord[] {
    return (accountId === undefined
      ? this.all('SELECT * FROM users ORDER BY created_at, id')
      : this.all('SELECT * FROM users WHERE account_id = ? ORDER BY created_at, id', accountId)).map(toUser);
  }
  countUsers(): number {
    return num((this.one('SELECT COUNT(*) AS n FROM users') as Row)['n']);
  }
  setUserRole(id: string, role: Role): boolean {
    return this.run('UPDATE users SET role = ? WHERE id = ?', role, id) === 1;
  }
  getCredential(userId: string): CredentialRecord | undefined {
    const r = this.one('SELECT * FROM credentials WHERE user_id = ?', userId);
    return r && {
      userId, passwordHash: r['password_hash'] as string, failedCount: num(r['failed_count']),
      lockedUntil: num(r['locked_until']), changedAt: num(r['changed_at']),
    };
  }
  setPassword(userId: string, passwordHash: string, at: number): void {
    this.run('UPDATE credentials SET password_hash = ?, changed_at = ? WHERE user_id = ?', passwordHash, at, userId);
  }
  recordLoginFailure(userId: string, lockedUntil: (failedCount: number) => number): number {
    return this.db.transaction(() => {
      this.run('UPDATE credentials SET failed_count = failed_count + 1 WHERE user_id = ?', userId);
      const r = this.one('SELECT failed_count, locked_until FROM credentials WHERE user_id = ?', userId);
      const count = num(r?.['failed_count'] ?? 0);
      const until = lockedUntil(count);
      if (until > num(r?.['locked_until'] ?? 0)) this.run('UPDATE credentials SET locked_until = ? WHERE user_id = ?', until, userId);
      return count;
    }).immediate();
  }
  resetLoginFailures(userId: string): void {
    this.run('UPDATE credentials SET failed_count = 0, locked_until = 0 WHERE user_id = ?', userId);
  }

  // TOTP and recovery codes
  getTotp(userId: string): TotpRecord | undefined {
    const r = this.one('SELECT * FROM totp WHERE user_id = ?', userId);
    return r && { userId, secret: r['secret'] as string, confirmedAt: numOrNull(r['confirmed_at']), lastStep: num(r['last_step']) };
  }
  putTotp(t: TotpRecord): void {
    this.run('INSERT OR REPLACE INTO totp (user_id, secret, confirmed_at, last_step) VALUES (?, ?, ?, ?)', t.userId, t.secret, t.confirmedAt, t.lastStep);
  }
  confirmTotp(userId: string, at: number, step: number): boolean {
    return this.run('UPDATE totp SET confirmed_at = ?, last_step = ? WHERE user_id = ? AND confirmed_at IS NULL AND last_step < ?', at, step, userId, step) === 1;
  }
  deleteTotp(userId: string): void {
    this.db.transaction(() => {
      this.run('DELETE FROM totp WHERE user_id = ?', userId);
      this.run('DELETE FROM recovery_codes WHERE user_id = ?', userId);
    })();
  }
  advanceTotpStep(userId: string, step: number): boolean {
    return this.run('UPDATE totp SET last_step = ? WHERE user_id = ? AND last_step < ?', step, userId, step) === 1;
  }
  replaceRecoveryCodes(userId: string, hashes: string[], at: number): void {
    this.db.transaction(() => {
      this.run('DELETE FROM recovery_codes WHERE user_id = ?', userId);
      const ins = this.db.prepare('INSERT INTO recovery_codes (user_id, hash, created_at) VALUES (?, ?, ?)');
      for (const h of hashes) ins.run(userId, h, at);
    })();
  }
  useRecoveryCode(userId: string, hash: string, at: number): boolean {
    return this.run('UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL', at, userId, hash) === 1;
  }
  countRecoveryCodes(userId: string): number {
    return num((this.one('SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL', userId) as Row)['n']);
  }

  // sessions
  createSession(s: SessionRecord): void {
    this.run('INSERT INTO sessions (hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)', s.hash, s.userId, s.createdAt, s.expiresAt);
  }
  getSession(hash: string): SessionRecord | undefined {
    const r = this.one('SELECT * FROM sessions WHERE hash = ?', hash);
    return r && { hash, userId: r['user_id'] as string, createdAt: num(r['created_at']), expiresAt: num(r['expires_at']) };
  }
  deleteSession(hash: string): void {
    this.run('DELETE FROM sessions WHERE hash = ?', hash);
  }
  deleteUserSessions(userId: string): void {
    this.run('DELETE FROM sessions WHERE user_id = ?', userId);
  }

  // API keys
  createApiKey(k: ApiKeyRecord): void {
    this.run(`INSERT INTO api_keys (id, hash, prefix, account_id, user_id, name, scopes, created_at, created_by, revoked_at, last_used_at, expires_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      k.id, k.hash, k.prefix, k.accountId, k.userId, k.name, j(k.scopes), k.createdAt, k.createdBy, k.revokedAt, k.lastUsedAt, k.expiresAt);
  }
  getApiKey(id: string): ApiKeyRecord | undefined {
    const r = this.one('SELECT * FROM api_keys WHERE id = ?', id);
    return r && toKey(r);
  }
  getApiKeyByHash(hash: string): ApiKeyRecord | undefined {
    const r = this.one('SELECT * FROM api_keys WHERE hash = ?', hash);
    return r && toKey(r);
  }
  listApiKeys(accountId: string): ApiKeyRecord[] {
    return this.all('SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, id', accountId).map(toKey);
  }
  revokeApiKey(id: string, at: number): boolean {
    return this.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', at, id) === 1;
  }
  touchApiKey(id: string, at: number): void {
    this.run('UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)', at, id, at);
  }

  // DService descriptors
  createDService(d: DServiceRecord): void {
    this.run(`INSERT INTO dservices (name, version, digest, entry, developer, deterministic, resources, max_body_bytes, concurrency,
      timeouts, price, state, submitted_at, submitted_by, decided_at, decided_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      d.name, d.version, d.digest, d.entry, d.developer, d.deterministic ? 1 : 0, j(d.resources), d.maxBodyBytes, d.concurrency,
      j(d.timeouts), j(d.price), d.state, d.submittedAt, d.submittedBy, d.decidedAt, d.decidedBy);
  }
  getDService(name: string, version: string): DServiceRecord | undefined {
    const r = this.one('SELECT * FROM dservices WHERE name = ? AND version = ?', name, version);
    return r && toDService(r);
  }
  listDServices(filter: { state?: ApprovalState; developer?: string } = {}): DServiceRecord[] {
    const where: string[] = [];
    const p: unknown[] = [];
    if (filter.state !== undefined) (where.push('state = ?'), p.push(filter.state));
    if (filter.developer !== undefined) (where.push('developer = ?'), p.push(filter.developer));
    const sql = `SELECT * FROM dservices ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY name, submitted_at, version`;
    return this.all(sql, ...p).map(toDService);
  }
  decideDService(name: string, version: string, state: ApprovalState, by: string, at: number): boolean {
    return this.run('UPDATE dservices SET state = ?, decided_by = ?, decided_at = ? WHERE name = ? AND version = ?', state, by, at, name, version) === 1;
  }

  // node directory
  putNode(n: NodeRecord): void {
    this.run(`INSERT OR REPLACE INTO nodes (id, operator_account, region, lat, lon, urls, health, last_seen_at, draining, capacity, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      n.id, n.operatorAccount, n.region, n.lat, n.lon, j(n.urls), n.health, n.lastSeenAt, n.draining ? 1 : 0, j(n.capacity), n.createdAt);
  }
  getNode(id: string): NodeRecord | undefined {
    const r = this.one('SELECT * FROM nodes WHERE id = ?', id);
    return r && toNode(r);
  }
  listNodes(): NodeRecord[] {
    return this.all('SELECT * FROM nodes ORDER BY id').map(toNode);
  }
  updateNodeState(id: string, patch: Partial<Pick<NodeRecord, 'health' | 'lastSeenAt' | 'draining' | 'capacity'>>): boolean {
    const n = this.getNode(id);
    if (n === undefined) return false;
    const m = { ...n, ...patch };
    return this.run('UPDATE nodes SET health = ?, last_seen_at = ?, draining = ?, capacity = ? WHERE id = ?',
      m.health, m.lastSeenAt, m.draining ? 1 : 0, j(m.capacity), id) === 1;
  }
  deleteNode(id: string): boolean {
    return this.run('DELETE FROM nodes WHERE id = ?', id) === 1;
  }

  // miners
  createMiner(m: MinerRecord): void {
    this.run('INSERT INTO miners (id, account_id, name, tier, attestation_key, created_at, created_by, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      m.id, m.accountId, m.name, m.tier, m.attestationKey, m.createdAt, m.createdBy, m.revokedAt);
  }
  getMiner(id: string): MinerRecord | undefined {
    const r = this.one('SELECT * FROM miners WHERE id = ?', id);
    return r && toMiner(r);
  }
  listMiners(accountId?: string): MinerRecord[] {
    return (accountId === undefined
      ? this.all('SELECT * FROM miners ORDER BY created_at, id')
      : this.all('SELECT * FROM miners WHERE account_id = ? ORDER BY created_at, id', accountId)).map(toMiner);
  }
  revokeMiner(id: string, at: number): boolean {
    return this.run('UPDATE miners SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', at, id) === 1;
  }
  updateMiner(id: string, patch: Partial<Pick<MinerRecord, 'tier' | 'attestationKey'>>): boolean {
    const m = this.getMiner(id);
    if (m === undefined) return false;
    const next = { ...m, ...patch };
    return this.run('UPDATE miners SET tier = ?, attestation_key = ? WHERE id = ?', next.tier, next.attestationKey, id) === 1;
  }

  // attestation allow-list
  putRuntimeMeasurement(r: RuntimeMeasurementRecord): void {
    this.run('INSERT INTO attestation_runtimes (digest, note, created_at, created_by) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO UPDATE SET note = excluded.note',
      r.digest, r.note, r.createdAt, r.createdBy);
  }
  listRuntimeMeasurements(): RuntimeMeasurementRecord[] {
    return this.all('SELECT * FROM attestation_runtimes ORDER BY created_at, digest').map((r) => ({
      digest: r['digest'] as string, note: r['note'] as string, createdAt: num(r['created_at']), createdBy: r['created_by'] as string,
    }));
  }
  deleteRuntimeMeasurement(digest: string): boolean {
    return this.run('DELETE FROM attestation_runtimes WHERE digest = ?', digest) === 1;
  }

  // audit
  appendAudit(e: AuditInput): number {
    const r = this.db.prepare('INSERT INTO audit (at, type, actor, account_id, subject, ip, outcome, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(e.at, e.type, e.actor, e.accountId, e.subject, e.ip, e.outcome, j(e.details));
    return Number(r.lastInsertRowid);
  }
  queryAudit(q: AuditQuery): AuditEvent[] {
    const where: string[] = [];
    const p: unknown[] = [];
    const add = (sql: string, v: unknown) => (where.push(sql), p.push(v));
    if (q.type !== undefined) add('type = ?', q.type);
    if (q.accountId !== undefined) add('account_id = ?', q.accountId);
    if (q.actor !== undefined) add('actor = ?', q.actor);
    if (q.since !== undefined) add('at >= ?', q.since);
    if (q.until !== undefined) add('at < ?', q.until);
    if (q.beforeSeq !== undefined) add('seq < ?', q.beforeSeq);
    const limit = Math.max(1, Math.min(1000, Math.trunc(q.limit ?? 100)));
    return this.all(`SELECT * FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT ${limit}`, ...p).map(toAudit);
  }

  // signing keys
  listSigningKeys(): SigningKeyRecord[] {
    return this.all('SELECT * FROM signing_keys ORDER BY created_at, kid').map((r) => ({
      kid: r['kid'] as string, alg: 'EdDSA' as const, privateJwk: r['private_jwk'] as string, publicJwk: r['public_jwk'] as string,
      createdAt: num(r['created_at']), retiredAt: numOrNull(r['retired_at']),
    }));
  }
  addSigningKey(k: SigningKeyRecord): void {
    this.run('INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at, retired_at) VALUES (?, ?, ?, ?, ?, ?)',
      k.kid, k.alg, k.privateJwk, k.publicJwk, k.createdAt, k.retiredAt);
  }
  retireSigningKeys(at: number): void {
    this.run('UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL', at);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
