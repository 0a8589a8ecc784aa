import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, generateKeyPair, decodeProtectedHeader, decodeJwt } from 'jose';
import { startTestCentral, call, type TestCentral, type TestClient } from '../testing.js';
import { createTokenVerifier } from '../auth/tokens.js';
import { totpCode } from '../auth/totp.js';

describe('central HTTP API', () => {
  let c: TestCentral;
  let owner: TestClient;
  let acme: string;
  let key: { id: string; key: string };

  beforeAll(async () => {
    c = await startTestCentral();
    const acc = await c.admin.call('POST', '/v1/accounts', {
      name: 'acme', kinds: ['enterprise', 'developer'], allowedRegions: ['eu-central', 'local'], owner: { login: 'acme-owner', password: 'Acme-Own3r-Pw!' },
    });
    acme = acc.body.account.id;
    owner = await c.login('acme-owner', 'Acme-Own3r-Pw!');
    const k = await owner.call('POST', `/v1/accounts/${acme}/keys`, { name: 'dapp' });
    key = { id: k.body.id, key: k.body.key };
    await owner.call('POST', '/v1/dservices', { name: 'echo', version: '1.0.0', digest: `sha256:${'b'.repeat(64)}` });
    await c.admin.call('PUT', '/v1/dservices/echo/1.0.0/approval', { state: 'approved' });
  });
  afterAll(async () => c?.stop());

  describe('input checking', () => {
    it('bad input gets a 400 problem that says what is wrong', async () => {
      const r = await owner.call('POST', `/v1/accounts/${acme}/keys`, { name: 'x', scopes: ['root'] });
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.body.code).toBe('bad_request');
      expect(r.body.detail).toMatch(/body\.scopes\.0 must match pattern/);
      const extra = await owner.call('POST', `/v1/accounts/${acme}/keys`, { name: 'x', admin: true });
      expect(extra.status).toBe(400);
      expect(extra.body.detail).toContain('(admin)');
      const notJson = await owner.call('POST', `/v1/accounts/${acme}/keys`, '{"name":', { 'content-type': 'application/json' });
      expect(notJson.status).toBe(400);
    });

    it('a weak password is refused with the reasons', async () => {
      const r = await owner.call('POST', `/v1/accounts/${acme}/users`, { login: 'weakling', password: 'password' });
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('weak_password');
      expect(r.body.details.problems.join()).toMatch(/upper-case.*special.*too common/);
    });

    it('an unauthenticated 50 MiB upload gets its 401 at once and the connection closes: the body is not read', async () => {
      const { connect } = await import('node:net');
      const u = new URL(c.url);
      for (const path of [`/v1/accounts/${acme}/keys`, '/v1/nowhere']) {
        const s = connect(Number(u.port), u.hostname);
        let got = '';
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.on('error', () => {});
        const closed = new Promise<void>((r) => s.once('close', () => r()));
        s.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${50 * 1024 * 1024}\r\n\r\n`);
        s.write(Buffer.alloc(64 * 1024, 0x20));
        await closed;
        expect(got).toMatch(path === '/v1/nowhere' ? /^HTTP\/1.1 (404|413)/ : /^HTTP\/1.1 401/);
        expect(got.toLowerCase()).toContain('connection: close');
      }
    });

    it('bodies are bounded: 413 past the limit (login takes at most 4 KiB)', async () => {
      const r = await call(c.url, null, 'POST', '/v1/auth/login', { login: 'x'.repeat(10), password: 'y'.repeat(5000) });
      expect(r.status).toBe(413);
      expect(r.body.code).toBe('payload_too_large');
      const big = await owner.call('POST', '/v1/dservices', { name: 'big', version: '1', digest: 'x'.repeat(70 * 1024) });
      expect(big.status).toBe(413);
    });

    it('unknown routes are 404 problems', async () => {
      const r = await call(c.url, null, 'GET', '/nope');
      expect(r.status).toBe(404);
      expect(r.body.detail).toContain('/openapi.json');
    });

    it('serves an OpenAPI 3.1 document with the schemas', async () => {
      const r = await call(c.url, null, 'GET', '/openapi.json');
      expect(r.body.openapi).toBe('3.1.0');
      expect(r.body.paths['/v1/accounts'].post.requestBody.content['application/json'].schema.required).toContain('owner');
      expect(r.body.paths['/v1/audit'].get['x-cgn-roles']).toEqual(['administrator', 'operator']);
    });
  });

  describe('credentials and scopes', () => {
    it('API keys cannot use user endpoints, only principal ones within their scopes', async () => {
      expect((await call(c.url, key.key, 'GET', '/v1/me')).status).toBe(403);
      const sel = await call(c.url, key.key, 'POST', '/v1/select', { dservices: ['echo'], ip: '192.0.2.10' });
      expect(sel.status).toBe(200);
      expect(sel.body.locatedBy).toBe('geoip:eu-central');
      const narrow = await owner.call('POST', `/v1/accounts/${acme}/keys`, { name: 'work-only', scopes: ['work:echo'] });
      expect(narrow.body.key).toMatch(/^cgn_[A-Za-z0-9_-]{32}$/);
      expect((await call(c.url, narrow.body.key, 'POST', '/v1/select', { dservices: ['echo'] })).status).toBe(403);
      expect((await call(c.url, 'cgn_' + 'A'.repeat(32), 'POST', '/v1/select', { dservices: ['echo'] })).status).toBe(401);
    });

    it('keys are shown once: listing never returns them or their hashes; last use is recorded', async () => {
      const list = await owner.call('GET', `/v1/accounts/${acme}/keys`);
      const mine = list.body.keys.find((k: { id: string }) => k.id === key.id);
      expect(mine.prefix).toBe(key.key.slice(0, 10));
      expect(JSON.stringify(list.body)).not.toContain(key.key);
      expect(JSON.stringify(list.body)).not.toMatch(/[0-9a-f]{64}/);
      expect(mine.lastUsedAt).toBe(c.clock.now());
    });

    it('a user of another account cannot touch acme\'s keys', async () => {
      await c.admin.call('POST', '/v1/accounts', { name: 'other', kinds: ['enterprise'], owner: { login: 'other-owner', password: 'Other-Own3r-Pw!' } });
      const other = await c.login('other-owner', 'Other-Own3r-Pw!');
      expect((await other.call('GET', `/v1/accounts/${acme}/keys`)).status).toBe(403);
      expect((await other.call('DELETE', `/v1/accounts/${acme}/keys/${key.id}`)).status).toBe(403);
      expect((await other.call('GET', `/v1/accounts/${acme}`)).status).toBe(403);
      expect((await other.call('POST', '/v1/dservices', { name: 'x', version: '1', digest: `sha256:${'c'.repeat(64)}` })).status).toBe(403);
    });

    it('a member only sees and revokes their own keys', async () => {
      await owner.call('POST', `/v1/accounts/${acme}/users`, { login: 'acme-dev', password: 'Acme-D3v-Passw!' });
      const dev = await c.login('acme-dev', 'Acme-D3v-Passw!');
      const own = await dev.call('POST', `/v1/accounts/${acme}/keys`, { name: 'mine' });
      expect(own.status).toBe(201);
      const list = await dev.call('GET', `/v1/accounts/${acme}/keys`);
      expect(list.body.keys.map((k: { id: string }) => k.id)).toEqual([own.body.id]);
      expect((await dev.call('DELETE', `/v1/accounts/${acme}/keys/${key.id}`)).status).toBe(403);
      expect((await dev.call('DELETE', `/v1/accounts/${acme}/keys/${own.body.id}`)).status).toBe(200);
      expect((await call(c.url, own.body.key, 'POST', '/v1/select', { dservices: ['echo'] })).status).toBe(401);
    });
  });

  describe('OAuth2 client credentials and JWT verification', () => {
    const form = (o: Record<string, string>) => new URLSearchParams(o).toString();

    it('issues a short-lived EdDSA JWT that verifies offline against the JWKS', async () => {
      const r = await call(c.url, null, 'POST', '/oauth/token', form({ grant_type: 'client_credentials', client_id: key.id, client_secret: key.key }), {
        'content-type': 'application/x-www-form-urlencoded',
      });
      expect(r.status).toBe(200);
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'work select' });
      const token = r.body.access_token as string;
      expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
      const verify = createTokenVerifier({ jwks: `${c.url}/.well-known/jwks.json`, clock: c.clock });
      expect(await verify(token)).toMatchObject({ account: acme, keyId: key.id, scopes: ['work', 'select'] });
      // and central itself takes it where principals are allowed
      expect((await call(c.url, token, 'POST', '/v1/select', { dservices: ['echo'] })).status).toBe(200);
    });

    it('HTTP Basic client authentication works; wrong secrets and grants get OAuth errors', async () => {
      const basic = Buffer.from(`${key.id}:${key.key}`).toString('base64');
      const ok = await call(c.url, null, 'POST', '/oauth/token', form({ grant_type: 'client_credentials', scope: 'select' }), {
        'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}`,
      });
      expect(ok.status).toBe(200);
      expect(ok.body.scope).toBe('select');
      const wrong = await call(c.url, null, 'POST', '/oauth/token', { grant_type: 'client_credentials', client_id: key.id, client_secret: 'cgn_' + 'B'.repeat(32) });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error).toBe('invalid_client');
      const grant = await call(c.url, null, 'POST', '/oauth/token', { grant_type: 'password', client_id: key.id, client_secret: key.key });
      expect(grant.body.error).toBe('unsupported_grant_type');
      const scope = await call(c.url, null, 'POST', '/oauth/token', { grant_type: 'client_credentials', client_id: key.id, client_secret: key.key, scope: 'admin' });
      expect(scope.body.error).toBe('invalid_scope');
    });

    it('refuses forged, tampered, unsigned and expired tokens', async () => {
      const r = await call(c.url, null, 'POST', '/oauth/token', { grant_type: 'client_credentials', client_id: key.id, client_secret: key.key });
      const token = r.body.access_token as string;
      const verify = createTokenVerifier({ jwks: `${c.url}/.well-known/jwks.json`, clock: c.clock });
      const claims = decodeJwt(token);
      const header = decodeProtectedHeader(token);

      // forged: same kid and claims, signed with another key
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const forged = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'EdDSA', kid: header.kid!, typ: 'at+jwt' }).sign(privateKey);
      await expect(verify(forged)).rejects.toThrow();
      // tampered: another account in the payload, original signature
      const [h, , s] = token.split('.');
      const body = Buffer.from(JSON.stringify({ ...claims, acct: 'acc_someone_else' })).toString('base64url');
      await expect(verify(`${h}.${body}.${s}`)).rejects.toThrow();
      // unsigned
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid: header.kid })).toString('base64url')}.${token.split('.')[1]}.`;
      await expect(verify(none)).rejects.toThrow();
      for (const bad of [forged, `${h}.${body}.${s}`]) expect((await call(c.url, bad, 'POST', '/v1/select', { dservices: ['echo'] })).status).toBe(401);

      // expired: 300 s lifetime + 30 s tolerance
      c.clock.advance(331_000);
      await expect(verify(token)).rejects.toThrow(/exp/);
      expect((await call(c.url, token, 'POST', '/v1/select', { dservices: ['echo'] })).status).toBe(401);
    });

    it('a key without the token scope cannot get tokens', async () => {
      const k = await owner.call('POST', `/v1/accounts/${acme}/keys`, { name: 'no-token', scopes: ['work'] });
      const r = await call(c.url, null, 'POST', '/oauth/token', { grant_type: 'client_credentials', client_id: k.body.id, client_secret: k.body.key });
      expect(r.status).toBe(401);
    });
  });

  describe('TOTP over HTTP', () => {
    it('enrols with a provisioning URI and then requires the code at login', async () => {
      await owner.call('POST', `/v1/accounts/${acme}/users`, { login: 'acme-mfa', password: 'Second-Fact0r!' });
      const u = await c.login('acme-mfa', 'Second-Fact0r!');
      const begin = await u.call('POST', '/v1/me/totp');
      expect(begin.status).toBe(200);
      expect(begin.body.uri).toMatch(/^otpauth:\/\/totp\//);
      const confirm = await u.call('POST', '/v1/me/totp/confirm', { code: totpCode(begin.body.secret, c.clock.now()) });
      expect(confirm.status).toBe(200);
      expect(confirm.body.recoveryCodes).toHaveLength(10);
      const noCode = await call(c.url, null, 'POST', '/v1/auth/login', { login: 'acme-mfa', password: 'Second-Fact0r!' });
      expect(noCode.status).toBe(401);
      expect(noCode.body.code).toBe('mfa_required');
      c.clock.advance(30_000);
      const code = totpCode(begin.body.secret, c.clock.now());
      expect((await call(c.url, null, 'POST', '/v1/auth/login', { login: 'acme-mfa', password: 'Second-Fact0r!', totp: code })).status).toBe(200);
      expect((await call(c.url, null, 'POST', '/v1/auth/login', { login: 'acme-mfa', password: 'Second-Fact0r!', totp: code })).status).toBe(401);
      expect((await u.call('GET', '/v1/me')).body.totp).toBe('on');
    });
  });

  describe('lockout over HTTP', () => {
    it('429 with Retry-After while locked', async () => {
      await owner.call('POST', `/v1/accounts/${acme}/users`, { login: 'acme-typo', password: 'Fat-Fingers9!' });
      for (let i = 0; i < 5; i++) expect((await call(c.url, null, 'POST', '/v1/auth/login', { login: 'acme-typo', password: 'Wrong-Pass-1!' })).status).toBe(401);
      const locked = await call(c.url, null, 'POST', '/v1/auth/login', { login: 'acme-typo', password: 'Fat-Fingers9!' });
      expect(locked.status).toBe(429);
      expect(locked.body.code).toBe('locked');
      expect(locked.headers.get('retry-after')).toBe('60');
      c.clock.advance(60_000);
      expect((await call(c.url, null, 'POST', '/v1/auth/login', { login: 'acme-typo', password: 'Fat-Fingers9!' })).status).toBe(200);
    });
  });

  describe('audit log', () => {
    it('records security events that operators can query', async () => {
      const sys = (await c.admin.call('GET', '/v1/me')).body.account.id;
      await c.admin.call('POST', `/v1/accounts/${sys}/users`, { login: 'ops', password: 'Night-Shift7!', role: 'operator' });
      const ops = await c.login('ops', 'Night-Shift7!');
      const r = await ops.call('GET', '/v1/audit?limit=1000');
      expect(r.status).toBe(200);
      const types = new Set(r.body.events.map((e: { type: string }) => e.type));
      for (const t of ['login_ok', 'login_failed', 'lockout', 'login_locked', 'key_created', 'key_revoked', 'user_created', 'account_created', 'dservice_registered', 'dservice_approved', 'token_issued', 'token_refused', 'totp_enabled', 'access_denied']) {
        expect(types, t).toContain(t);
      }
      const only = await ops.call('GET', `/v1/audit?type=key_revoked&accountId=${acme}`);
      expect(only.body.events.every((e: { type: string; accountId: string }) => e.type === 'key_revoked' && e.accountId === acme)).toBe(true);
      expect(JSON.stringify(r.body)).not.toContain(key.key);
    });

    it('records role changes', async () => {
      const sys = (await c.admin.call('GET', '/v1/me')).body.account.id;
      const u = await c.admin.call('POST', `/v1/accounts/${sys}/users`, { login: 'mon', password: 'Dash-Board7!', role: 'monitor' });
      expect((await c.admin.call('PUT', `/v1/users/${u.body.id}/role`, { role: 'user' })).status).toBe(400); // staff account: staff roles only
      expect((await c.admin.call('PUT', `/v1/users/${u.body.id}/role`, { role: 'operator' })).status).toBe(200);
      const r = await c.admin.call('GET', '/v1/audit?type=role_changed');
      expect(r.body.events[0]).toMatchObject({ subject: u.body.id, details: { from: 'monitor', to: 'operator' } });
    });
  });
});

describe('rate limits', () => {
  let c: TestCentral;
  beforeAll(async () => {
    c = await startTestCentral({
      http: { rateLimits: { perIp: { burst: 1000, perSecond: 1000 }, perPrincipal: { burst: 3, perSecond: 1 }, auth: { burst: 1000, perSecond: 1000 } } },
    });
  });
  afterAll(async () => c?.stop());

  it('per principal: 429 with Retry-After, refills with time', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await c.admin.call('GET', '/v1/status')).status);
    expect(codes).toEqual([200, 200, 200, 429]);
    const r = await c.admin.call('GET', '/v1/status');
    expect(r.headers.get('retry-after')).toBe('1');
    expect(r.body.code).toBe('rate_limited');
    c.clock.advance(1000);
    expect((await c.admin.call('GET', '/v1/status')).status).toBe(200);
  });
});

describe('rate limits per IP', () => {
  let c: TestCentral;
  beforeAll(async () => {
    c = await startTestCentral({ http: { rateLimits: { perIp: { burst: 1000, perSecond: 1000 }, perPrincipal: { burst: 1000, perSecond: 1000 }, auth: { burst: 3, perSecond: 0.1 } } } });
  });
  afterAll(async () => c?.stop());

  it('login guessing from one address is slowed down before any account locks', async () => {
    // (startTestCentral's own admin login took one token of the burst of 3)
    const body = { login: 'someone', password: 'Whatever-1!' };
    expect((await call(c.url, null, 'POST', '/v1/auth/login', body)).status).toBe(401);
    expect((await call(c.url, null, 'POST', '/v1/auth/login', body)).status).toBe(401);
    const r = await call(c.url, null, 'POST', '/v1/auth/login', body);
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('10');
  });
});
