/**
 * Tiers are granted, not claimed: a miner advertising `dedicated` is admitted only when central's
 * registry (staff) or the node's own grants say so; one that claims it gets an error frame saying
 * why and its tunnel is closed (4008). `attested` without a registered attestation key is refused
 * the same way. Status shows miners by tier.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { ensureDevPki, setupDevNetwork, SqliteCentralStore, startTestCentral, TEST_ADMIN, type TestCentral } from '@cgn/central';
import { digestPackage } from '@cgn/miner';
import { generateMinerKey, minerIdOf, type ErrorFrame } from '@cgn/protocol';
import { ECHO, ScriptedMiner, spawnMiner, startTestNode, tempDir, waitFor, type TestNode } from './harness.js';

const TIER_REFUSED = 4008;

const errorOf = (m: ScriptedMiner): ErrorFrame | undefined => m.received.find((f): f is ErrorFrame => f.t === 'error');
const byTier = (t: TestNode) => t.node.status()['minersByTier'] as Record<string, number>;

describe('tiers granted by the node (no central)', () => {
  const granted = generateMinerKey();
  const grantedProc = generateMinerKey();
  let t: TestNode;

  beforeAll(async () => {
    t = await startTestNode({
      grants: { miners: { [minerIdOf(granted.publicKey)]: { tier: 'dedicated' }, [minerIdOf(grantedProc.publicKey)]: { tier: 'dedicated' } }, attestation: { runtimes: [], dservices: {} } },
    });
  });
  afterAll(async () => t.cleanup());

  it('admits a granted dedicated miner in the dedicated tier and routes dedicated work to it', async () => {
    const m = new ScriptedMiner({ ack: true, answer: true, advert: { tier: 'dedicated' } }, granted);
    await m.connect(t.node.minerUrl);
    try {
      await waitFor(() => t.node.broker.snapshot().miners.some((x) => x.id === m.id && x.tier === 'dedicated'), 'the granted miner to join as dedicated');
      expect(byTier(t)).toMatchObject({ dedicated: 1 });
      const r = await fetch(t.url('echo'), { method: 'POST', body: 'contract', headers: { authorization: `Bearer ${t.apiKey}`, 'cgn-tier': 'dedicated' } });
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('contract');
      expect(m.workIds()).toHaveLength(1);
    } finally {
      m.ws.close();
    }
    await waitFor(() => byTier(t)['dedicated'] === 0, 'the dedicated miner to leave');
  });

  it('refuses a miner claiming dedicated with an error frame that says why, and closes it', async () => {
    const m = new ScriptedMiner({ ack: true, answer: true, advert: { tier: 'dedicated' } });
    await m.connect(t.node.minerUrl);
    const closed = await m.closed;
    expect(closed.code).toBe(TIER_REFUSED);
    const e = errorOf(m);
    expect(e?.code).toBe('forbidden');
    expect(e?.message).toMatch(/tier dedicated refused: miner [0-9a-f]{16} is not registered as dedicated \(it is granted open\)/);
    expect(t.node.broker.snapshot().miners.some((x) => x.id === m.id)).toBe(false);
    expect((t.node.status()['counters'] as { tunnels: { tierRefusals: number } }).tunnels.tierRefusals).toBeGreaterThanOrEqual(1);
  });

  it('refuses a miner claiming attested without a registered attestation key', async () => {
    const m = new ScriptedMiner({ ack: true, answer: true, advert: { tier: 'attested' } });
    await m.connect(t.node.minerUrl);
    expect((await m.closed).code).toBe(TIER_REFUSED);
    expect(errorOf(m)?.message).toMatch(/tier attested refused: .* no attestation key registered/);
  });

  it('a real cgn miner started with --tier dedicated: admitted when granted, told why and closed when not', async () => {
    const dir = tempDir('cgn-tier-miner-');
    const ok = spawnMiner(t.node.minerUrl, dir.path, { key: grantedProc, name: 'granted', args: ['--tier', 'dedicated'] });
    const refused = spawnMiner(t.node.minerUrl, dir.path, { name: 'claimer', args: ['--tier', 'dedicated'] });
    try {
      await waitFor(() => t.node.broker.snapshot().miners.some((x) => x.id === ok.id && x.tier === 'dedicated'), 'the granted miner process to join as dedicated', 30_000);
      await waitFor(() => /tier dedicated refused/.test(refused.stderr()), 'the claiming miner to log the refusal', 30_000);
      expect(t.node.broker.snapshot().miners.some((x) => x.id === refused.id)).toBe(false);
    } finally {
      ok.kill();
      refused.kill();
      await Promise.all([ok.exited, refused.exited]);
      dir.cleanup();
    }
  });
});

describe('tiers granted by central', () => {
  const tmp = tempDir('cgn-tiers-central-');
  const pki = join(tmp.path, 'pki');
  let central: TestCentral;
  let t: TestNode;
  let owner: Awaited<ReturnType<TestCentral['login']>>;

  beforeAll(async () => {
    const p = ensureDevPki(pki, ['node-local-1']);
    central = await startTestCentral({
      store: new SqliteCentralStore({ path: join(tmp.path, 'central.sqlite') }),
      link: { tls: { key: p.central.key, cert: p.central.cert, ca: p.ca }, statusIntervalMs: 200 },
    });
    t = await startTestNode({ nodeId: 'node-local-1', acceptAnyMiner: false, central: { port: 0, pkiDir: pki, keyTtlMs: 5000 } });
    await setupDevNetwork({
      centralUrl: central.url,
      admin: TEST_ADMIN,
      nodes: [{ id: 'node-local-1', urls: { work: t.node.workUrl, miner: t.node.minerUrl, status: t.node.statusUrl, central: t.node.centralLinkUrl! } }],
      dservices: [{ descriptor: JSON.parse(readFileSync(join(ECHO, 'dservice.json'), 'utf8')) as Record<string, unknown>, digest: await digestPackage(ECHO) }],
    });
    await waitFor(() => (t.node.status()['central'] as { connected: boolean } | null)?.connected === true, 'central to connect to the node');
    expect((await central.admin.call('POST', '/v1/accounts', { name: 'rigs', kinds: ['miner'], owner: { login: 'rig-owner', password: 'Rig-Own3r-Pw!x' } })).status).toBe(201);
    owner = await central.login('rig-owner', 'Rig-Own3r-Pw!x');
  });

  afterAll(async () => {
    await t.cleanup();
    await central.stop().catch(() => undefined);
    tmp.cleanup();
  });

  it('an owner registers a miner as open and cannot grant it dedicated; staff can', async () => {
    const key = generateMinerKey();
    const id = minerIdOf(key.publicKey);
    const claim = await owner.call('POST', '/v1/miners', { publicKey: id, name: 'rig-1', tier: 'dedicated' });
    expect(claim.status).toBe(403);
    expect(JSON.stringify(claim.body)).toMatch(/granted by CGN staff/);
    const reg = await owner.call('POST', '/v1/miners', { publicKey: id, name: 'rig-1' });
    expect(reg.status).toBe(201);
    expect(reg.body.tier).toBe('open');
    expect((await owner.call('PUT', `/v1/miners/${id}/tier`, { tier: 'dedicated' })).status).toBe(403);

    // Registered open: claiming dedicated is refused.
    const before = new ScriptedMiner({ ack: true, answer: true, advert: { tier: 'dedicated' } }, key);
    await before.connect(t.node.minerUrl);
    expect((await before.closed).code).toBe(TIER_REFUSED);
    expect(errorOf(before)?.message).toMatch(/not registered as dedicated \(it is granted open\)/);

    const grant = await central.admin.call('PUT', `/v1/miners/${id}/tier`, { tier: 'dedicated' });
    expect(grant.status).toBe(200);
    expect(grant.body.tier).toBe('dedicated');
    const audit = await central.admin.call('GET', '/v1/audit?type=miner_tier_granted');
    expect(JSON.stringify(audit.body)).toContain(id);

    const after = new ScriptedMiner({ ack: true, answer: true, advert: { tier: 'dedicated' } }, key);
    await after.connect(t.node.minerUrl);
    try {
      await waitFor(() => t.node.broker.snapshot().miners.some((x) => x.id === id && x.tier === 'dedicated'), 'the granted miner to join as dedicated');
      expect(byTier(t)).toMatchObject({ dedicated: 1 });
    } finally {
      after.ws.close();
    }
  });

  it('an owner registers a miner with its TPM attestation key (checked), and the node challenges it for a quote', async () => {
    const key = generateMinerKey();
    const id = minerIdOf(key.publicKey);
    const bad = await owner.call('POST', '/v1/miners', { publicKey: id, name: 'rig-tpm', attestationKey: 'not a key' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/PEM public key/);
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(JSON.stringify((await owner.call('POST', '/v1/miners', { publicKey: id, name: 'rig-tpm', attestationKey: weak })).body)).toMatch(/1024 bits is too weak/);
    const ak = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const reg = await owner.call('POST', '/v1/miners', { publicKey: id, name: 'rig-tpm', attestationKey: ak });
    expect(reg.status).toBe(201);
    expect(reg.body).toMatchObject({ tier: 'open', attestationKey: ak });
    // Only administrators keep the allow-list.
    const digest = 'ab'.repeat(32);
    expect((await owner.call('POST', '/v1/attestation/runtimes', { digest, note: 'mine' })).status).toBe(403);
    expect((await central.admin.call('POST', '/v1/attestation/runtimes', { digest, note: 'cgn-miner 0.1 on node 20' })).status).toBe(201);
    expect((await central.admin.call('GET', '/v1/attestation/runtimes')).body.runtimes).toEqual([expect.objectContaining({ digest, note: 'cgn-miner 0.1 on node 20' })]);

    // The node learns the key from central: advertising attested gets a challenge, not a refusal.
    const m = new ScriptedMiner({ ack: true, answer: true, advert: { tier: 'attested' } }, key);
    await m.connect(t.node.minerUrl);
    try {
      await waitFor(() => m.received.some((f) => f.t === 'attest'), 'the node to challenge the miner for a quote');
      expect(errorOf(m)).toBeUndefined();
    } finally {
      m.ws.close();
    }
  });

  it('a connected miner is held to a grant staff take back, and to a revoked key, at once', async () => {
    const key = generateMinerKey();
    const id = minerIdOf(key.publicKey);
    expect((await owner.call('POST', '/v1/miners', { publicKey: id, name: 'rig-3' })).status).toBe(201);
    expect((await central.admin.call('PUT', `/v1/miners/${id}/tier`, { tier: 'dedicated' })).status).toBe(200);
    const m = new ScriptedMiner({ ack: true, answer: true, advert: { tier: 'dedicated' } }, key);
    await m.connect(t.node.minerUrl);
    await waitFor(() => t.node.broker.snapshot().miners.some((x) => x.id === id && x.tier === 'dedicated'), 'the dedicated miner to join');
    expect((await central.admin.call('PUT', `/v1/miners/${id}/tier`, { tier: 'open' })).status).toBe(200);
    expect((await m.closed).code).toBe(TIER_REFUSED);
    expect(errorOf(m)?.message).toMatch(/tier dedicated refused: .* not registered as dedicated \(it is granted open\)/);

    const open = new ScriptedMiner({ ack: true, answer: true }, key);
    await open.connect(t.node.minerUrl);
    await waitFor(() => t.node.broker.snapshot().miners.some((x) => x.id === id && x.tier === 'open'), 'the miner to join open');
    expect((await owner.call('DELETE', `/v1/miners/${id}`)).status).toBe(200);
    expect((await open.closed).code).toBe(4001);
    expect(errorOf(open)?.message).toMatch(/no longer registered with this node \(its key was revoked\)/);
  });

  it('a key central does not know is refused at auth by a node that does not accept any miner', async () => {
    const m = new ScriptedMiner({ ack: true, answer: true });
    void m.connect(t.node.minerUrl).catch(() => undefined);
    await waitFor(() => m.ws !== undefined, 'the miner to dial');
    expect((await m.closed).code).toBe(4001);
    expect(errorOf(m)?.message).toMatch(/not registered with this node/);
  });
});
