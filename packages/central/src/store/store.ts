/**
 * The contract every central store meets: SQLite embedded today, PostgreSQL at scale later.
 * Methods may answer synchronously (embedded stores) or with a promise (networked ones); callers
 * always `await`. Records are plain data; times are epoch milliseconds; secrets are never stored,
 * only their hashes (API keys, sessions, recovery codes: SHA-256; passwords: argon2id PHC strings).
 *
 * The operations that must not race (login failure counting, TOTP step replay, recovery code use,
 * key revocation) are single conditional updates so every adapter can make them atomic.
 */
export type MaybePromise<T> = T | Promise<T>;

export const ROLES = ['administrator', 'operator', 'user', 'monitor'] as const;
export type Role = (typeof ROLES)[number];

/** What an account is: `system` holds the network's staff; the others may be combined. */
export const ACCOUNT_KINDS = ['system', 'enterprise', 'developer', 'miner'] as const;
export type AccountKind = (typeof ACCOUNT_KINDS)[number];

export interface AccountRecord {
  id: string;
  name: string;
  kinds: AccountKind[];
  /** Data regions the account's work may go to; null = anywhere. */
  allowedRegions: string[] | null;
  disabled: boolean;
  createdAt: number;
  /**
   * Where the account's earnings are paid (a DService developer's share): an EVM address the
   * account set itself, or null. Nodes register it in their ledgers for the account's DServices.
   */
  payoutAddress?: string | null;
  /**
   * The account's share of contended queues and its quotas at every node (pushed over the node
   * link); null or absent: the nodes' defaults.
   */
  policy?: AccountPolicySettings | null;
}

/** An account's weight in the nodes' fair queues and its quotas; a field left out is the node's default. */
export interface AccountPolicySettings {
  weight?: number;
  /** Requests of the account a node holds at once; null: no quota. */
  maxConcurrent?: number | null;
  /** Requests per second (burst: `burst`, default one second's worth); null: no quota. */
  perSecond?: number | null;
  burst?: number | null;
}

export interface UserRecord {
  id: string;
  accountId: string;
  /** Unique login name (case-insensitive; stored lower case). */
  login: string;
  role: Role;
  /** The account's owner: manages its end users and keys. */
  owner: boolean;
  disabled: boolean;
  createdAt: number;
}

export interface CredentialRecord {
  userId: string;
  passwordHash: string;
  /** Consecutive failed logins since the last success. */
  failedCount: number;
  lockedUntil: number;
  changedAt: number;
}

export interface TotpRecord {
  userId: string;
  /** Base32 secret. */
  secret: string;
  /** Null until the user proves the authenticator works. */
  confirmedAt: number | null;
  /** Highest time step accepted so far; a code for this step or an earlier one is a replay. */
  lastStep: number;
}

export type ApiKeyScope = string;

export interface ApiKeyRecord {
  id: string;
  /** SHA-256 hex of the whole key. */
  hash: string;
  /** First characters of the key, safe to show (`cgn_Ab3xYz`). */
  prefix: string;
  accountId: string;
  /** The end user the key acts for, if any. */
  userId: string | null;
  name: string;
  scopes: ApiKeyScope[];
  createdAt: number;
  createdBy: string;
  revokedAt: number | null;
  lastUsedAt: number | null;
  expiresAt: number | null;
}

export interface SessionRecord {
  /** SHA-256 hex of the bearer token. */
  hash: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
}

export type ApprovalState = 'pending' | 'approved' | 'rejected';

export interface PriceSchedule {
  /** Fiat micro-units per request, per CPU second and per MB moved. */
  perRequestMicros: number;
  perCpuSecondMicros: number;
  perMbMicros: number;
}

/** A DService version's prices: the base schedule, and optionally another per tier. */
export interface Price extends PriceSchedule {
  tiers?: Partial<Record<'open' | 'attested' | 'dedicated', PriceSchedule>>;
}

export interface DServiceRecord {
  name: string;
  version: string;
  /** sha256 hex digest of the DService package (as the miner's `digestPackage` computes it). */
  digest: string;
  /** Entry file of the package, run with node by miners. */
  entry: string;
  /** Owning developer account. */
  developer: string;
  deterministic: boolean;
  resources: { cpus: number; memoryMb: number; diskMb: number; gpus: number };
  maxBodyBytes: number;
  concurrency: number;
  timeouts: { requestMs: number };
  /** null: the developer set none, and nodes price the DService with their default. */
  price: Price | null;
  state: ApprovalState;
  submittedAt: number;
  submittedBy: string;
  decidedAt: number | null;
  decidedBy: string | null;
}

export type NodeHealth = 'up' | 'degraded' | 'down' | 'unknown';

/** Per DService: miner slots at the node, how many are busy, and how much work waits. */
export interface DServiceCapacity {
  slots: number;
  busy: number;
  queued: number;
}

export interface NodeRecord {
  id: string;
  operatorAccount: string;
  region: string;
  lat: number;
  lon: number;
  urls: { work: string; miner: string; status: string; central: string };
  health: NodeHealth;
  /** When central last heard from the node (0 = never). */
  lastSeenAt: number;
  draining: boolean;
  capacity: Record<string, DServiceCapacity>;
  createdAt: number;
}

/**
 * A tier central grants: `open` to every registered miner, `dedicated` only by staff (an operator
 * under contract). `attested` is never granted here: a node grants it per connection, for a
 * verified TPM quote against the miner's registered attestation key.
 */
export type GrantedTier = 'open' | 'dedicated';

export interface MinerRecord {
  /** Hex Ed25519 public key (the miner's identity on the network). */
  id: string;
  accountId: string;
  name: string;
  tier: GrantedTier;
  /** PEM (SPKI) public key of the attestation key in the miner's TPM, or null. */
  attestationKey: string | null;
  createdAt: number;
  createdBy: string;
  revokedAt: number | null;
}

/** A known-good measurement of the miner runtime (the attestation allow-list; DServices are allowed by their approved digest). */
export interface RuntimeMeasurementRecord {
  /** sha256 hex of the runtime as `measureRuntime` computes it. */
  digest: string;
  note: string;
  createdAt: number;
  createdBy: string;
}

export interface AuditEvent {
  seq: number;
  at: number;
  type: string;
  /** User id, key id or `system`. */
  actor: string;
  /** Account the event is about, if any. */
  accountId: string | null;
  /** What it was done to (a user, key, DService, node...). */
  subject: string | null;
  ip: string | null;
  outcome: 'ok' | 'failure' | 'denied';
  details: Record<string, unknown>;
}

export type AuditInput = Omit<AuditEvent, 'seq'>;

export interface AuditQuery {
  type?: string;
  accountId?: string;
  actor?: string;
  since?: number;
  until?: number;
  /** Only events with seq below this (paging backwards). */
  beforeSeq?: number;
  /** Newest first; default 100, at most 1000. */
  limit?: number;
}

export interface SigningKeyRecord {
  kid: string;
  alg: 'EdDSA';
  /** Private JWK (JSON). */
  privateJwk: string;
  publicJwk: string;
  createdAt: number;
  /** Keys stay published until this time after rotation; null = current. */
  retiredAt: number | null;
}

export interface CentralStore {
  // accounts
  createAccount(a: AccountRecord): MaybePromise<void>;
  getAccount(id: string): MaybePromise<AccountRecord | undefined>;
  getAccountByName(name: string): MaybePromise<AccountRecord | undefined>;
  listAccounts(): MaybePromise<AccountRecord[]>;
  updateAccount(id: string, patch: Partial<Pick<AccountRecord, 'kinds' | 'allowedRegions' | 'disabled' | 'payoutAddress' | 'policy'>>): MaybePromise<boolean>;
  // users and credentials
  createUser(u: UserRecord, c: CredentialRecord): MaybePromise<void>;
  getUser(id: string): MaybePromise<UserRecord | undefined>;
  getUserByLogin(login: string): MaybePromise<UserRecord | undefined>;
  listUsers(accountId?: string): MaybePromise<UserRecord[]>;
  countUsers(): MaybePromise<number>;
  setUserRole(id: string, role: Role): MaybePromise<boolean>;
  getCredential(userId: string): MaybePromise<CredentialRecord | undefined>;
  setPassword(userId: string, passwordHash: string, at: number): MaybePromise<void>;
  /** Counts one more failure and sets the lock; returns the new count. */
  recordLoginFailure(userId: string, lockedUntil: (failedCount: number) => number): MaybePromise<number>;
  resetLoginFailures(userId: string): MaybePromise<void>;
  // TOTP and recovery codes
  getTotp(userId: string): MaybePromise<TotpRecord | undefined>;
  putTotp(t: TotpRecord): MaybePromise<void>;
  confirmTotp(userId: string, at: number, step: number): MaybePromise<boolean>;
  deleteTotp(userId: string): MaybePromise<void>;
  /** Sets lastStep to `step` only if it is higher than the stored one; false = replay. */
  advanceTotpStep(userId: string, step: number): MaybePromise<boolean>;
  replaceRecoveryCodes(userId: string, hashes: string[], at: number): MaybePromise<void>;
  /** Marks an unused code used; false if unknown or used already. */
  useRecoveryCode(userId: string, hash: string, at: number): MaybePromise<boolean>;
  countRecoveryCodes(userId: string): MaybePromise<number>;
  // sessions
  createSession(s: SessionRecord): MaybePromise<void>;
  getSession(hash: string): MaybePromise<SessionRecord | undefined>;
  deleteSession(hash: string): MaybePromise<void>;
  deleteUserSessions(userId: string): MaybePromise<void>;
  // API keys
  createApiKey(k: ApiKeyRecord): MaybePromise<void>;
  getApiKey(id: string): MaybePromise<ApiKeyRecord | undefined>;
  getApiKeyByHash(hash: string): MaybePromise<ApiKeyRecord | undefined>;
  listApiKeys(accountId: string): MaybePromise<ApiKeyRecord[]>;
  revokeApiKey(id: string, at: number): MaybePromise<boolean>;
  touchApiKey(id: string, at: number): MaybePromise<void>;
  // DService descriptors
  createDService(d: DServiceRecord): MaybePromise<void>;
  getDService(name: string, version: string): MaybePromise<DServiceRecord | undefined>;
  listDServices(filter?: { state?: ApprovalState; developer?: string }): MaybePromise<DServiceRecord[]>;
  decideDService(name: string, version: string, state: ApprovalState, by: string, at: number): MaybePromise<boolean>;
  // node directory
  putNode(n: NodeRecord): MaybePromise<void>;
  getNode(id: string): MaybePromise<NodeRecord | undefined>;
  listNodes(): MaybePromise<NodeRecord[]>;
  updateNodeState(id: string, patch: Partial<Pick<NodeRecord, 'health' | 'lastSeenAt' | 'draining' | 'capacity'>>): MaybePromise<boolean>;
  deleteNode(id: string): MaybePromise<boolean>;
  // miners
  createMiner(m: MinerRecord): MaybePromise<void>;
  getMiner(id: string): MaybePromise<MinerRecord | undefined>;
  listMiners(accountId?: string): MaybePromise<MinerRecord[]>;
  revokeMiner(id: string, at: number): MaybePromise<boolean>;
  updateMiner(id: string, patch: Partial<Pick<MinerRecord, 'tier' | 'attestationKey'>>): MaybePromise<boolean>;
  // attestation allow-list (runtime measurements)
  putRuntimeMeasurement(r: RuntimeMeasurementRecord): MaybePromise<void>;
  listRuntimeMeasurements(): MaybePromise<RuntimeMeasurementRecord[]>;
  deleteRuntimeMeasurement(digest: string): MaybePromise<boolean>;
  // audit log (append-only)
  appendAudit(e: AuditInput): MaybePromise<number>;
  queryAudit(q: AuditQuery): MaybePromise<AuditEvent[]>;
  // token signing keys
  listSigningKeys(): MaybePromise<SigningKeyRecord[]>;
  addSigningKey(k: SigningKeyRecord): MaybePromise<void>;
  retireSigningKeys(at: number): MaybePromise<void>;
  close(): MaybePromise<void>;
}
