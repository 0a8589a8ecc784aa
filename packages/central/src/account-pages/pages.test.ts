/**
 * The account pages' API over real HTTP, read from a real SQLite ledger: usage series and end
 * users add up to the ledger's own usage report, the balance shows deposits and how to top up, a
 * developer sees its DServices, approval and earnings; and an account sees only its own pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SPLIT, openLedger, usageReport, type Ledger, type Microtransaction } from '@cgn/ledger';
import { startTestCentral, call, type TestCentral, type TestClient } from '../testing.js';
import { sqliteLedger } from '../billing.js';
import { ManualClock } from '../clock.js';

const day = (d: number, h = 0) => Date.UTC(2030, 0, d, h);

describe('account pages API', () => {
  let dir: string;
  let c: TestCentral;
  let bare: TestCentral;
  let ledger: Ledger;
  let owner: TestClient;
  let member: TestClient;
  let rigsOwner: TestClient;
  let monitor: TestClient;
  let acme: string;
  let rigs: string;
  const miner = randomBytes(32).toString('hex');
  const wallet = `0x${'1a'.repeat(20)}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cgn-account-pages-'));
    const path = join(dir, 'ledger.sqlite');
    const contractsFile = join(dir, 'chain-contracts.json');
    writeFileSync(contractsFile, JSON.stringify({ chainId: 31337, token: `0x${'5f'.repeat(20)}`, settlement: `0x${'E7'.repeat(20)}`, staking: `0x${'9f'.repeat(20)}`, election: `0x${'cf'.repeat(20)}`, deployBlock: '1' }));
    ledger = openLedger({ path });
    ledger.writer.start();
    c = await startTestCentral({ clock: new ManualClock(day(6, 12)), ledger: sqliteLedger(path), http: { accountPages: { contractsFile, rpcUrl: 'http://127.0.0.1:8545' }, rateLimits: { perIp: { burst: 1e5, perSecond: 1e5 }, perPrincipal: { burst: 1e5, perSecond: 1e5 }, auth: { burst: 1e5, perSecond: 1e5 } } } });
    bare = await startTestCentral();
    const a = await c.admin.call('POST', '/v1/accounts', { name: 'acme', kinds: ['enterprise', 'developer'], owner: { login: 'acme-owner', password: 'Acme-Own3r-Pw!' } });
    acme = a.body.account.id;
    owner = await c.login('acme-owner', 'Acme-Own3r-Pw!');
    expect((await owner.call('POST', `/v1/accounts/${acme}/users`, { login: 'acme-member', password: 'Acme-Memb3r-Pw!' })).status).toBe(201);
    member = await c.login('acme-member', 'Acme-Memb3r-Pw!');
    const r = await c.admin.call('POST', '/v1/accounts', { name: 'rigs', kinds: ['enterprise'], owner: { login: 'rigs-owner', password: 'Rigs-Own3r-Pw!' } });
    rigs = r.body.account.id;
    rigsOwner = await c.login('rigs-owner', 'Rigs-Own3r-Pw!');
    const me = await c.admin.call('GET', '/v1/me');
    expect((await c.admin.call('POST', `/v1/accounts/${me.body.account.id}/users`, { login: 'mon-1', password: 'Monit0r-Passw0rd!', role: 'monitor' })).status).toBe(201);
    monitor = await c.login('mon-1', 'Monit0r-Passw0rd!');

    // acme develops "echo" (approved, priced) and "resize" (rejected with a reason).
    const price = { perRequestMicros: 100, perCpuSecondMicros: 2000, perMbMicros: 20, tiers: { attested: { perRequestMicros: 200, perCpuSecondMicros: 2000, perMbMicros: 20 } } };
    expect((await owner.call('POST', '/v1/dservices', { name: 'echo', version: '1.0.0', digest: `sha256:${'a'.repeat(64)}`, price })).status).toBe(201);
    expect((await owner.call('POST', '/v1/dservices', { name: 'resize', version: '0.1.0', digest: `sha256:${'b'.repeat(64)}` })).status).toBe(201);
    expect((await c.admin.call('PUT', '/v1/dservices/echo/1.0.0/approval', { state: 'approved' })).status).toBe(200);
    expect((await c.admin.call('PUT', '/v1/dservices/resize/0.1.0/approval', { state: 'rejected', reason: 'reads files outside its directory' })).status).toBe(200);

    const { store, writer } = ledger;
    store.setRate({ num: 3n, den: 1n });
    let n = 0;
    const rec = (o: Partial<Microtransaction> & { price: bigint }): Microtransaction => {
      const { price: p, ...rest } = o;
      n += 1;
      return {
        workId: `w_${n}`, account: acme, endUser: null, dservice: 'echo', tier: 'open', miner, node: 'node-a', receivedAt: day(1),
        queueUs: 10, execUs: 1000, cpuUs: 900, bytesIn: 100, bytesOut: 200, status: 200, resultHash: null, attempts: 1,
        pricing: { priceMicros: p, split: DEFAULT_SPLIT, developer: acme, operator: 'op-1', charity: 'charity-1' },
        ...rest,
      };
    };
    for (const x of [
      rec({ price: 1_500n }),
      rec({ price: 2_000n, endUser: 'alice', receivedAt: day(1, 5) }),
      rec({ price: 7_000n, endUser: 'alice', dservice: 'mediagen', receivedAt: day(2) }),
      rec({ price: 333n, endUser: 'bob', dservice: 'mediagen', receivedAt: day(3) }),
      rec({ price: 50n, endUser: 'carol', receivedAt: day(3) }),
      rec({ price: 99_999n, account: rigs, endUser: 'mallory', receivedAt: day(2) }), // another account's work (it pays acme's echo)
    ]) await writer.record(x);
    store.closeCycle({ at: day(4) });
    await writer.record(rec({ price: 5_000n, receivedAt: day(5), endUser: 'alice' })); // cycle 2, open
    store.credit(acme, 10n ** 18n, 'opening credit');
    store.linkAddress(acme, wallet);
    store.recordChainDeposit({ ref: `0x${'01'.padStart(64, '0')}:0`, address: wallet, amount: 2n * 10n ** 18n, block: 5n });
  });
  afterAll(async () => {
    await c?.stop();
    await bare?.stop();
    await ledger?.writer.stop();
    ledger?.store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('usage per DService per day adds up to the ledger\'s usage report, day by day', async () => {
    const r = await owner.call('GET', `/v1/accounts/${acme}/usage/series?by=dservice&from=2030-01-01&to=2030-01-05`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.buckets.map((b: { label: string }) => b.label)).toEqual(['2030-01-01', '2030-01-02', '2030-01-03', '2030-01-04', '2030-01-05']);
    expect(r.body.buckets[0].start).toBe(day(1));
    expect(r.body.series.map((s: { key: string }) => s.key)).toEqual(['echo', 'mediagen']); // 8,550 µUSD before 7,333
    const byDay = await usageReport(ledger.store, 'day', { account: acme, from: day(1), to: day(6) });
    r.body.buckets.forEach((b: { label: string }, j: number) => {
      const want = byDay.lines.find((l) => l.key === b.label);
      expect(r.body.total.priceMicros[j]).toBe(String(want?.priceMicros ?? 0n));
      expect(r.body.total.records[j]).toBe(want?.records ?? 0);
    });
    const echo = r.body.series.find((s: { key: string }) => s.key === 'echo');
    expect(echo.priceMicros).toEqual(['3500', '0', '50', '0', '5000']);
    expect(echo.tokens).toEqual(['10500', '0', '150', '0', '15000']);
  });

  it('end users over time fold beyond top into "(others)"; per cycle too', async () => {
    const r = await owner.call('GET', `/v1/accounts/${acme}/usage/series?by=end-user&from=2030-01-01&to=2030-01-05&top=1`);
    expect(r.status).toBe(200);
    expect(r.body.series.map((s: { key: string }) => s.key)).toEqual(['alice', '(others)']);
    expect(r.body.keys).toBe(4); // alice, -, bob, carol (never mallory: another account's)
    expect(r.body.series[1].priceMicros).toEqual(['1500', '0', '383', '0', '0']);
    const cy = await owner.call('GET', `/v1/accounts/${acme}/usage/series?by=end-user&bucket=cycle`);
    expect(cy.status).toBe(200);
    expect(cy.body.buckets.map((b: { label: string }) => b.label)).toEqual(['cycle 1', 'cycle 2']);
    expect(cy.body.total.priceMicros).toEqual(['10883', '5000']);
    // Default window: the 30 days up to today (central's clock).
    const dflt = await owner.call('GET', `/v1/accounts/${acme}/usage/series`);
    expect(dflt.body.buckets.length).toBe(30);
    expect(dflt.body.buckets.at(-1).label).toBe('2030-01-06');
  });

  it('bad series queries are 400 with the reason', async () => {
    for (const [q, why] of [
      ['by=tier', /by/],
      ['from=2030-01-05&to=2030-01-01', /after/],
      ['from=2029-01-01&to=2030-01-01', /at most 92 days/],
      ['bucket=cycle&from=2030-01-01', /bucket=day/],
      ['top=0', /top/],
      ['from=2030-02-30', /day/],
      ['bucket=hour', /bucket/],
    ] as const) {
      const r = await owner.call('GET', `/v1/accounts/${acme}/usage/series?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.detail, q).toMatch(why);
    }
  });

  it('property: any query string gets 200 or a 400 problem with the reason, never a 5xx', async () => {
    const value = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.constantFrom('dservice', 'end-user', 'day', 'cycle', '2030-01-01', '2030-13-40', '0', '1', '92', '999999999', '-1', '1e3', '__proto__', 'constructor'),
    );
    const query = fc.dictionary(fc.constantFrom('by', 'bucket', 'from', 'to', 'cycles', 'top', 'offset', 'limit', 'cycle', 'dservice', 'x'), value, { maxKeys: 4 });
    await fc.assert(fc.asyncProperty(fc.constantFrom('usage/series', 'usage/end-users'), query, async (route, q) => {
      const r = await owner.call('GET', `/v1/accounts/${acme}/${route}?${new URLSearchParams(q).toString()}`);
      expect([200, 400], JSON.stringify({ q, body: r.body })).toContain(r.status);
      if (r.status === 400) {
        expect(r.headers.get('content-type')).toContain('application/problem+json');
        expect(typeof r.body.detail).toBe('string');
      }
    }), { numRuns: 150 });
  });

  it('end users a page at a time, most expensive first', async () => {
    const p1 = await owner.call('GET', `/v1/accounts/${acme}/usage/end-users?limit=2`);
    expect(p1.status).toBe(200);
    expect(p1.body).toMatchObject({ total: 4, offset: 0, limit: 2, next: 2 });
    expect(p1.body.lines.map((l: { key: string }) => l.key)).toEqual(['alice', '-']);
    expect(p1.body.lines[0].priceMicros).toBe('14000');
    const p2 = await owner.call('GET', `/v1/accounts/${acme}/usage/end-users?limit=2&offset=2`);
    expect(p2.body.lines.map((l: { key: string }) => l.key)).toEqual(['bob', 'carol']);
    expect(p2.body.next).toBeNull();
    const c1 = await owner.call('GET', `/v1/accounts/${acme}/usage/end-users?cycle=1&dservice=mediagen`);
    expect(c1.body.lines.map((l: { key: string }) => l.key)).toEqual(['alice', 'bob']);
    expect((await owner.call('GET', `/v1/accounts/${acme}/usage/end-users?limit=201`)).status).toBe(400);
  });

  it('balance: deposited, spent, available, deposits newest first, the link, and how to top up into the escrow', async () => {
    const r = await owner.call('GET', `/v1/accounts/${acme}/balance`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const b = ledger.store.balance(acme);
    expect(r.body.balance).toEqual({ account: acme, deposited: String(b.deposited), spent: String(b.spent), available: String(b.available) });
    expect(r.body.balance.deposited).toBe(String(3n * 10n ** 18n));
    expect(r.body.deposits.map((d: { amount: string; memo: string }) => [d.amount, d.memo])).toEqual([
      [String(2n * 10n ** 18n), `chain deposit 0x${'01'.padStart(64, '0')}:0`],
      [String(10n ** 18n), 'opening credit'],
    ]);
    expect(r.body.links.map((l: { address: string }) => l.address)).toEqual([wallet]);
    expect(r.body.topUp.escrow).toEqual({ chainId: 31337, settlement: `0x${'e7'.repeat(20)}`, token: `0x${'5f'.repeat(20)}`, rpcUrl: 'http://127.0.0.1:8545' });
    const commands = r.body.topUp.steps.map((s: { command: string }) => s.command).join('\n');
    expect(commands).toContain(`npx cgn wallet deposit --amount 10 --key-file .cgn/wallets/${wallet}.key --rpc http://127.0.0.1:8545`);
    expect(commands).not.toContain('link-address'); // already linked
    // An account with no link is told to link one, with its own id.
    const other = await rigsOwner.call('GET', `/v1/accounts/${rigs}/balance`);
    expect(other.body.topUp.steps.map((s: { command: string }) => s.command).join('\n')).toContain(`npx cgn ledger link-address --account ${rigs} --address 0xYOURWALLET`);
  });

  it('developer view: DServices with approval state, reason and prices; earnings and revenue per closed cycle', async () => {
    const r = await owner.call('GET', `/v1/accounts/${acme}/developer`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.developer).toBe(true);
    expect(r.body.dservices.map((d: { name: string; state: string; rejectionReason: string | null }) => [d.name, d.state, d.rejectionReason])).toEqual([
      ['echo', 'approved', null],
      ['resize', 'rejected', 'reads files outside its directory'],
    ]);
    expect(r.body.dservices[0].priceText).toBe('100/req 2000/cpu-s 20/MB; attested: 200/req 2000/cpu-s 20/MB');
    expect(r.body.dservices[1].priceText).toBe('node default');
    const credit = ledger.store.credits(1).find((x) => x.role === 'developer' && x.beneficiary === acme)!;
    expect(r.body.earnings).toHaveLength(1);
    expect(r.body.earnings[0]).toMatchObject({ cycle: 1, tokens: String(credit.tokens), records: credit.records });
    // Revenue: every account's spending on acme's DServices (echo; mediagen is not acme's).
    expect(r.body.revenue).toEqual([{ cycle: 1, closedAt: day(4), dservice: 'echo', records: 4, priceMicros: String(1_500 + 2_000 + 50 + 99_999), tokens: String(3 * (1_500 + 2_000 + 50 + 99_999)) }]);
    // Without a ledger: the DServices still, and why the rest is missing.
    const sys = (await bare.admin.call('GET', '/v1/me')).body.account.id;
    const none = await bare.admin.call('GET', `/v1/accounts/${sys}/developer`);
    expect(none.status).toBe(200);
    expect(none.body).toMatchObject({ developer: false, dservices: [], earnings: null, revenue: null });
    expect(none.body.unavailable).toMatch(/no ledger/);
    expect((await bare.admin.call('GET', `/v1/accounts/${sys}/balance`)).status).toBe(503);
  });

  it('an account sees only its own pages: members, other accounts and strangers are refused; staff may read', async () => {
    const paths = (acc: string) => [`/v1/accounts/${acc}/usage/series`, `/v1/accounts/${acc}/usage/end-users`, `/v1/accounts/${acc}/balance`, `/v1/accounts/${acc}/developer`];
    for (const p of paths(acme)) {
      expect((await call(c.url, null, 'GET', p)).status, p).toBe(401);
      const m = await member.call('GET', p);
      expect(m.status, p).toBe(403);
      expect(m.headers.get('content-type')).toContain('application/problem+json');
      expect((await rigsOwner.call('GET', p)).status, p).toBe(403);
      expect((await monitor.call('GET', p)).status, p).toBe(200);
      expect((await owner.call('GET', p)).status, p).toBe(200);
    }
    for (const p of paths('acc_doesnotexist00')) {
      expect((await owner.call('GET', p)).status, p).toBe(403); // not told whether it exists
      expect((await c.admin.call('GET', p)).status, p).toBe(404);
    }
    const denied = await c.admin.call('GET', `/v1/audit?type=access_denied&accountId=${acme}&limit=50`);
    expect(denied.body.events.some((e: { details: { what?: string } }) => /balance of account/.test(e.details.what ?? ''))).toBe(true);
  });
});
