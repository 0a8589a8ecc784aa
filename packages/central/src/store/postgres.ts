/**
 * The central store at scale: PostgreSQL (porsager/postgres), the same store family as the
 * ledger's shared store. Same contract, same test suite and same semantics as the SQLite store:
 *
 * * Tables live in one schema (default `cgn_central`, created if missing) reached through the
 *   connection's `search_path`; migrations run once each, in order, under an advisory lock so
 *   several central processes may start together, recorded in `central_migrations`; a schema
 *   written by a newer version is refused rather than misread.
 * * Lists and small objects (kinds, scopes, capacity, details...) are JSON text columns, so they
 *   read back exactly as written; epoch-millisecond times are BIGINT; flags are BOOLEAN.
 *   Identifiers that lists are ordered by use the "C" collation, ordering like SQLite's binary one.
 * * What SQLite does in a transaction is one here too (a user with its credential, TOTP removal
 *   with the recovery codes, replacing recovery codes, counting a login failure); the racy
 *   operations are single conditional UPDATEs, and read-modify-write patches lock their row.
 * * The audit log is append-only: a trigger refuses UPDATE, DELETE and TRUNCATE.
 * * Unique and foreign key violations are thrown as the driver's errors (as the SQLite store
 *   throws better-sqlite3's), after rolling back anything the call started.
 */
import postgres from 'postgres';
import type {
  AccountRecord, ApiKeyRecord, ApprovalState, AuditEvent, AuditInput, AuditQuery, CentralStore, CredentialRecord,
  DServiceRecord, MinerRecord, NodeRecord, Role, RuntimeMeasurementRecord, SessionRecord, SigningKeyRecord, TotpRecord, UserRecord,
} from './store.js';

const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'accounts, users, credentials, totp, recovery codes, sessions, api keys, dservices, nodes, miners, audit, signing keys',
    sql: `
      CREATE TABLE accounts (
        id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL UNIQUE, kinds TEXT NOT NULL, allowed_regions TEXT,
        disabled BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL);
      CREATE TABLE users (
        id TEXT COLLATE "C" PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), login TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL, owner BOOLEAN NOT NULL, disabled BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL);
      CREATE INDEX users_account ON users(account_id);
      CREATE TABLE credentials (
        user_id TEXT PRIMARY KEY REFERENCES users(id), password_hash TEXT NOT NULL,
        failed_count INTEGER NOT NULL DEFAULT 0, locked_until BIGINT NOT NULL DEFAULT 0, changed_at BIGINT NOT NULL);
      CREATE TABLE totp (
        user_id TEXT PRIMARY KEY REFERENCES users(id), secret TEXT NOT NULL, confirmed_at BIGINT, last_step BIGINT NOT NULL);
      CREATE TABLE recovery_codes (
        user_id TEXT NOT NULL REFERENCES users(id), hash TEXT NOT NULL, created_at BIGINT NOT NULL, used_at BIGINT,
        PRIMARY KEY (user_id, hash));
      CREATE TABLE sessions (
        hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
      CREATE INDEX sessions_user ON sessions(user_id);
      CREATE TABLE api_keys (
        id TEXT COLLATE "C" PRIMARY KEY, hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, account_id TEXT NOT NULL REFERENCES accounts(id),
        user_id TEXT, name TEXT NOT NULL, scopes TEXT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL,
        revoked_at BIGINT, last_used_at BIGINT, expires_at BIGINT);
      CREATE INDEX api_keys_account ON api_keys(account_id);
      CREATE TABLE dservices (
        name TEXT COLLATE "C" NOT NULL, version TEXT COLLATE "C" NOT NULL, digest TEXT NOT NULL, entry TEXT NOT NULL, developer TEXT NOT NULL,
        deterministic BOOLEAN NOT NULL, resources TEXT NOT NULL, max_body_bytes BIGINT NOT NULL, concurrency INTEGER NOT NULL,
        timeouts TEXT NOT NULL, price TEXT NOT NULL, state TEXT NOT NULL, submitted_at BIGINT NOT NULL, submitted_by TEXT NOT NULL,
        decided_at BIGINT, decided_by TEXT, PRIMARY KEY (name, version));
      CREATE TABLE nodes (
        id TEXT COLLATE "C" PRIMARY KEY, operator_account TEXT NOT NULL, region TEXT NOT NULL, lat DOUBLE PRECISION NOT NULL,
        lon DOUBLE PRECISION NOT NULL, urls TEXT NOT NULL, health TEXT NOT NULL, last_seen_at BIGINT NOT NULL, draining BOOLEAN NOT NULL,
        capacity TEXT NOT NULL, created_at BIGINT NOT NULL);
      CREATE TABLE miners (
        id TEXT COLLATE "C" PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, tier TEXT NOT NULL,
        created_at BIGINT NOT NULL, created_by TEXT NOT NULL, revoked_at BIGINT);
      CREATE TABLE audit (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at BIGINT NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL,
        account_id TEXT, subject TEXT, ip TEXT, outcome TEXT NOT NULL, details TEXT NOT NULL);
      CREATE INDEX audit_type ON audit(type, seq);
      CREATE INDEX audit_account ON audit(account_id, seq);
      CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$;
      CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
      CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
      CREATE TABLE signing_keys (
        kid TEXT COLLATE "C" PRIMARY KEY, alg TEXT NOT NULL, private_jwk TEXT NOT NULL, public_jwk TEXT NOT NULL,
        created_at BIGINT NOT NULL, retired_at BIGINT);
    `,
  },
  {
    version: 2,
    name: 'granted tiers (no self-claimed attested), miner attestation keys, runtime allow-list',
    sql: `
      UPDATE miners SET tier = 'open' WHERE tier NOT IN ('open', 'dedicated');
      ALTER TABLE miners ADD COLUMN attestation_key TEXT;
      CREATE TABLE attestation_runtimes (
        digest TEXT COLLATE "C" PRIMARY KEY, note TEXT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL);
    `,
  },
  {
    version: 3,
    name: "an account's own payout address (a developer's share of its DServices' earnings)",
    sql: `ALTER TABLE accounts ADD COLUMN payout_address TEXT;`,
  },
  {
    version: 4,
    name: "an account's fair-queue weight and quotas at the nodes (JSON)",
    sql: `ALTER TABLE accounts ADD COLUMN policy TEXT;`,
  },
];

/** Advisory lock key serialising migrations across central processes ("cgnCent"). */
const MIGRATION_LOCK = 0x6367_6e43_656e_74n;

export interface PostgresCentralStoreOptions {
  /** Connection URL, e.g. postgres://user:password@host:5432/db */
  url: string;
  /** Schema holding central's tables (created if missing). Default `cgn_central`. */
  schema?: string;
  /** Connection pool size. Default 4. */
  max?: number;
}

type Sql = postgres.Sql<Record<string, never>>;
type Tx = postgres.TransactionSql<Record<string, never>>;
type Row = Record<string, unknown>;

const j = (v: unknown): string => JSON.stringify(v);
const pj = <T>(v: unknown): T => JSON.parse(v as string) as T;
/** BIGINT and COUNT(*) arrive as strings; INTEGER and DOUBLE PRECISION as numbers. */
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : (v as string));

function toAccount(r: Row): AccountRecord {
  return {
    id: r['id'] as string, name: r['name'] as string, kinds: pj(r['kinds']),
    allowedRegions: r['allowed_regions'] === null ? null : pj(r['allowed_regions']),
    disabled: r['disabled'] === true, createdAt: num(r['created_at']),
    ...(typeof r['payout_address'] === 'string' ? { payoutAddress: r['payout_address'] } : {}),
    ...(typeof r['policy'] === 'string' ? { policy: pj(r['policy']) } : {}),
  };
}
function toUser(r: Row): UserRecord {
  return {
    id: r['id'] as string, accountId: r['account_id'] as string, login: r['login'] as string, role: r['role'] as Role,
    owner: r['owner'] === true, disabled: r['disabled'] === true, createdAt: num(r['created_at']),
  };
}
function toKey(r: Row): ApiKeyRecord {
  return {
    id: r['id'] as string, hash: r['hash'] as string, prefix: r['prefix'] as string, accountId: r['account_id'] as string,
    userId: strOrNull(r['user_id']), name: r['name'] as string, scopes: pj(r['scopes']),
    createdAt: num(r['created_at']), createdBy: r['created_by'] as string, revokedAt: numOrNull(r['revoked_at']),
    lastUsedAt: numOrNull(r['last_used_at']), expiresAt: numOrNull(r['expires_at']),
  };
}
function toDService(r: Row): DServiceRecord {
  return {
    name: r['name'] as string, version: r['version'] as string, digest: r['digest'] as string, entry: r['entry'] as string,
    developer: r['developer'] as string, deterministic: r['deterministic'] === true, resources: pj(r['resources']),
    maxBodyBytes: num(r['max_body_bytes']), concurrency: num(r['concurrency']), timeouts: pj(r['timeouts']), price: pj(r['price']),
    state: r['state'] as ApprovalState, submittedAt: num(r['submitted_at']), submittedBy: r['submitted_by'] as string,
    decidedAt: numOrNull(r['decided_at']), decidedBy: strOrNull(r['decided_by']),
  };
}
function toNode(r: Row): NodeRecord {
  return {
    id: r['id'] as string, operatorAccount: r['operator_account'] as string, region: r['region'] as string,
    lat: num(r['lat']), lon: num(r['lon']), urls: pj(r['urls']), health: r['health'] as NodeRecord['health'],
    lastSeenAt: num(r['last_seen_at']), draining: r['draining'] === true, capacity: pj(r['capacity']), createdAt: num(r['created_at']),
  };
}
function toMiner(r: Row): MinerRecord {
  return {
    id: r['id'] as string, accountId: r['account_id'] as string, name: r['name'] as string, tier: r['tier'] as MinerRecord['tier'],
    attestationKey: strOrNull(r['attestation_key']),
    createdAt: num(r['created_at']), createdBy: r['created_by'] as string, revokedAt: numOrNull(r['revoked_at']),
  };
}
function toAudit(r: Row): AuditEvent {
  return {
    seq: num(r['seq']), at: num(r['at']), type: r['type'] as string, actor: r['actor'] as string,
    accountId: strOrNull(r['account_id']), subject: strOrNull(r['subject']), ip: strOrNull(r['ip']),
    outcome: r['outcome'] as AuditEvent['outcome'], details: pj(r['details']),
  };
}

export class PostgresCentralStore implements CentralStore {
  private closed = false;

  private constructor(
    private readonly sql: Sql,
    /** The schema holding the tables. */
    readonly schema: string,
  ) {}

  /** Connects, creates the schema if missing and migrates it. */
  static async open(options: PostgresCentralStoreOptions): Promise<PostgresCentralStore> {
    const { url, schema = 'cgn_central', max = 4 } = options;
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new TypeError('PostgresCentralStore option schema: must be a lowercase SQL identifier');
    if (!Number.isInteger(max) || max < 1) throw new TypeError('PostgresCentralStore option max: must be a whole number of at least 1');
    const sql = postgres(url, {
      max,
      onnotice: () => {},
      connection: { search_path: schema, application_name: 'cgn-central' },
    }) as unknown as Sql;
    try {
      await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK.toString()}::bigint)`;
        await tx`CREATE TABLE IF NOT EXISTS central_migrations (version INT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`;
        const [row] = await tx<{ v: number | null }[]>`SELECT MAX(version) AS v FROM central_migrations`;
        const current = row?.v ?? 0;
        const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
        if (current > latest) throw new Error(`central database is at schema ${current}, newer than this program (${latest}); refusing to open it`);
        for (const m of MIGRATIONS) {
          if (m.version <= current) continue;
          await tx.unsafe(m.sql);
          await tx`INSERT INTO central_migrations (version, name, applied_at) VALUES (${m.version}, ${m.name}, ${Date.now()})`;
        }
      });
    } catch (err) {
      await sql.end({ timeout: 1 });
      throw err;
    }
    return new PostgresCentralStore(sql, schema);
  }

  /** The connection pool (tests and operators' tooling). */
  get raw(): Sql {
    return this.sql;
  }

  private async one(q: Promise<Row[]>): Promise<Row | undefined> {
    return (await q)[0];
  }
  private async count(q: Promise<{ count: number }>): Promise<number> {
    return (await q).count;
  }

  // accounts
  async createAccount(a: AccountRecord): Promise<void> {
    await this.sql`INSERT INTO accounts (id, name, kinds, allowed_regions, disabled, created_at)
      VALUES (${a.id}, ${a.name}, ${j(a.kinds)}, ${a.allowedRegions === null ? null : j(a.allowedRegions)}, ${a.disabled}, ${a.createdAt})`;
  }
  async getAccount(id: string): Promise<AccountRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM accounts WHERE id = ${id}`);
    return r && toAccount(r);
  }
  async getAccountByName(name: string): Promise<AccountRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM accounts WHERE name = ${name}`);
    return r && toAccount(r);
  }
  async listAccounts(): Promise<AccountRecord[]> {
    return (await this.sql<Row[]>`SELECT * FROM accounts ORDER BY created_at, id`).map(toAccount);
  }
  async updateAccount(id: string, patch: Partial<Pick<AccountRecord, 'kinds' | 'allowedRegions' | 'disabled' | 'payoutAddress' | 'policy'>>): Promise<boolean> {
    return this.sql.begin(async (tx: Tx) => {
      const [r] = await tx<Row[]>`SELECT * FROM accounts WHERE id = ${id} FOR UPDATE`;
      if (r === undefined) return false;
      const n = { ...toAccount(r), ...patch };
      const res = await tx`UPDATE accounts SET kinds = ${j(n.kinds)}, allowed_regions = ${n.allowedRegions === null ? null : j(n.allowedRegions)},
        disabled = ${n.disabled}, payout_address = ${n.payoutAddress ?? null}, policy = ${n.policy == null ? null : j(n.policy)} WHERE id = ${id}`;
      return res.count === 1;
    }) as Promise<boolean>;
  }

  // users and credentials
  async createUser(u: UserRecord, c: CredentialRecord): Promise<void> {
    await this.sql.begin(async (tx: Tx) => {
      await tx`INSERT INTO users (id, account_id, login, role, owner, disabled, created_at)
        VALUES (${u.id}, ${u.accountId}, ${u.login}, ${u.role}, ${u.owner}, ${u.disabled}, ${u.createdAt})`;
      await tx`INSERT INTO credentials (user_id, password_hash, failed_count, locked_until, changed_at)
        VALUES (${u.id}, ${c.passwordHash}, ${c.failedCount}, ${c.lockedUntil}, ${c.changedAt})`;
    });
  }
  async getUser(id: string): Promise<UserRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM users WHERE id = ${id}`);
    return r && toUser(r);
  }
  async getUserByLogin(login: string): Promise<UserRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM users WHERE login = ${login.toLowerCase()}`);
    return r && toUser(r);
  }
  async listUsers(accountId?: string): Promise<UserRecord[]> {
    const rows = accountId === undefined
      ? await this.sql<Row[]>`SELECT * FROM users ORDER BY created_at, id`
      : await this.sql<Row[]>`SELECT * FROM users WHERE account_id = ${accountId} ORDER BY created_at, id`;
    return rows.map(toUser);
  }
  async countUsers(): Promise<number> {
    const [r] = await this.sql<{ n: string }[]>`SELECT COUNT(*) AS n FROM users`;
    return num(r?.n ?? 0);
  }
  async setUserRole(id: string, role: Role): Promise<boolean> {
    return (await this.count(this.sql`UPDATE users SET role = ${role} WHERE id = ${id}`)) === 1;
  }
  async getCredential(userId: string): Promise<CredentialRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM credentials WHERE user_id = ${userId}`);
    return r && {
      userId, passwordHash: r['password_hash'] as string, failedCount: num(r['failed_count']),
      lockedUntil: num(r['locked_until']), changedAt: num(r['changed_at']),
    };
  }
  async setPassword(userId: string, passwordHash: string, at: number): Promise<void> {
    await this.sql`UPDATE credentials SET password_hash = ${passwordHash}, changed_at = ${at} WHERE user_id = ${userId}`;
  }
  async recordLoginFailure(userId: string, lockedUntil: (failedCount: number) => number): Promise<number> {
    // The UPDATE takes the row lock until commit, so concurrent failures count one after another.
    return this.sql.begin(async (tx: Tx) => {
      const [r] = await tx<{ failed_count: number; locked_until: string }[]>`
        UPDATE credentials SET failed_count = failed_count + 1 WHERE user_id = ${userId} RETURNING failed_count, locked_until`;
      const count = num(r?.failed_count ?? 0);
      const until = lockedUntil(count);
      if (r !== undefined && until > num(r.locked_until)) await tx`UPDATE credentials SET locked_until = ${until} WHERE user_id = ${userId}`;
      return count;
    }) as Promise<number>;
  }
  async resetLoginFailures(userId: string): Promise<void> {
    await this.sql`UPDATE credentials SET failed_count = 0, locked_until = 0 WHERE user_id = ${userId}`;
  }

  // TOTP and recovery codes
  async getTotp(userId: string): Promise<TotpRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM totp WHERE user_id = ${userId}`);
    return r && { userId, secret: r['secret'] as string, confirmedAt: numOrNull(r['confirmed_at']), lastStep: num(r['last_step']) };
  }
  async putTotp(t: TotpRecord): Promise<void> {
    await this.sql`INSERT INTO totp (user_id, secret, confirmed_at, last_step) VALUES (${t.userId}, ${t.secret}, ${t.confirmedAt}, ${t.lastStep})
      ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, confirmed_at = EXCLUDED.confirmed_at, last_step = EXCLUDED.last_step`;
  }
  async confirmTotp(userId: string, at: number, step: number): Promise<boolean> {
    return (await this.count(this.sql`UPDATE totp SET confirmed_at = ${at}, last_step = ${step}
      WHERE user_id = ${userId} AND confirmed_at IS NULL AND last_step < ${step}`)) === 1;
  }
  async deleteTotp(userId: string): Promise<void> {
    await this.sql.begin(async (tx: Tx) => {
      await tx`DELETE FROM totp WHERE user_id = ${userId}`;
      await tx`DELETE FROM recovery_codes WHERE user_id = ${userId}`;
    });
  }
  async advanceTotpStep(userId: string, step: number): Promise<boolean> {
    return (await this.count(this.sql`UPDATE totp SET last_step = ${step} WHERE user_id = ${userId} AND last_step < ${step}`)) === 1;
  }
  async replaceRecoveryCodes(userId: string, hashes: string[], at: number): Promise<void> {
    await this.sql.begin(async (tx: Tx) => {
      await tx`DELETE FROM recovery_codes WHERE user_id = ${userId}`;
      for (const h of hashes) await tx`INSERT INTO recovery_codes (user_id, hash, created_at) VALUES (${userId}, ${h}, ${at})`;
    });
  }
  async useRecoveryCode(userId: string, hash: string, at: number): Promise<boolean> {
    return (await this.count(this.sql`UPDATE recovery_codes SET used_at = ${at}
      WHERE user_id = ${userId} AND hash = ${hash} AND used_at IS NULL`)) === 1;
  }
  async countRecoveryCodes(userId: string): Promise<number> {
    const [r] = await this.sql<{ n: string }[]>`SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = ${userId} AND used_at IS NULL`;
    return num(r?.n ?? 0);
  }

  // sessions
  async createSession(s: SessionRecord): Promise<void> {
    await this.sql`INSERT INTO sessions (hash, user_id, created_at, expires_at) VALUES (${s.hash}, ${s.userId}, ${s.createdAt}, ${s.expiresAt})`;
  }
  async getSession(hash: string): Promise<SessionRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM sessions WHERE hash = ${hash}`);
    return r && { hash, userId: r['user_id'] as string, createdAt: num(r['created_at']), expiresAt: num(r['expires_at']) };
  }
  async deleteSession(hash: string): Promise<void> {
    await this.sql`DELETE FROM sessions WHERE hash = ${hash}`;
  }
  async deleteUserSessions(userId: string): Promise<void> {
    await this.sql`DELETE FROM sessions WHERE user_id = ${userId}`;
  }

  // API keys
  async createApiKey(k: ApiKeyRecord): Promise<void> {
    await this.sql`INSERT INTO api_keys (id, hash, prefix, account_id, user_id, name, scopes, created_at, created_by, revoked_at, last_used_at, expires_at)
      VALUES (${k.id}, ${k.hash}, ${k.prefix}, ${k.accountId}, ${k.userId}, ${k.name}, ${j(k.scopes)}, ${k.createdAt}, ${k.createdBy},
        ${k.revokedAt}, ${k.lastUsedAt}, ${k.expiresAt})`;
  }
  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM api_keys WHERE id = ${id}`);
    return r && toKey(r);
  }
  async getApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM api_keys WHERE hash = ${hash}`);
    return r && toKey(r);
  }
  async listApiKeys(accountId: string): Promise<ApiKeyRecord[]> {
    return (await this.sql<Row[]>`SELECT * FROM api_keys WHERE account_id = ${accountId} ORDER BY created_at, id`).map(toKey);
  }
  async revokeApiKey(id: string, at: number): Promise<boolean> {
    return (await this.count(this.sql`UPDATE api_keys SET revoked_at = ${at} WHERE id = ${id} AND revoked_at IS NULL`)) === 1;
  }
  async touchApiKey(id: string, at: number): Promise<void> {
    await this.sql`UPDATE api_keys SET last_used_at = ${at} WHERE id = ${id} AND (last_used_at IS NULL OR last_used_at < ${at})`;
  }

  // DService descriptors
  async createDService(d: DServiceRecord): Promise<void> {
    await this.sql`INSERT INTO dservices (name, version, digest, entry, developer, deterministic, resources, max_body_bytes, concurrency,
      timeouts, price, state, submitted_at, submitted_by, decided_at, decided_by)
      VALUES (${d.name}, ${d.version}, ${d.digest}, ${d.entry}, ${d.developer}, ${d.deterministic}, ${j(d.resources)}, ${d.maxBodyBytes},
        ${d.concurrency}, ${j(d.timeouts)}, ${j(d.price)}, ${d.state}, ${d.submittedAt}, ${d.submittedBy}, ${d.decidedAt}, ${d.decidedBy})`;
  }
  async getDService(name: string, version: string): Promise<DServiceRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM dservices WHERE name = ${name} AND version = ${version}`);
    return r && toDService(r);
  }
  async listDServices(filter: { state?: ApprovalState; developer?: string } = {}): Promise<DServiceRecord[]> {
    const sql = this.sql;
    const rows = await sql<Row[]>`SELECT * FROM dservices WHERE TRUE
      ${filter.state === undefined ? sql`` : sql`AND state = ${filter.state}`}
      ${filter.developer === undefined ? sql`` : sql`AND developer = ${filter.developer}`}
      ORDER BY name, submitted_at, version`;
    return rows.map(toDService);
  }
  async decideDService(name: string, version: string, state: ApprovalState, by: string, at: number): Promise<boolean> {
    return (await this.count(this.sql`UPDATE dservices SET state = ${state}, decided_by = ${by}, decided_at = ${at}
      WHERE name = ${name} AND version = ${version}`)) === 1;
  }

  // node directory
  async putNode(n: NodeRecord): Promise<void> {
    await this.sql`INSERT INTO nodes (id, operator_account, region, lat, lon, urls, health, last_seen_at, draining, capacity, created_at)
      VALUES (${n.id}, ${n.operatorAccount}, ${n.region}, ${n.lat}, ${n.lon}, ${j(n.urls)}, ${n.health}, ${n.lastSeenAt}, ${n.draining},
        ${j(n.capacity)}, ${n.createdAt})
      ON CONFLICT (id) DO UPDATE SET operator_account = EXCLUDED.operator_account, region = EXCLUDED.region, lat = EXCLUDED.lat,
        lon = EXCLUDED.lon, urls = EXCLUDED.urls, health = EXCLUDED.health, last_seen_at = EXCLUDED.last_seen_at,
        draining = EXCLUDED.draining, capacity = EXCLUDED.capacity, created_at = EXCLUDED.created_at`;
  }
  async getNode(id: string): Promise<NodeRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM nodes WHERE id = ${id}`);
    return r && toNode(r);
  }
  async listNodes(): Promise<NodeRecord[]> {
    return (await this.sql<Row[]>`SELECT * FROM nodes ORDER BY id`).map(toNode);
  }
  async updateNodeState(id: string, patch: Partial<Pick<NodeRecord, 'health' | 'lastSeenAt' | 'draining' | 'capacity'>>): Promise<boolean> {
    return this.sql.begin(async (tx: Tx) => {
      const [r] = await tx<Row[]>`SELECT * FROM nodes WHERE id = ${id} FOR UPDATE`;
      if (r === undefined) return false;
      const m = { ...toNode(r), ...patch };
      const res = await tx`UPDATE nodes SET health = ${m.health}, last_seen_at = ${m.lastSeenAt}, draining = ${m.draining},
        capacity = ${j(m.capacity)} WHERE id = ${id}`;
      return res.count === 1;
    }) as Promise<boolean>;
  }
  async deleteNode(id: string): Promise<boolean> {
    return (await this.count(this.sql`DELETE FROM nodes WHERE id = ${id}`)) === 1;
  }

  // miners
  async createMiner(m: MinerRecord): Promise<void> {
    await this.sql`INSERT INTO miners (id, account_id, name, tier, attestation_key, created_at, created_by, revoked_at)
      VALUES (${m.id}, ${m.accountId}, ${m.name}, ${m.tier}, ${m.attestationKey}, ${m.createdAt}, ${m.createdBy}, ${m.revokedAt})`;
  }
  async getMiner(id: string): Promise<MinerRecord | undefined> {
    const r = await this.one(this.sql<Row[]>`SELECT * FROM miners WHERE id = ${id}`);
    return r && toMiner(r);
  }
  async listMiners(accountId?: string): Promise<MinerRecord[]> {
    const rows = accountId === undefined
      ? await this.sql<Row[]>`SELECT * FROM miners ORDER BY created_at, id`
      : await this.sql<Row[]>`SELECT * FROM miners WHERE account_id = ${accountId} ORDER BY created_at, id`;
    return rows.map(toMiner);
  }
  async revokeMiner(id: string, at: number): Promise<boolean> {
    return (await this.count(this.sql`UPDATE miners SET revoked_at = ${at} WHERE id = ${id} AND revoked_at IS NULL`)) === 1;
  }
  async updateMiner(id: string, patch: Partial<Pick<MinerRecord, 'tier' | 'attestationKey'>>): Promise<boolean> {
    const m = await this.getMiner(id);
    if (m === undefined) return false;
    const next = { ...m, ...patch };
    return (await this.count(this.sql`UPDATE miners SET tier = ${next.tier}, attestation_key = ${next.attestationKey} WHERE id = ${id}`)) === 1;
  }

  // attestation allow-list
  async putRuntimeMeasurement(r: RuntimeMeasurementRecord): Promise<void> {
    await this.sql`INSERT INTO attestation_runtimes (digest, note, created_at, created_by) VALUES (${r.digest}, ${r.note}, ${r.createdAt}, ${r.createdBy})
      ON CONFLICT (digest) DO UPDATE SET note = excluded.note`;
  }
  async listRuntimeMeasurements(): Promise<RuntimeMeasurementRecord[]> {
    const rows = await this.sql<Row[]>`SELECT * FROM attestation_runtimes ORDER BY created_at, digest`;
    return rows.map((r) => ({ digest: r['digest'] as string, note: r['note'] as string, createdAt: num(r['created_at']), createdBy: r['created_by'] as string }));
  }
  async deleteRuntimeMeasurement(digest: string): Promise<boolean> {
    return (await this.count(this.sql`DELETE FROM attestation_runtimes WHERE digest = ${digest}`)) === 1;
  }

  // audit
  async appendAudit(e: AuditInput): Promise<number> {
    const [r] = await this.sql<{ seq: string }[]>`INSERT INTO audit (at, type, actor, account_id, subject, ip, outcome, details)
      VALUES (${e.at}, ${e.type}, ${e.actor}, ${e.accountId}, ${e.subject}, ${e.ip}, ${e.outcome}, ${j(e.details)}) RETURNING seq`;
    return num(r!.seq);
  }
  async queryAudit(q: AuditQuery): Promise<AuditEvent[]> {
    const sql = this.sql;
    const limit = Math.max(1, Math.min(1000, Math.trunc(q.limit ?? 100)));
    const rows = await sql<Row[]>`SELECT * FROM audit WHERE TRUE
      ${q.type === undefined ? sql`` : sql`AND type = ${q.type}`}
      ${q.accountId === undefined ? sql`` : sql`AND account_id = ${q.accountId}`}
      ${q.actor === undefined ? sql`` : sql`AND actor = ${q.actor}`}
      ${q.since === undefined ? sql`` : sql`AND at >= ${q.since}`}
      ${q.until === undefined ? sql`` : sql`AND at < ${q.until}`}
      ${q.beforeSeq === undefined ? sql`` : sql`AND seq < ${q.beforeSeq}`}
      ORDER BY seq DESC LIMIT ${limit}`;
    return rows.map(toAudit);
  }

  // signing keys
  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    return (await this.sql<Row[]>`SELECT * FROM signing_keys ORDER BY created_at, kid`).map((r) => ({
      kid: r['kid'] as string, alg: 'EdDSA' as const, privateJwk: r['private_jwk'] as string, publicJwk: r['public_jwk'] as string,
      createdAt: num(r['created_at']), retiredAt: numOrNull(r['retired_at']),
    }));
  }
  async addSigningKey(k: SigningKeyRecord): Promise<void> {
    await this.sql`INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at, retired_at)
      VALUES (${k.kid}, ${k.alg}, ${k.privateJwk}, ${k.publicJwk}, ${k.createdAt}, ${k.retiredAt})`;
  }
  async retireSigningKeys(at: number): Promise<void> {
    await this.sql`UPDATE signing_keys SET retired_at = ${at} WHERE retired_at IS NULL`;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sql.end({ timeout: 5 });
  }
}
