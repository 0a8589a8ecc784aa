/**
 * Central <-> node over the real mutual-TLS WebSocket link, with the node-side module from
 * packages/node/src/central: key verification with its cache, revocation within the TTL,
 * descriptors, JWKS and offline tokens, refusal of anything that is not central, and central
 * restarting while the node keeps serving keys it knows. Clocks are injected; the tests wait on
 * events, never on sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { generateKeyPair, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { ManualClock } from '../clock.js';
import { SqliteCentralStore } from '../store/sqlite.js';
import { startTestCentral, call, type TestCentral } from '../testing.js';
import { ensureDevPki, ensureNodePki, issueCert } from '../pki.js';
import { CentralLinkServer, CentralKeyVerifier, NodeTokenVerifier, fetchApprovedDescriptors, linkStatusFromSnapshot, type Jwk } from '../../../node/src/central/index.js';

const once = <T extends unknown[]>(em: { once(ev: string, fn: (...a: T) => void): unknown }, ev: string) =>
  new Promise<T>((resolve) => em.once(ev, (...a: T) => resolve(a)));

describe('central <-> node link (mTLS)', () => {
  let dir: string;
  let pki: ReturnType<typeof ensureDevPki>;
  let link: CentralLinkServer;
  let linkUrl: string;
  let central: TestCentral;
  let acme: string;
  let owner: Awaited<ReturnType<TestCentral['login']>>;
  const dbPath = () => join(dir, 'central.sqlite');
  const linkOptions = () => ({ tls: pki.central && { key: pki.central.key, cert: pki.central.cert, ca: pki.ca }, statusIntervalMs: 0, backoffMinMs: 10, backoffMaxMs: 100 });
  const newKey = async (name: string) => {
    const r = await owner.call('POST', `/v1/accounts/${acme}/keys`, { name });
    expect(r.status).toBe(201);
    return { id: r.body.id as string, key: r.body.key as string };
  };

  const restartCentral = async () => {
    const up = once(link, 'connected');
    central = await startTestCentral({ store: new SqliteCentralStore({ path: dbPath() }), link: linkOptions(), clock: central.clock });
    await up;
    owner = await central.login('acme-owner', 'Acme-Own3r-Pw!');
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cgn-link-'));
    pki = ensureDevPki(join(dir, 'pki'), ['node-1']);
    const n = pki.nodes['node-1']!;
    link = new CentralLinkServer({
      nodeId: 'node-1', tls: { key: n.key, cert: n.cert, ca: n.ca }, port: 0,
      status: () => linkStatusFromSnapshot(
        { miners: [{ dservices: ['echo'], slots: 4, inUse: 1, draining: false }], queues: [{ dservice: 'echo', depth: 0 }] },
        ['echo'],
      ),
    });
    linkUrl = (await link.start()).url;
    central = await startTestCentral({ store: new SqliteCentralStore({ path: dbPath() }), link: linkOptions() });
    const acc = await central.admin.call('POST', '/v1/accounts', { name: 'acme', kinds: ['enterprise', 'developer'], owner: { login: 'acme-owner', password: 'Acme-Own3r-Pw!' } });
    acme = acc.body.account.id;
    owner = await central.login('acme-owner', 'Acme-Own3r-Pw!');
    const sys = (await central.admin.call('GET', '/v1/me')).body.account.id;
    const up = Promise.all([once(link, 'connected'), central.links!.waitOpen('node-1')]);
    const r = await central.admin.call('POST', '/v1/nodes', {
      id: 'node-1', operatorAccount: sys, region: 'local', lat: 52.52, lon: 13.405,
      urls: { work: 'http://127.0.0.1:8080/v1/d/', miner: 'ws://127.0.0.1:8081', status: 'http://127.0.0.1:8080/v1/status', central: linkUrl },
    });
    expect(r.status).toBe(201);
    await up;
  });

  afterAll(async () => {
    await central?.stop();
    await link?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pki: certificates come from openssl, chain to the CA and carry the link names', () => {
    expect(pki.central.cert).toContain('BEGIN CERTIFICATE');
    expect(readFileSync(join(dir, 'pki', 'ca.key')).length).toBeGreaterThan(0);
    // reused, not reissued, on a second call
    expect(ensureNodePki(join(dir, 'pki'), 'node-1').cert).toBe(pki.nodes['node-1']!.cert);
  });

  it('central learns the node\'s health and capacity over the link', async () => {
    await central.links!.pollStatus();
    const nodes = (await central.admin.call('GET', '/v1/nodes')).body.nodes;
    expect(nodes[0]).toMatchObject({ id: 'node-1', health: 'up', capacity: { echo: { slots: 4, busy: 1, queued: 0 } } });
    const st = (await central.admin.call('GET', '/v1/status')).body;
    expect(st.links[0]).toMatchObject({ nodeId: 'node-1', state: 'open' });
  });

  it('verifies keys through central and caches them; unknown keys are refused', async () => {
    const k = await newKey('dapp-1');
    const clock = new ManualClock();
    const v = new CentralKeyVerifier(link, { clock, ttlMs: 1000 });
    expect(v.verify(k.key)).toBeNull(); // cold cache: sync miss
    expect(await v.lookup(k.key)).toMatchObject({ from: 'central', principal: { account: acme, keyId: k.id, scopes: ['work', 'select', 'token'] } });
    expect(v.verify(k.key)).toMatchObject({ account: acme, keyId: k.id }); // now a sync hit
    expect(await v.lookup('cgn_' + 'Z'.repeat(32))).toEqual({ principal: null, from: 'central' });
    expect(await v.lookup('not-a-key')).toEqual({ principal: null, from: 'invalid' });
    // concurrent lookups of one key make one request
    const before = v.counters.centralLookups;
    const k2 = await newKey('dapp-1b');
    await Promise.all([v.verifyAsync(k2.key), v.verifyAsync(k2.key), v.verifyAsync(k2.key)]);
    expect(v.counters.centralLookups - before).toBe(1);
    v.close();
  });

  it('a revoked key stops working at once when central pushes the revocation', async () => {
    const k = await newKey('dapp-2');
    const v = new CentralKeyVerifier(link, { clock: new ManualClock(), ttlMs: 60_000 });
    expect(await v.verifyAsync(k.key)).not.toBeNull();
    const pushed = once(link, 'push');
    expect((await owner.call('DELETE', `/v1/accounts/${acme}/keys/${k.id}`)).status).toBe(200);
    await pushed;
    expect(v.verify(k.key)).toBeNull();
    expect(await v.lookup(k.key)).toEqual({ principal: null, from: 'central' });
    v.close();
  });

  it('without the push, a revoked key still stops working within the cache TTL', async () => {
    const k = await newKey('dapp-3');
    const clock = new ManualClock();
    const v = new CentralKeyVerifier(link, { clock, ttlMs: 2000, acceptPushes: false });
    expect(await v.verifyAsync(k.key)).not.toBeNull();
    const pushed = once(link, 'push');
    await owner.call('DELETE', `/v1/accounts/${acme}/keys/${k.id}`);
    await pushed; // the push arrived, and this verifier ignored it
    clock.advance(1999);
    expect(v.verify(k.key)).not.toBeNull(); // still cached: inside the TTL
    clock.advance(1);
    expect(v.verify(k.key)).toBeNull(); // the TTL is over
    expect(await v.lookup(k.key)).toEqual({ principal: null, from: 'central' });
    v.close();
  });

  it('serves approved descriptors only', async () => {
    await owner.call('POST', '/v1/dservices', { name: 'echo', version: '1.0.0', digest: `sha256:${'e'.repeat(64)}`, price: { perRequestMicros: 5 } });
    await owner.call('POST', '/v1/dservices', { name: 'echo', version: '1.1.0', digest: `sha256:${'f'.repeat(64)}` });
    expect(await fetchApprovedDescriptors(link)).toEqual([]);
    const pushed = once(link, 'push');
    await central.admin.call('PUT', '/v1/dservices/echo/1.0.0/approval', { state: 'approved' });
    expect((await pushed)[0]).toMatchObject({ kind: 'dservices_changed' });
    const ds = await fetchApprovedDescriptors(link);
    expect(ds).toHaveLength(1);
    expect(ds[0]).toMatchObject({ name: 'echo', version: '1.0.0', digest: 'e'.repeat(64), price: { perRequestMicros: 5 }, developer: acme });
  });

  it('the node verifies access tokens offline with the JWKS fetched over the link', async () => {
    const k = await newKey('oauth-client');
    const t = await call(central.url, null, 'POST', '/oauth/token', { grant_type: 'client_credentials', client_id: k.id, client_secret: k.key });
    const token = t.body.access_token as string;
    const clock = new ManualClock(central.clock.now());
    const tokens = new NodeTokenVerifier({ getJwks: async () => (await link.request('jwks')) as { keys: Jwk[] }, clock });
    const v = new CentralKeyVerifier(link, { clock, tokens });
    expect(v.verify(token)).toBeNull(); // no keys yet
    expect(await v.verifyAsync(token)).toMatchObject({ account: acme, keyId: k.id, via: 'token' });
    expect(v.verify(token)).toMatchObject({ account: acme }); // sync now
    // forged with another key under the same kid
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = await new SignJWT({ ...decodeJwt(token) }).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: decodeProtectedHeader(token).kid! }).sign(privateKey);
    expect(await v.verifyAsync(forged)).toBeNull();
    expect(tokens.check(forged)).toMatchObject({ ok: false, reason: 'bad signature' });
    const [h, , s] = token.split('.');
    const other = Buffer.from(JSON.stringify({ ...decodeJwt(token), acct: 'acc_other' })).toString('base64url');
    expect(tokens.check(`${h}.${other}.${s}`)).toMatchObject({ ok: false, reason: 'bad signature' });
    const none = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${token.split('.')[1]}.`;
    expect(await v.verifyAsync(none)).toBeNull();
    clock.advance(301_000 + 30_000);
    expect(tokens.check(token)).toMatchObject({ ok: false, reason: 'expired' });
    v.close();
  });

  it('refuses link clients that are not central: a node certificate, no certificate, another CA', async () => {
    const n = pki.nodes['node-1']!;
    const refused = (opts: WebSocket.ClientOptions) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(linkUrl, 'cgn-central-link.v1', { ca: n.ca, ...opts });
        ws.on('open', () => {
          ws.close();
          resolve('opened');
        });
        ws.on('unexpected-response', (_req, res) => {
          resolve(`http ${res.statusCode}`);
          ws.terminate();
        });
        ws.on('error', (err) => resolve(`error: ${err.message}`));
      });
    expect(await refused({ key: n.key, cert: n.cert })).toBe('http 403');
    expect(await refused({})).toMatch(/^error: /);
    const otherDir = join(dir, 'other-ca');
    const foreign = issueCert(otherDir, 'central', 'central', []);
    expect(await refused({ key: foreign.key, cert: foreign.cert })).toMatch(/^error: /);
    expect(link.counters.refused).toBeGreaterThanOrEqual(1);
  });

  it('central refuses a node whose certificate names another node', async () => {
    const other = ensureNodePki(join(dir, 'pki'), 'node-2');
    const impostor = new CentralLinkServer({ nodeId: 'node-3', tls: { key: other.key, cert: other.cert, ca: other.ca }, port: 0 });
    const { url } = await impostor.start();
    const sys = (await central.admin.call('GET', '/v1/me')).body.account.id;
    let connected = false;
    impostor.on('connected', () => (connected = true));
    await central.admin.call('POST', '/v1/nodes', {
      id: 'node-3', operatorAccount: sys, region: 'local', lat: 0, lon: 0,
      urls: { work: 'http://127.0.0.1:1/v1/d/', miner: 'ws://127.0.0.1:1', status: 'http://127.0.0.1:1/v1/status', central: url },
    });
    // wait until central has tried (and failed) twice
    const failures: string[] = [];
    await new Promise<void>((resolve) => {
      const on = (id: string, why: string) => {
        if (id !== 'node-3') return;
        failures.push(why);
        if (failures.length === 2) (central.links!.off('failed', on), resolve());
      };
      central.links!.on('failed', on);
    });
    expect(failures[0]).toContain('node:node-2');
    const info = central.links!.status().find((x) => x.nodeId === 'node-3')!;
    expect(info.state).not.toBe('open');
    expect(info.lastError).toContain('node:node-2');
    expect(connected).toBe(false);
    await central.admin.call('DELETE', '/v1/nodes/node-3');
    await impostor.stop();
  });

  it('central restarts while the node serves the keys it knows', async () => {
    const known = await newKey('survivor');
    const never = await newKey('never-seen');
    const clock = new ManualClock();
    const v = new CentralKeyVerifier(link, { clock, ttlMs: 30_000 });
    expect(await v.verifyAsync(known.key)).not.toBeNull();

    const down = once(link, 'disconnected');
    await central.stop();
    await down;
    expect(link.connected).toBe(false);
    // known key: still served, from the cache, sync and async
    clock.advance(20_000);
    expect(v.verify(known.key)).toMatchObject({ keyId: known.id });
    expect(await v.lookup(known.key)).toMatchObject({ from: 'cache' });
    // a key the node never saw cannot be checked: "unavailable", not "unknown"
    expect(await v.lookup(never.key)).toEqual({ principal: null, from: 'unavailable' });

    // central comes back on the same database; it dials the node again
    await restartCentral();
    expect(await v.lookup(never.key)).toMatchObject({ from: 'central', principal: { keyId: never.id } });
    clock.advance(10_000); // TTL of the first answer is over: asks the restarted central
    expect(v.verify(known.key)).toBeNull();
    expect(await v.lookup(known.key)).toMatchObject({ from: 'central', principal: { keyId: known.id } });
    v.close();
  });

  it('while central is down, cached keys work only until their TTL runs out', async () => {
    const k = await newKey('short-lived-cache');
    const clock = new ManualClock();
    const v = new CentralKeyVerifier(link, { clock, ttlMs: 5000 });
    expect(await v.verifyAsync(k.key)).not.toBeNull();
    const down = once(link, 'disconnected');
    await central.stop();
    await down;
    clock.advance(4999);
    expect(v.verify(k.key)).not.toBeNull();
    clock.advance(1);
    expect(v.verify(k.key)).toBeNull();
    expect(await v.lookup(k.key)).toEqual({ principal: null, from: 'unavailable' });
    v.close();
    await restartCentral();
    expect(await v.lookup(k.key)).toMatchObject({ from: 'central', principal: { keyId: k.id } });
  });
});
