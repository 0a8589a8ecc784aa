/**
 * Usage, invoices and earnings over HTTP from a real SQLite ledger: the numbers are the ones the
 * ledger's report functions and `cgn ledger usage|invoice|earnings --json` compute.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_SPLIT, beneficiaryEarnings, invoiceList, invoiceReport, openLedger, reportJson, runLedgerFromArgs, usageReport, usageTotal,
  type Ledger, type Microtransaction,
} from '@cgn/ledger';
import { startTestCentral, type TestCentral, type TestClient } from '../testing.js';
import { sqliteLedger } from '../billing.js';
import { runCentralFromArgs } from '../cli/central.js';
import type { CliIo } from '../cli/common.js';
import { call } from '../testing.js';

async function cli(...argv: string[]): Promise<any> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runLedgerFromArgs(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  if (code !== 0) throw new Error(`cgn ledger ${argv.join(' ')}: exit ${code}: ${err.join('\n')}`);
  return JSON.parse(out.join('\n'));
}

describe('usage, invoices and earnings from the ledger', () => {
  let dir: string;
  let path: string;
  let c: TestCentral;
  let bare: TestCentral;
  let owner: TestClient;
  let member: TestClient;
  let rigsOwner: TestClient;
  let acme: string;
  let rigs: string;
  let ledger: Ledger | undefined;
  const miner = randomBytes(32).toString('hex');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cgn-central-billing-'));
    path = join(dir, 'node', 'ledger.sqlite'); // not there yet: the node creates it
    c = await startTestCentral({ ledger: sqliteLedger(path) });
    bare = await startTestCentral();
    const a = await c.admin.call('POST', '/v1/accounts', { name: 'acme', kinds: ['enterprise'], owner: { login: 'acme-owner', password: 'Acme-Own3r-Pw!' } });
    acme = a.body.account.id;
    owner = await c.login('acme-owner', 'Acme-Own3r-Pw!');
    expect((await owner.call('POST', `/v1/accounts/${acme}/users`, { login: 'acme-member', password: 'Acme-Memb3r-Pw!' })).status).toBe(201);
    member = await c.login('acme-member', 'Acme-Memb3r-Pw!');
    const r = await c.admin.call('POST', '/v1/accounts', { name: 'rigs', kinds: ['miner'], owner: { login: 'rigs-owner', password: 'Rigs-Own3r-Pw!' } });
    rigs = r.body.account.id;
    rigsOwner = await c.login('rigs-owner', 'Rigs-Own3r-Pw!');
    expect((await rigsOwner.call('POST', '/v1/miners', { publicKey: miner, name: 'rig-1' })).status).toBe(201);
  });
  afterAll(async () => {
    await c?.stop();
    await bare?.stop();
    await ledger?.writer.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('503 problem when central has no ledger, or before the node has created the file', async () => {
    const admin = bare.admin;
    const me = await admin.call('GET', '/v1/me'); // (acme is not in `bare`: use its system account)
    const none = await admin.call('GET', `/v1/accounts/${me.body.account.id}/usage`);
    expect(none.status).toBe(503);
    expect(none.headers.get('content-type')).toContain('application/problem+json');
    expect(none.body.detail).toMatch(/central has no ledger.*--ledger PATH/);
    const early = await owner.call('GET', `/v1/accounts/${acme}/invoices`);
    expect(early.status).toBe(503);
    expect(early.body.detail).toMatch(/does not exist yet/);
  });

  it('serves the same numbers as the ledger (cgn ledger usage / invoice / earnings)', async () => {
    ledger = openLedger({ path });
    const { store, writer } = ledger;
    writer.start();
    store.setRate({ num: 3n, den: 1n });
    const day = (d: number, h = 0) => Date.UTC(2030, 0, d, h);
    let n = 0;
    const rec = (o: Partial<Microtransaction> & { price: bigint }): Microtransaction => {
      const { price, ...rest } = o;
      n += 1;
      return {
        workId: `w_${n}`, account: acme, endUser: null, dservice: 'echo', tier: 'open', miner, node: 'node-a', receivedAt: day(1),
        queueUs: 10, execUs: 1000 + n, cpuUs: 900 + n, bytesIn: 100 * n, bytesOut: 200 * n, status: 200, resultHash: null, attempts: 1,
        pricing: { priceMicros: price, split: DEFAULT_SPLIT, developer: 'dev-1', operator: 'op-1', charity: 'charity-1' },
        ...rest,
      };
    };
    for (const r of [
      rec({ price: 1_500n }),
      rec({ price: 2_000n, endUser: 'alice', receivedAt: day(1, 5) }),
      rec({ price: 7_000n, endUser: 'alice', dservice: 'mediagen', receivedAt: day(2) }),
      rec({ price: 333n, endUser: 'bob', dservice: 'mediagen', receivedAt: day(3) }),
      rec({ price: 99_999n, account: rigs, receivedAt: day(2) }), // another account's work
    ]) await writer.record(r);
    store.closeCycle({ at: day(4) });
    await writer.record(rec({ price: 5_000n, receivedAt: day(5) })); // cycle 2, open: in usage, on no invoice yet

    // Usage, grouped three ways and filtered by days: HTTP == report function == CLI.
    for (const [by, q, filter] of [
      ['dservice', '', {}],
      ['end-user', '&from=2030-01-02', { from: day(2) }],
      ['day', `&from=2030-01-01&to=${day(3)}`, { from: day(1), to: day(3) }],
    ] as const) {
      const h = await owner.call('GET', `/v1/accounts/${acme}/usage?by=${by}${q}`);
      expect(h.status, JSON.stringify(h.body)).toBe(200);
      const r = await usageReport(store, by, { account: acme, ...filter });
      expect(h.body).toEqual(reportJson({ account: acme, ...r, total: usageTotal(r.lines) }));
      const argv = ['usage', '--ledger', path, '--account', acme, '--by', by, '--json'];
      if ('from' in filter) argv.push('--from', new Date(filter.from).toISOString().slice(0, 10));
      if ('to' in filter) argv.push('--to', new Date(filter.to).toISOString().slice(0, 10));
      expect(h.body.lines).toEqual((await cli(...argv)).lines);
    }
    const byService = (await owner.call('GET', `/v1/accounts/${acme}/usage`)).body;
    expect(byService.lines.map((l: { key: string }) => l.key)).toEqual(['echo', 'mediagen']);
    expect(byService.total.priceMicros).toBe(String(1_500 + 2_000 + 7_000 + 333 + 5_000));
    expect(byService.total.tokens).toBe(String(3 * (1_500 + 2_000 + 7_000 + 333 + 5_000))); // cycle 2 keeps the rate 3/1

    // Invoices: one per closed cycle; the invoice of cycle 1 == `cgn ledger invoice --json`.
    const list = await owner.call('GET', `/v1/accounts/${acme}/invoices`);
    expect(list.status).toBe(200);
    expect(list.body).toEqual(reportJson({ account: acme, invoices: await invoiceList(store, acme) }));
    expect(list.body.invoices).toHaveLength(1);
    expect(list.body.invoices[0]).toMatchObject({ cycle: 1, records: 4, priceMicros: String(1_500 + 2_000 + 7_000 + 333), tokens: String(3 * (1_500 + 2_000 + 7_000 + 333)) });
    const inv = await owner.call('GET', `/v1/accounts/${acme}/invoices/1`);
    expect(inv.status).toBe(200);
    expect(inv.body).toEqual(await cli('invoice', '--ledger', path, '--account', acme, '--cycle', '1', '--json'));
    expect(inv.body).toEqual(reportJson(await invoiceReport(store, acme, 1)));
    expect((await c.admin.call('GET', `/v1/accounts/${acme}/invoices/latest`)).body).toEqual(inv.body);
    const open = await owner.call('GET', `/v1/accounts/${acme}/invoices/2`);
    expect(open.status).toBe(404);
    expect(open.body.detail).toMatch(/cycle 2 is not closed and sealed/);

    // Earnings of the miner: the miner's credit per cycle == `cgn ledger earnings --role miner --json`.
    const earn = await rigsOwner.call('GET', `/v1/miners/${miner}/earnings`);
    expect(earn.status).toBe(200);
    expect(earn.body).toEqual(reportJson({ miner, account: rigs, cycles: await beneficiaryEarnings(store, 'miner', miner) }));
    const fromCli = await cli('earnings', '--ledger', path, '--cycle', '1', '--role', 'miner', '--beneficiary', miner, '--json');
    expect(earn.body.cycles).toHaveLength(1);
    expect(earn.body.cycles[0]).toMatchObject({ cycle: 1, tokens: fromCli.credits[0].tokens, records: 5, address: fromCli.credits[0].address, payout: fromCli.payouts[0] ?? null });
    // The miner gave no payout address: its credit is held (owed, in no payout tree) until it gives one.
    expect(earn.body.cycles[0]).toMatchObject({ held: fromCli.credits[0].tokens, released: '0', payout: null });
    expect(BigInt(earn.body.cycles[0].tokens)).toBeGreaterThan(0n);
    expect((await c.admin.call('GET', `/v1/miners/${miner}/earnings`)).body).toEqual(earn.body);
  });

  it('cgn central --ledger PATH reads the node\'s ledger (read-only); --ledger-postgres is the alternative', async () => {
    let out = '';
    let err = '';
    const io: CliIo = {
      stdout: { write: (x: string) => (out += x) }, stderr: { write: (x: string) => (err += x) }, readStdin: async () => '', prompt: async () => null,
      env: { CGN_LOG_LEVEL: 'silent', CGN_ADMIN_PASSWORD: 'Adm1n-Passw0rd!x' }, cwd: dir,
    };
    expect(await runCentralFromArgs(['--no-link', '--ledger', 'a.sqlite', '--ledger-postgres', 'postgres://x@127.0.0.1:1/db'], io)).toBeNull();
    expect(err).toContain('use either --ledger or --ledger-postgres');
    const central = await runCentralFromArgs(['--port', '0', '--data-dir', 'central-cli', '--no-link', '--ledger', join('node', 'ledger.sqlite')], io);
    expect(central, err).not.toBeNull();
    try {
      expect(JSON.parse(out.trim()).ledger).toBe(`SQLite ledger ${path}`);
      const login = await call(central!.url, null, 'POST', '/v1/auth/login', { login: 'admin', password: 'Adm1n-Passw0rd!x' });
      const me = await call(central!.url, login.body.token, 'GET', '/v1/me');
      const u = await call(central!.url, login.body.token, 'GET', `/v1/accounts/${me.body.account.id}/usage?by=day`);
      expect(u.status, JSON.stringify(u.body)).toBe(200);
      expect(u.body).toMatchObject({ by: 'day', lines: [], total: { records: 0, priceMicros: '0', tokens: '0' } });
    } finally {
      await central?.stop();
    }
  });

  it('only staff and the account owner see the money; bad queries are 400', async () => {
    expect((await member.call('GET', `/v1/accounts/${acme}/usage`)).status).toBe(403);
    expect((await member.call('GET', `/v1/accounts/${acme}/invoices/1`)).status).toBe(403);
    expect((await rigsOwner.call('GET', `/v1/accounts/${acme}/invoices`)).status).toBe(403);
    expect((await owner.call('GET', `/v1/miners/${miner}/earnings`)).status).toBe(403);
    expect((await c.admin.call('GET', '/v1/accounts/acct_nope/usage')).status).toBe(404);
    expect((await c.admin.call('GET', `/v1/miners/${'0'.repeat(64)}/earnings`)).status).toBe(404);
    const bad = await owner.call('GET', `/v1/accounts/${acme}/usage?by=week`);
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/by/);
    expect((await owner.call('GET', `/v1/accounts/${acme}/usage?from=2030-13-45`)).status).toBe(400);
    expect((await owner.call('GET', `/v1/accounts/${acme}/invoices/0`)).status).toBe(400);
  });
});
