/**
 * The central <-> node link protocol, shared by both ends. Central dials the node (WebSocket over mutual TLS, subprotocol
 * `cgn-central-link.v1`); after that both ends may send requests. Frames are JSON text, one per
 * WebSocket message, each typed and versioned and checked field by field on arrival:
 *
 * * `hello`  {from, id}            first frame each way: who is speaking (central id / node id)
 * * `req`    {id, op, args}        a request; `id` is unique per sender while it waits
 * * `res`    {id, ok, result}      the answer to the peer's request `id`
 *            {id, ok:false, error:{code, message}}
 * * `push`   {kind, ...}           central tells the node something changed (no answer)
 *
 * Node -> central ops: `verify_key` {hash} -> {principal: KeyPrincipal | null};
 * `descriptors` {} -> {dservices: LinkDescriptor[]}; `jwks` {} -> {keys: Jwk[]};
 * `miner` {id} -> {allowed, tier, account, attestationKey} (tier: the granted one, open or dedicated);
 * `attestation_policy` {} -> {runtimes} (known-good miner runtime measurements);
 * `account_policies` {} -> {byAccount: {accountId: {weight?, maxConcurrent?, perSecond?, burst?, regions?}}}
 * (accounts' fair-queue weights, quotas and data regions set at central);
 * `package` {digest, offset} -> {data, total}: up to `LINK_PACKAGE_CHUNK_BYTES` of an approved
 * DService's package archive from `offset` (base64 `data`; `total`: the archive's size).
 * Central -> node ops: `status` {} -> NodeLinkStatus.
 * Pushes: `keys_revoked` {hashes}, `tokens_revoked` {sync, keys, accounts}, `dservices_changed` {}, `attestation_changed` {},
 * `miner_changed` {id} (a miner key was revoked, or its tier or attestation key changed), `accounts_changed` {}
 * (an account's weight, quotas or regions changed: fetch `account_policies` again).
 */
import { CgnError } from './errors.js';
import type { Tier } from './frames.js';

export const LINK_PROTOCOL_VERSION = 1;
/** Most revocation entries one `tokens_revoked` frame carries (a larger set goes in several). */
export const LINK_MAX_REVOCATIONS = 10_000;
/** Longest a node keeps a revocation entry, ms (7 days: more than any token lifetime central allows). */
export const LINK_MAX_REVOCATION_MS = 7 * 86_400_000;
export const LINK_SUBPROTOCOL = 'cgn-central-link.v1';
/** Largest frame either side accepts, bytes. */
export const LINK_MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Certificate common name central presents; nodes present `node:<node id>`. */
export const CENTRAL_CERT_NAME = 'central';
export const nodeCertName = (nodeId: string): string => `node:${nodeId}`;

export const NODE_OPS = ['verify_key', 'descriptors', 'jwks', 'miner', 'attestation_policy', 'account_policies', 'package'] as const;
/** Bytes of a package archive one `package` answer carries at most (base64 keeps it under the frame bound). */
export const LINK_PACKAGE_CHUNK_BYTES = 1024 * 1024;
export const CENTRAL_OPS = ['status'] as const;
export type LinkOp = (typeof NODE_OPS)[number] | (typeof CENTRAL_OPS)[number];
export const PUSH_KINDS = ['keys_revoked', 'tokens_revoked', 'dservices_changed', 'attestation_changed', 'miner_changed', 'accounts_changed'] as const;
export type PushKind = (typeof PUSH_KINDS)[number];

export interface KeyPrincipal {
  account: string;
  keyId: string;
  scopes: string[];
  endUser: string | null;
  expiresAt: number | null;
}

/**
 * Access tokens to refuse although they verify: those of an API key (`id` = key id) revoked at
 * `at`, or of an account (`id` = account id) disabled at `at` (central's clock, epoch ms; an
 * account's tokens issued after `at` are not concerned, so re-enabling it works). The node keeps
 * an entry `forMs` from receipt: by then every token it could concern has expired.
 */
export interface TokenRevocation {
  id: string;
  at: number;
  forMs: number;
}

/** A price schedule in fiat micro-units (µUSD, see units.ts). */
export interface LinkPriceSchedule {
  perRequestMicros: number;
  perCpuSecondMicros: number;
  perMbMicros: number;
}

/** A DService's prices: the base schedule, and optionally another per tier (a tier not listed uses the base). */
export interface LinkPrice extends LinkPriceSchedule {
  tiers?: Partial<Record<Tier, LinkPriceSchedule>>;
}

export interface LinkDescriptor {
  name: string;
  version: string;
  digest: string;
  entry: string;
  developer: string;
  deterministic: boolean;
  resources: { cpus: number; memoryMb: number; diskMb: number; gpus: number };
  maxBodyBytes: number;
  concurrency: number;
  timeouts: { requestMs: number };
  /** The prices central approved with this version (µUSD); null or absent: none set, the node prices with its default. */
  price?: LinkPrice | null;
  /** Where the developer's share is paid: the address the developer's account set at central (null: none yet). */
  developerAddress?: string | null;
  /** The package archive uploaded for this version (`package` op fetches it); null or absent: none. */
  package?: { digest: string; sizeBytes: number } | null;
}

export interface NodeLinkStatus {
  health: 'up' | 'degraded' | 'down';
  draining: boolean;
  /** Per DService the node routes: miner slots, busy slots, queued work. */
  capacity: Record<string, { slots: number; busy: number; queued: number }>;
}

export type LinkFrame =
  | { t: 'hello'; v: number; from: 'central' | 'node'; id: string }
  | { t: 'req'; v: number; id: number; op: LinkOp; args: Record<string, unknown> }
  | { t: 'res'; v: number; id: number; ok: true; result: unknown }
  | { t: 'res'; v: number; id: number; ok: false; error: { code: string; message: string } }
  | { t: 'push'; v: number; kind: 'keys_revoked'; hashes: string[] }
  /** `sync`: the last frame of the whole set, sent when the link opens; false for one change. */
  | { t: 'push'; v: number; kind: 'tokens_revoked'; sync: boolean; keys: TokenRevocation[]; accounts: TokenRevocation[] }
  | { t: 'push'; v: number; kind: 'dservices_changed' }
  | { t: 'push'; v: number; kind: 'attestation_changed' }
  | { t: 'push'; v: number; kind: 'miner_changed'; id: string }
  | { t: 'push'; v: number; kind: 'accounts_changed' };

type Obj = Record<string, unknown>;
const bad = (why: string): CgnError => new CgnError('bad_frame', `bad link frame: ${why}`);
const isObj = (x: unknown): x is Obj => x !== null && typeof x === 'object' && !Array.isArray(x);
const HEX64 = /^[0-9a-f]{64}$/;

/** Parses and checks one frame; throws `CgnError('bad_frame')` naming what is wrong. */
export function decodeLinkFrame(data: string | Uint8Array): LinkFrame {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
  if (text.length > LINK_MAX_FRAME_BYTES) throw bad('too large');
  let f: unknown;
  try {
    f = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (!isObj(f)) throw bad('not an object');
  if (f['v'] !== LINK_PROTOCOL_VERSION) throw bad(`version must be ${LINK_PROTOCOL_VERSION}`);
  const id = f['id'];
  switch (f['t']) {
    case 'hello':
      if (f['from'] !== 'central' && f['from'] !== 'node') throw bad('hello.from must be central or node');
      if (typeof id !== 'string' || id.length === 0 || id.length > 128) throw bad('hello.id must be a string of 1-128 characters');
      return { t: 'hello', v: LINK_PROTOCOL_VERSION, from: f['from'], id };
    case 'req': {
      if (!Number.isSafeInteger(id) || (id as number) < 0) throw bad('req.id must be a non-negative integer');
      const op = f['op'];
      if (!(NODE_OPS as readonly unknown[]).includes(op) && !(CENTRAL_OPS as readonly unknown[]).includes(op)) throw bad(`unknown op ${String(op).slice(0, 40)}`);
      const args = f['args'] ?? {};
      if (!isObj(args)) throw bad('req.args must be an object');
      if (op === 'verify_key' && (typeof args['hash'] !== 'string' || !HEX64.test(args['hash']))) throw bad('verify_key.hash must be 64 hex characters');
      if (op === 'miner' && (typeof args['id'] !== 'string' || !HEX64.test(args['id']))) throw bad('miner.id must be 64 hex characters');
      if (op === 'package') {
        if (typeof args['digest'] !== 'string' || !HEX64.test(args['digest'])) throw bad('package.digest must be 64 hex characters');
        if (!Number.isSafeInteger(args['offset']) || (args['offset'] as number) < 0) throw bad('package.offset must be a non-negative integer');
      }
      return { t: 'req', v: LINK_PROTOCOL_VERSION, id: id as number, op: op as LinkOp, args };
    }
    case 'res': {
      if (!Number.isSafeInteger(id) || (id as number) < 0) throw bad('res.id must be a non-negative integer');
      if (f['ok'] === true) return { t: 'res', v: LINK_PROTOCOL_VERSION, id: id as number, ok: true, result: f['result'] ?? null };
      const e = f['error'];
      if (f['ok'] !== false || !isObj(e) || typeof e['code'] !== 'string' || typeof e['message'] !== 'string') throw bad('res needs ok:true with result, or ok:false with error {code, message}');
      return { t: 'res', v: LINK_PROTOCOL_VERSION, id: id as number, ok: false, error: { code: e['code'].slice(0, 64), message: e['message'].slice(0, 1000) } };
    }
    case 'push':
      if (f['kind'] === 'keys_revoked') {
        const h = f['hashes'];
        if (!Array.isArray(h) || h.length > 10_000 || !h.every((x) => typeof x === 'string' && HEX64.test(x))) throw bad('keys_revoked.hashes must be a list of 64-hex hashes');
        return { t: 'push', v: LINK_PROTOCOL_VERSION, kind: 'keys_revoked', hashes: h as string[] };
      }
      if (f['kind'] === 'tokens_revoked') {
        const keys = parseRevocations(f['keys'], 'keys');
        const accounts = parseRevocations(f['accounts'], 'accounts');
        if (keys.length + accounts.length > LINK_MAX_REVOCATIONS) throw bad(`tokens_revoked carries at most ${LINK_MAX_REVOCATIONS} entries`);
        if (typeof f['sync'] !== 'boolean') throw bad('tokens_revoked.sync must be a boolean');
        return { t: 'push', v: LINK_PROTOCOL_VERSION, kind: 'tokens_revoked', sync: f['sync'], keys, accounts };
      }
      if (f['kind'] === 'dservices_changed') return { t: 'push', v: LINK_PROTOCOL_VERSION, kind: 'dservices_changed' };
      if (f['kind'] === 'attestation_changed') return { t: 'push', v: LINK_PROTOCOL_VERSION, kind: 'attestation_changed' };
      if (f['kind'] === 'accounts_changed') return { t: 'push', v: LINK_PROTOCOL_VERSION, kind: 'accounts_changed' };
      if (f['kind'] === 'miner_changed') {
        if (typeof f['id'] !== 'string' || !HEX64.test(f['id'])) throw bad('miner_changed.id must be 64 hex characters');
        return { t: 'push', v: LINK_PROTOCOL_VERSION, kind: 'miner_changed', id: f['id'] };
      }
      throw bad(`unknown push kind ${String(f['kind']).slice(0, 40)}`);
    default:
      throw bad(`unknown frame type ${String(f['t']).slice(0, 40)}`);
  }
}

const REVOKED_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

function parseRevocations(x: unknown, what: string): TokenRevocation[] {
  if (!Array.isArray(x) || x.length > LINK_MAX_REVOCATIONS) throw bad(`tokens_revoked.${what} must be a list`);
  return x.map((e) => {
    if (!isObj(e) || typeof e['id'] !== 'string' || !REVOKED_ID.test(e['id'])) throw bad(`tokens_revoked.${what}[].id must be an id`);
    const at = e['at'];
    const forMs = e['forMs'];
    if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) throw bad(`tokens_revoked.${what}[].at must be a time`);
    if (typeof forMs !== 'number' || !Number.isInteger(forMs) || forMs < 0 || forMs > LINK_MAX_REVOCATION_MS) throw bad(`tokens_revoked.${what}[].forMs must be 0..${LINK_MAX_REVOCATION_MS}`);
    return { id: e['id'], at, forMs };
  });
}

type FrameInput<F> = F extends LinkFrame ? Omit<F, 'v'> : never;

export function encodeLinkFrame(f: FrameInput<LinkFrame>): string {
  return JSON.stringify({ ...f, v: LINK_PROTOCOL_VERSION });
}

/** Checks a `verify_key` answer. */
export function parseKeyPrincipal(x: unknown): KeyPrincipal | null {
  if (!isObj(x)) throw bad('verify_key result must be an object');
  const p = x['principal'];
  if (p === null) return null;
  if (!isObj(p) || typeof p['account'] !== 'string' || typeof p['keyId'] !== 'string' || !Array.isArray(p['scopes']) || !p['scopes'].every((s) => typeof s === 'string')) {
    throw bad('verify_key principal must have account, keyId and scopes');
  }
  const endUser = typeof p['endUser'] === 'string' ? p['endUser'] : null;
  const expiresAt = typeof p['expiresAt'] === 'number' ? p['expiresAt'] : null;
  return { account: p['account'], keyId: p['keyId'], scopes: p['scopes'] as string[], endUser, expiresAt };
}

/** What central grants a miner key: whether it may join, its tier, and its TPM attestation key (PEM). */
export interface MinerGrantAnswer {
  allowed: boolean;
  tier: 'open' | 'dedicated' | null;
  account: string | null;
  attestationKey: string | null;
}

/** Checks a `miner` answer. */
export function parseMinerGrant(x: unknown): MinerGrantAnswer {
  if (!isObj(x) || typeof x['allowed'] !== 'boolean') throw bad('miner result must have allowed');
  const tier = x['tier'] ?? null;
  if (tier !== null && tier !== 'open' && tier !== 'dedicated') throw bad('miner.tier must be open, dedicated or null');
  const ak = x['attestationKey'] ?? null;
  if (ak !== null && (typeof ak !== 'string' || ak.length > 8192)) throw bad('miner.attestationKey must be a PEM string or null');
  const account = typeof x['account'] === 'string' ? x['account'] : null;
  return { allowed: x['allowed'], tier: x['allowed'] ? (tier ?? 'open') : null, account, attestationKey: ak };
}

/** Checks an `attestation_policy` answer. */
export function parseAttestationPolicy(x: unknown): { runtimes: string[] } {
  if (!isObj(x) || !Array.isArray(x['runtimes']) || x['runtimes'].length > 10_000 || !x['runtimes'].every((d) => typeof d === 'string' && HEX64.test(d))) {
    throw bad('attestation_policy.runtimes must be a list of 64-hex digests');
  }
  return { runtimes: x['runtimes'] as string[] };
}

/** Checks a `status` answer. */
export function parseNodeLinkStatus(x: unknown): NodeLinkStatus {
  if (!isObj(x)) throw bad('status result must be an object');
  const health = x['health'];
  if (health !== 'up' && health !== 'degraded' && health !== 'down') throw bad('status.health must be up, degraded or down');
  const cap = x['capacity'] ?? {};
  if (!isObj(cap)) throw bad('status.capacity must be an object');
  const capacity: NodeLinkStatus['capacity'] = {};
  for (const [k, v] of Object.entries(cap)) {
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(k) || !isObj(v)) throw bad(`status.capacity.${k.slice(0, 64)} is malformed`);
    const n = (f: string) => {
      const y = v[f];
      if (typeof y !== 'number' || !Number.isInteger(y) || y < 0 || y > 1e9) throw bad(`status.capacity.${k}.${f} must be a non-negative integer`);
      return y;
    };
    capacity[k] = { slots: n('slots'), busy: n('busy'), queued: n('queued') };
  }
  return { health, draining: x['draining'] === true, capacity };
}
