/** JSON Schemas of central's HTTP API, shared by route validation and the OpenAPI document. */
import { ACCOUNT_KINDS, ROLES } from '../store/store.js';
import { PASSWORD_MAX, PASSWORD_MIN } from '../auth/passwords.js';
import { SCOPE_PATTERN } from '../auth/api-keys.js';
import { DIGEST_PATTERN, DSERVICE_NAME_PATTERN, NODE_ID_PATTERN, REGION_PATTERN, VERSION_PATTERN } from '../registry/descriptors.js';
import { dserviceSchema } from '@cgn/protocol';

export type Schema = Record<string, unknown>;

/**
 * A registration's descriptor fields obey dservice.json's own JSON Schema (the one miners and
 * nodes parse by) and central's bounds on top: both apply, and an error names the field.
 */
const DSERVICE_JSON = (dserviceSchema()['properties'] ?? {}) as Record<string, Schema>;
const descriptorField = (field: string, central: Schema): Schema => ({ allOf: [DSERVICE_JSON[field]!, central] });

export const obj = (properties: Record<string, Schema>, required: string[] = [], extra: Schema = {}): Schema => ({
  type: 'object', additionalProperties: false, properties, required, ...extra,
});
export const str = (maxLength: number, extra: Schema = {}): Schema => ({ type: 'string', maxLength, ...extra });
export const int = (minimum: number, maximum: number): Schema => ({ type: 'integer', minimum, maximum });
/** A price schedule in µUSD; in a tier's schedule, a field not given is the base schedule's. */
const PRICE_SCHEDULE = { perRequestMicros: int(0, 1e12), perCpuSecondMicros: int(0, 1e12), perMbMicros: int(0, 1e12) };
export const num = (minimum: number, maximum: number): Schema => ({ type: 'number', minimum, maximum });
export const arr = (items: Schema, maxItems: number, extra: Schema = {}): Schema => ({ type: 'array', items, maxItems, ...extra });

export const LOGIN = str(64, { minLength: 3, pattern: '^[A-Za-z0-9._@+-]+$' });
/** Length is checked by the password policy (with a clear message); this only bounds the input. */
export const PASSWORD = str(256, { minLength: 1 });
export const NAME = str(100, { minLength: 1, pattern: '^[^\\u0000-\\u001f]+$' });
export const ID = str(64, { minLength: 1, pattern: '^[A-Za-z0-9_-]+$' });
export const REGION = str(32, { pattern: REGION_PATTERN });
export const ROLE = { type: 'string', enum: [...ROLES] };
export const KINDS = arr({ type: 'string', enum: [...ACCOUNT_KINDS] }, 4, { minItems: 1, uniqueItems: true });
export const SCOPES = arr(str(80, { pattern: SCOPE_PATTERN }), 32, { minItems: 1, uniqueItems: true });
export const LAT = num(-90, 90);
export const LON = num(-180, 180);
export const DSERVICE_NAME = str(63, { pattern: DSERVICE_NAME_PATTERN });
export const VERSION = str(64, { pattern: VERSION_PATTERN });
export const URL_ = str(2048, { minLength: 1 });
export const NODE_URLS = obj({ work: URL_, miner: URL_, status: URL_, central: URL_ }, ['work', 'miner', 'status', 'central']);
export const NODE_URLS_PATCH = obj({ work: URL_, miner: URL_, status: URL_, central: URL_ });

export const passwordNote = `Passwords: ${PASSWORD_MIN}-${PASSWORD_MAX} characters with an upper-case letter, a lower-case letter and a special character; common passwords are refused.`;

export const S = {
  login: obj({ login: LOGIN, password: PASSWORD, totp: str(6, { pattern: '^[0-9]{6}$' }), recoveryCode: str(32) }, ['login', 'password']),
  changePassword: obj({ currentPassword: PASSWORD, newPassword: PASSWORD }, ['currentPassword', 'newPassword']),
  totpConfirm: obj({ code: str(6, { pattern: '^[0-9]{6}$' }) }, ['code']),
  createAccount: obj(
    {
      name: NAME, kinds: KINDS, allowedRegions: { anyOf: [arr(REGION, 64, { uniqueItems: true }), { type: 'null' }] },
      owner: obj({ login: LOGIN, password: PASSWORD }, ['login', 'password']),
    },
    ['name', 'kinds', 'owner'],
  ),
  updateAccount: obj({
    kinds: KINDS, allowedRegions: { anyOf: [arr(REGION, 64, { uniqueItems: true }), { type: 'null' }] }, disabled: { type: 'boolean' },
    // The account's weight in the nodes' fair queues and its quotas there; null: the nodes' defaults.
    policy: {
      anyOf: [
        obj({
          weight: { type: 'number', exclusiveMinimum: 0, maximum: 1e6 },
          maxConcurrent: { anyOf: [int(1, 1e9), { type: 'null' }] },
          perSecond: { anyOf: [{ type: 'number', exclusiveMinimum: 0, maximum: 1e9 }, { type: 'null' }] },
          burst: { anyOf: [{ type: 'number', exclusiveMinimum: 0, maximum: 1e9 }, { type: 'null' }] },
        }),
        { type: 'null' },
      ],
    },
  }, [], { minProperties: 1 }),
  payoutAddress: obj({ address: { anyOf: [str(42, { pattern: '^0x[0-9a-fA-F]{40}$' }), { type: 'null' }] } }, ['address']),
  addUser: obj({ login: LOGIN, password: PASSWORD, role: ROLE }, ['login', 'password']),
  setRole: obj({ role: ROLE }, ['role']),
  createKey: obj({ name: NAME, scopes: SCOPES, userId: { anyOf: [ID, { type: 'null' }] }, expiresInS: int(60, 10 * 365 * 86400) }, ['name']),
  registerDService: obj(
    {
      name: descriptorField('name', DSERVICE_NAME), version: descriptorField('version', VERSION), digest: str(71, { pattern: DIGEST_PATTERN }),
      entry: descriptorField('entry', str(256, { minLength: 1, pattern: '^[^.][^\\u0000]*$' })),
      developer: ID, deterministic: descriptorField('deterministic', { type: 'boolean' }),
      resources: descriptorField('resources', obj({ cpus: int(1, 256), memoryMb: int(16, 1024 * 1024), pids: int(1, 1 << 20), diskMb: int(0, 1024 * 1024 * 16), gpus: int(0, 64) })),
      maxBodyBytes: descriptorField('maxBodyBytes', int(1, 1024 * 1024 * 1024)), concurrency: descriptorField('concurrency', int(1, 4096)),
      timeouts: descriptorField('timeouts', obj({ requestMs: int(100, 24 * 3600 * 1000) })),
      price: obj({
        ...PRICE_SCHEDULE,
        tiers: obj({ open: obj(PRICE_SCHEDULE), attested: obj(PRICE_SCHEDULE), dedicated: obj(PRICE_SCHEDULE) }),
      }),
    },
    ['name', 'version', 'digest'],
  ),
  approval: obj({ state: { type: 'string', enum: ['approved', 'rejected'] }, reason: str(500) }, ['state']),
  registerNode: obj({ id: str(64, { pattern: NODE_ID_PATTERN }), operatorAccount: ID, region: REGION, lat: LAT, lon: LON, urls: NODE_URLS }, ['id', 'operatorAccount', 'region', 'lat', 'lon', 'urls']),
  updateNode: obj(
    { region: REGION, lat: LAT, lon: LON, urls: NODE_URLS_PATCH, health: { type: 'string', enum: ['up', 'degraded', 'down', 'unknown'] }, draining: { type: 'boolean' } },
    [], { minProperties: 1 },
  ),
  // tier: only 'open' is granted here; 'dedicated' and 'attested' stay in the enum so asking for them gets a 403 that says who grants them.
  registerMiner: obj({ publicKey: str(64, { pattern: '^[0-9a-fA-F]{64}$' }), name: NAME, tier: { type: 'string', enum: ['open', 'attested', 'dedicated'] }, attestationKey: str(4096) }, ['publicKey', 'name']),
  grantTier: obj({ tier: { type: 'string', enum: ['open', 'dedicated'] } }, ['tier']),
  attestationKey: obj({ attestationKey: { type: ['string', 'null'], maxLength: 4096 } }, ['attestationKey']),
  allowRuntime: obj({ digest: str(64, { pattern: '^[0-9a-fA-F]{64}$' }), note: str(200) }, ['digest', 'note']),
  selectDApp: obj({ lat: LAT, lon: LON, ip: str(64), dservices: arr(DSERVICE_NAME, 32, { minItems: 1, uniqueItems: true }), limit: int(1, 50) }, ['dservices']),
  selectMiner: obj({ lat: LAT, lon: LON, ip: str(64), offers: arr(DSERVICE_NAME, 64, { minItems: 1, uniqueItems: true }), limit: int(1, 50) }, ['offers']),
  auditQuery: obj({
    type: str(64, { pattern: '^[a-z_]+$' }), accountId: ID, actor: str(80), since: str(16, { pattern: '^[0-9]+$' }),
    until: str(16, { pattern: '^[0-9]+$' }), before: str(16, { pattern: '^[0-9]+$' }), limit: str(4, { pattern: '^[0-9]+$' }),
  }),
  usageQuery: obj({
    by: { type: 'string', enum: ['dservice', 'end-user', 'day', 'tier'] },
    from: str(16, { pattern: '^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,16})$' }),
    to: str(16, { pattern: '^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,16})$' }),
    dservice: DSERVICE_NAME,
    cycle: str(9, { pattern: '^[1-9][0-9]{0,8}$' }),
  }),
  invoiceParams: obj({ account: ID, cycle: str(9, { pattern: '^([1-9][0-9]{0,8}|latest)$' }) }, ['account', 'cycle']),
  dserviceQuery: obj({ state: { type: 'string', enum: ['pending', 'approved', 'rejected'] } }),
  token: obj({ grant_type: str(64), client_id: str(128), client_secret: str(256), scope: str(1024) }, ['grant_type']),
} as const;

export const params = (...names: string[]): Schema =>
  obj(Object.fromEntries(names.map((n) => [n, n === 'name' ? DSERVICE_NAME : n === 'version' ? VERSION : n === 'node' ? str(64, { pattern: NODE_ID_PATTERN }) : n === 'miner' || n === 'digest' ? str(64, { pattern: '^[0-9a-fA-F]{64}$' }) : ID])), names);
