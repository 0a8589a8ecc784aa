/**
 * Prices per DService (issue 16, 6): a DService registered at central with prices and approved is
 * charged at those prices by a node linked to central (its tier's schedule when it has one); a
 * DService registered without prices is charged at the node's default; `cgn dservice list` shows both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { ensureDevPki, runAccountFromArgs, runDServiceFromArgs, setupDevNetwork, SqliteCentralStore, startTestCentral, TEST_ADMIN, type TestCentral } from '@cgn/central';
import { priceOf } from '@cgn/ledger';
import { digestPackage } from '@cgn/miner';
import { ECHO, MEDIAGEN, ScriptedMiner, startTestNode, tempDir, waitFor, type TestNode } from './harness.js';

const descriptor = (dir: string) => JSON.parse(readFileSync(join(dir, 'dservice.json'), 'utf8')) as Record<string, unknown>;

function cliIo(cwd: string, env: Record<string, string> = {}) {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string) => void (out += s) }, stderr: { write: (s: string) => void (err += s) },
      readStdin: async () => '', prompt: async () => null, env: { CGN_LOG_LEVEL: 'silent', ...env }, cwd,
    },
    out: () => out,
    err: () => err,
  };
}

describe('prices per DService, from central to the node', () => {
  const tmp = tempDir('cgn-prices-');
  const pki = join(tmp.path, 'pki');
  let central: TestCentral;
  let t: TestNode;
  let miner: ScriptedMiner;
  let apiKey: string;

  beforeAll(async () => {
    const p = ensureDevPki(pki, ['node-local-1']);
    central = await startTestCentral({
      store: new SqliteCentralStore({ path: join(tmp.path, 'central.sqlite') }),
      link: { tls: { key: p.central.key, cert: p.central.cert, ca: p.ca }, statusIntervalMs: 200 },
    });
    t = await startTestNode({ nodeId: 'node-local-1', central: { port: 0, pkiDir: pki, keyTtlMs: 5000 } });
    const digests = { echo: await digestPackage(ECHO), mediagen: await digestPackage(MEDIAGEN) };
    miner = new ScriptedMiner({ ack: true, answer: true, dservices: ['echo', 'mediagen'], digests, advert: { resources: { cpus: 2, memoryMb: 1024 } } });
    await miner.connect(t.node.minerUrl);
    // mediagen without prices (the node's default), through the dev setup.
    const setup = await setupDevNetwork({
      centralUrl: central.url,
      admin: TEST_ADMIN,
      nodes: [{ id: 'node-local-1', urls: { work: t.node.workUrl, miner: t.node.minerUrl, status: t.node.statusUrl, central: t.node.centralLinkUrl! } }],
      dservices: [{ descriptor: descriptor(MEDIAGEN), digest: digests.mediagen }],
    });
    apiKey = setup.demo.apiKey;
    // echo with prices, as its developer registers it with cgn dservice register, then approved.
    const session = join(tmp.path, 'owner.json');
    const login = cliIo(tmp.path, { CGN_PASSWORD: setup.demo.ownerPassword });
    expect(await runAccountFromArgs(['login', '--login', setup.demo.ownerLogin, '--central', central.url, '--session', session], login.io), login.err()).toBe(0);
    const reg = cliIo(tmp.path);
    const code = await runDServiceFromArgs(
      ['register', '--dir', ECHO, '--price-request', '5000', '--price-cpu-second', '0', '--price-mb', '0', '--price-tier', 'open=7000/0/0', '--session', session],
      reg.io, { digestPackage },
    );
    expect(code, reg.err()).toBe(0);
    const admin = await central.login(TEST_ADMIN.login, TEST_ADMIN.password);
    const v = String(descriptor(ECHO)['version']);
    expect((await admin.call('PUT', `/v1/dservices/echo/${encodeURIComponent(v)}/approval`, { state: 'approved' })).status).toBeLessThan(300);
    await waitFor(() => (t.node.status()['dservices'] as unknown[]).length === 2, 'central to approve echo and mediagen on the node', 15_000);
  });

  afterAll(async () => {
    miner.ws.close();
    await t.cleanup();
    await central.stop().catch(() => undefined);
    tmp.cleanup();
  });

  const work = (name: string, body: string) => fetch(t.url(name), { method: 'POST', body, headers: { authorization: `Bearer ${apiKey}` } });

  it('charges an approved DService at the prices approved at central, its tier schedule first', async () => {
    const res = await work('echo', 'priced');
    expect(res.status).toBe(200);
    expect(res.headers.get('cgn-cost')).toBe('7000 uUSD');
    const row = t.node.ledger.store.getRow(res.headers.get('cgn-work-id')!);
    expect(row?.record.tier).toBe('open');
    expect(row?.record.pricing?.priceMicros).toBe(7000n);
  });

  it('charges a DService registered without prices at the node default', async () => {
    const res = await work('mediagen', '{}');
    const id = res.headers.get('cgn-work-id');
    expect(id, `status ${res.status}: ${id === null ? await res.text() : ''}`).not.toBeNull();
    const row = t.node.ledger.store.getRow(id!)!;
    const d = t.node.billing.options.price;
    const expected = priceOf({ perRequest: BigInt(d.perRequest), perCpuSecond: BigInt(d.perCpuSecond), perMb: BigInt(d.perMb) }, row.record);
    expect(row.record.pricing?.priceMicros).toBe(expected);
    expect(expected).toBeGreaterThanOrEqual(100n);
  });

  it('cgn dservice list shows the prices, and "node default" where none were set', async () => {
    const session = join(tmp.path, 'admin.json');
    const login = cliIo(tmp.path, { CGN_PASSWORD: TEST_ADMIN.password });
    expect(await runAccountFromArgs(['login', '--login', TEST_ADMIN.login, '--central', central.url, '--session', session], login.io), login.err()).toBe(0);
    const ls = cliIo(tmp.path);
    expect(await runDServiceFromArgs(['list', '--session', session], ls.io), ls.err()).toBe(0);
    const lines = ls.out().split('\n');
    expect(lines[0]).toContain('price (µUSD)');
    expect(lines.find((l) => l.startsWith('echo '))).toContain('5000/req 0/cpu-s 0/MB; open: 7000/req 0/cpu-s 0/MB');
    expect(lines.find((l) => l.startsWith('mediagen '))).toContain('node default');
  });
});
