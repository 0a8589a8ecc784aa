/**
 * OAuth2 client-credentials access tokens (RFC 6749 §4.4) as signed JWTs (RFC 9068 profile:
 * `typ: at+jwt`), EdDSA over Ed25519. The client id is an API key's id and the client secret is
 * the key itself, so an account manages one kind of credential; a key needs the `token` scope.
 *
 * The signing key lives in the store (so tokens survive a restart); `rotate` retires the current
 * key, which stays in the JWKS for `retiredKeyGraceMs` (longer than a token lives) so tokens
 * already issued keep verifying.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK, type JSONWebKeySet } from 'jose';
import type { Clock } from '../clock.js';
import type { CentralStore, SigningKeyRecord } from '../store/store.js';

export const TOKEN_TYPE = 'at+jwt';
export const DEFAULT_AUDIENCE = 'cgn';
export const DEFAULT_ISSUER = 'cgn-central';

export interface AccessTokenClaims {
  iss: string;
  aud: string;
  /** The client id (API key id). */
  sub: string;
  client_id: string;
  /** Account billed for the work. */
  acct: string;
  /** Space-separated scopes. */
  scope: string;
  iat: number;
  exp: number;
  jti: string;
}

export interface TokenIssuerOptions {
  issuer?: string;
  audience?: string;
  /** Token lifetime. Default 300 s. */
  ttlS?: number;
  /** How long a retired key stays published. Default 1 day. */
  retiredKeyGraceMs?: number;
}

type SignKey = Awaited<ReturnType<typeof importJWK>>;

export class TokenIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly ttlS: number;
  private readonly graceMs: number;
  private current: { kid: string; key: SignKey } | null = null;
  private published: JWK[] = [];

  constructor(private readonly store: CentralStore, private readonly clock: Clock, options: TokenIssuerOptions = {}) {
    this.issuer = options.issuer ?? DEFAULT_ISSUER;
    this.audience = options.audience ?? DEFAULT_AUDIENCE;
    this.ttlS = options.ttlS ?? 300;
    this.graceMs = options.retiredKeyGraceMs ?? 24 * 3600_000;
  }

  /** Loads the signing keys, making one if there is none. */
  async init(): Promise<void> {
    let keys = await this.store.listSigningKeys();
    if (!keys.some((k) => k.retiredAt === null)) {
      await this.store.addSigningKey(await newSigningKey(this.clock.now()));
      keys = await this.store.listSigningKeys();
    }
    await this.load(keys);
  }

  async rotate(): Promise<void> {
    const now = this.clock.now();
    await this.store.retireSigningKeys(now);
    await this.store.addSigningKey(await newSigningKey(now));
    await this.load(await this.store.listSigningKeys());
  }

  private async load(keys: SigningKeyRecord[]): Promise<void> {
    const now = this.clock.now();
    const cur = keys.filter((k) => k.retiredAt === null).at(-1);
    if (cur === undefined) throw new Error('no current signing key');
    this.current = { kid: cur.kid, key: await importJWK(JSON.parse(cur.privateJwk) as JWK, 'EdDSA') };
    this.published = keys
      .filter((k) => k.retiredAt === null || now - k.retiredAt < this.graceMs)
      .map((k) => ({ ...(JSON.parse(k.publicJwk) as JWK), kid: k.kid, alg: 'EdDSA', use: 'sig' }));
  }

  jwks(): JSONWebKeySet {
    return { keys: this.published.map((k) => ({ ...k })) };
  }

  /** `notAfter` (epoch ms): the token expires then at the latest (its key's own expiry). */
  async issue(p: { clientId: string; account: string; scopes: readonly string[]; notAfter?: number | null }): Promise<{ token: string; expiresIn: number; claims: AccessTokenClaims }> {
    if (this.current === null) throw new Error('TokenIssuer.init() was not called');
    const iat = Math.floor(this.clock.now() / 1000);
    const exp = Math.max(iat + 1, Math.min(iat + this.ttlS, p.notAfter == null ? Infinity : Math.floor(p.notAfter / 1000)));
    const claims: AccessTokenClaims = {
      iss: this.issuer, aud: this.audience, sub: p.clientId, client_id: p.clientId, acct: p.account,
      scope: p.scopes.join(' '), iat, exp, jti: randomBytes(12).toString('base64url'),
    };
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.current.kid, typ: TOKEN_TYPE })
      .sign(this.current.key);
    return { token, expiresIn: exp - iat, claims };
  }
}

async function newSigningKey(now: number): Promise<SigningKeyRecord> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const kid = `k_${randomBytes(9).toString('base64url')}`;
  return {
    kid, alg: 'EdDSA', createdAt: now, retiredAt: null,
    privateJwk: JSON.stringify(await exportJWK(privateKey)), publicJwk: JSON.stringify(await exportJWK(publicKey)),
  };
}

export interface TokenVerifierOptions {
  /** Where the JWKS comes from: a URL (`https://central/.well-known/jwks.json`) or a function. */
  jwks: string | (() => Promise<JSONWebKeySet>);
  issuer?: string;
  audience?: string;
  clock?: Clock;
  /** Tolerated clock skew, s. Default 30. */
  clockToleranceS?: number;
  /** A token with an unknown `kid` refetches the JWKS at most this often. Default 60 s. */
  refetchMinIntervalMs?: number;
}

export interface VerifiedToken {
  account: string;
  keyId: string;
  scopes: string[];
  expiresAt: number;
}

/**
 * A verifier for access tokens that works offline: it fetches the JWKS once (and again only when a
 * token names a key it does not know, at most once a minute), then checks signature, algorithm
 * (EdDSA only), type, issuer, audience and expiry locally. Throws on anything wrong.
 */
export function createTokenVerifier(options: TokenVerifierOptions): (token: string) => Promise<VerifiedToken> {
  const clock = options.clock ?? { now: () => Date.now() };
  const minGap = options.refetchMinIntervalMs ?? 60_000;
  const fetchJwks = typeof options.jwks === 'string'
    ? async (): Promise<JSONWebKeySet> => {
        const res = await fetch(options.jwks as string, { signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new Error(`JWKS fetch ${options.jwks}: HTTP ${res.status}`);
        return (await res.json()) as JSONWebKeySet;
      }
    : options.jwks;
  let set: { jwks: JSONWebKeySet; local: ReturnType<typeof createLocalJWKSet>; at: number } | null = null;
  const refresh = async (): Promise<void> => {
    const jwks = await fetchJwks();
    set = { jwks, local: createLocalJWKSet(jwks), at: clock.now() };
  };
  const knows = (kid: string | undefined): boolean => set !== null && set.jwks.keys.some((k) => k.kid === kid);
  return async (token: string): Promise<VerifiedToken> => {
    const kid = headerKid(token);
    if (set === null || (!knows(kid) && clock.now() - set.at >= minGap)) await refresh();
    const s = set as unknown as { local: ReturnType<typeof createLocalJWKSet> };
    const { payload } = await jwtVerify(token, s.local, {
      issuer: options.issuer ?? DEFAULT_ISSUER,
      audience: options.audience ?? DEFAULT_AUDIENCE,
      algorithms: ['EdDSA'],
      typ: TOKEN_TYPE,
      currentDate: new Date(clock.now()),
      clockTolerance: options.clockToleranceS ?? 30,
      requiredClaims: ['exp', 'iat', 'sub', 'acct'],
    });
    if (typeof payload['acct'] !== 'string' || typeof payload.sub !== 'string') throw new Error('token lacks acct or sub');
    const scope = typeof payload['scope'] === 'string' ? payload['scope'] : '';
    return { account: payload['acct'], keyId: payload.sub, scopes: scope.split(' ').filter(Boolean), expiresAt: (payload.exp ?? 0) * 1000 };
  };
}

function headerKid(token: string): string | undefined {
  try {
    const h = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: unknown };
    return typeof h.kid === 'string' ? h.kid : undefined;
  } catch {
    return undefined;
  }
}

export function looksLikeJwt(s: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(s) && s.length < 4096;
}
