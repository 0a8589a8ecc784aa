/**
 * Offline verification of central's OAuth2 access tokens (JWT, RFC 9068 profile) at the node,
 * with node:crypto only. The JWKS comes from central (over the link, or any function); after
 * that every check is local: EdDSA (Ed25519) signature by a published key, `typ` at+jwt,
 * issuer, audience, expiry and not-before with a small clock tolerance. Only EdDSA is accepted,
 * so `alg: none` and algorithm confusion are impossible.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';

export interface Jwk {
  kty?: string;
  crv?: string;
  x?: string;
  kid?: string;
  alg?: string;
  use?: string;
}

export interface TokenPrincipal {
  account: string;
  keyId: string;
  scopes: string[];
  endUser: null;
  /** Epoch ms. */
  expiresAt: number;
  /** Epoch ms (`iat`; 0 when the token does not say, so it counts as issued before any revocation). */
  issuedAt: number;
}

export interface NodeTokenVerifierOptions {
  getJwks: () => Promise<{ keys: Jwk[] }>;
  issuer?: string;
  audience?: string;
  clock?: { now(): number };
  clockToleranceS?: number;
  /** A token naming an unknown key refetches the JWKS at most this often, ms. Default 60 000. */
  refetchMinIntervalMs?: number;
}

export type TokenCheck = { ok: true; principal: TokenPrincipal } | { ok: false; reason: string; unknownKey?: boolean };

const b64json = (s: string): Record<string, unknown> | null => {
  try {
    const v: unknown = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
};

export function looksLikeJwt(s: string): boolean {
  return s.length < 4096 && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(s);
}

export class NodeTokenVerifier {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = -Infinity;
  private fetching: Promise<void> | null = null;
  private readonly clock: { now(): number };

  constructor(private readonly options: NodeTokenVerifierOptions) {
    this.clock = options.clock ?? { now: () => Date.now() };
  }

  get loaded(): boolean {
    return this.fetchedAt > -Infinity;
  }

  /** Fetches the JWKS now. */
  refresh(): Promise<void> {
    return (this.fetching ??= (async () => {
      try {
        const jwks = await this.options.getJwks();
        const next = new Map<string, KeyObject>();
        for (const k of jwks.keys ?? []) {
          if (k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || typeof k.kid !== 'string') continue;
          if (k.alg !== undefined && k.alg !== 'EdDSA') continue;
          next.set(k.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x }, format: 'jwk' }));
        }
        this.keys = next;
        this.fetchedAt = this.clock.now();
      } finally {
        this.fetching = null;
      }
    })());
  }

  /** Checks a token with the keys at hand (no I/O). */
  check(token: string): TokenCheck {
    const parts = token.split('.');
    if (parts.length !== 3 || !looksLikeJwt(token)) return { ok: false, reason: 'not a JWT' };
    const [h, p, s] = parts as [string, string, string];
    const header = b64json(h);
    const payload = b64json(p);
    if (header === null || payload === null) return { ok: false, reason: 'malformed JWT' };
    if (header['alg'] !== 'EdDSA') return { ok: false, reason: 'algorithm must be EdDSA' };
    const typ = String(header['typ'] ?? '').toLowerCase();
    if (typ !== 'at+jwt' && typ !== 'application/at+jwt') return { ok: false, reason: 'not an access token (typ)' };
    if (header['crit'] !== undefined) return { ok: false, reason: 'unsupported crit header' };
    const kid = header['kid'];
    const key = typeof kid === 'string' ? this.keys.get(kid) : undefined;
    if (key === undefined) return { ok: false, reason: 'unknown signing key', unknownKey: true };
    const sig = Buffer.from(s, 'base64url');
    if (sig.length !== 64 || !cryptoVerify(null, Buffer.from(`${h}.${p}`), key, sig)) return { ok: false, reason: 'bad signature' };
    const now = this.clock.now() / 1000;
    const tol = this.options.clockToleranceS ?? 30;
    const iss = this.options.issuer ?? 'cgn-central';
    const aud = this.options.audience ?? 'cgn';
    if (payload['iss'] !== iss) return { ok: false, reason: 'wrong issuer' };
    const a = payload['aud'];
    if (!(a === aud || (Array.isArray(a) && a.includes(aud)))) return { ok: false, reason: 'wrong audience' };
    const exp = payload['exp'];
    if (typeof exp !== 'number' || exp + tol <= now) return { ok: false, reason: 'expired' };
    const nbf = payload['nbf'] ?? payload['iat'];
    if (typeof nbf === 'number' && nbf - tol > now) return { ok: false, reason: 'not yet valid' };
    if (typeof payload['sub'] !== 'string' || typeof payload['acct'] !== 'string') return { ok: false, reason: 'missing sub or acct' };
    const scope = typeof payload['scope'] === 'string' ? payload['scope'] : '';
    const iat = typeof payload['iat'] === 'number' && Number.isFinite(payload['iat']) ? payload['iat'] * 1000 : 0;
    return { ok: true, principal: { account: payload['acct'], keyId: payload['sub'], scopes: scope.split(' ').filter(Boolean), endUser: null, expiresAt: exp * 1000, issuedAt: iat } };
  }

  /** Synchronous: the principal, or null (invalid, or keys not loaded yet). */
  verifySync(token: string): TokenPrincipal | null {
    const r = this.check(token);
    return r.ok ? r.principal : null;
  }

  /** Loads the JWKS when needed (first use; an unknown key id, at most once a minute). */
  async verify(token: string): Promise<TokenPrincipal | null> {
    let r = this.check(token);
    if (!r.ok && r.unknownKey === true && this.clock.now() - this.fetchedAt >= (this.options.refetchMinIntervalMs ?? 60_000)) {
      try {
        await this.refresh();
      } catch {
        return null;
      }
      r = this.check(token);
    }
    return r.ok ? r.principal : null;
  }
}
