/**
 * The operator dashboard in a real browser (Debian's chromium, driven by playwright-core) against
 * a real central, a real node with alert rules and real miner processes: sign in through the page,
 * every miner listed, the charts drawn from central's samples, an alert shown, and the monitor
 * role (signed in with its TOTP code) without any button that changes things. Screenshots go to
 * test-output/screenshots/; the README's is docs/screenshots/dashboard.png (CGN_UPDATE_SCREENSHOTS=1
 * refreshes it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium, type Browser, type Page } from 'playwright-core';
import { generateMinerKey, minerIdOf } from '@cgn/protocol';
import { parseAlertConfig } from '@cgn/node';
import { ARGON2_TEST, SqliteCentralStore, TEST_ADMIN, sqliteLedger, startCentral, systemClock, testCall, totpCode, type RunningCentral } from '@cgn/central';
import { ECHO, ROOT, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from '../integration/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-output', 'screenshots');
/** expect.poll waits up to 1 s by default; a busy 2-core CI machine gets longer (still a condition, not a sleep). */
const POLL = { timeout: 60_000, interval: 50 };
/**
 * A slow fresh CI machine must not fail a correct test for being slow: nothing here is a timed
 * assertion, so the limits are far above what a quiet machine needs (the monitor's sign-in test
 * takes 19 s on this 2-core machine under load; vitest's default is 60 s, playwright's 30 s per wait).
 */
const SETUP_MS = 180_000;
const TEST_MS = 240_000;
const WAIT_MS = 90_000;
const ANCHOR_TX = `0x${'c0ffee'.repeat(10)}abcd`;
const MONITOR = { login: 'watcher', password: 'Watch3r-Passw0rd!' };

let t: TestNode;
let central: RunningCentral;
let receiver: Server;
let dir: { path: string; cleanup: () => void };
const miners: MinerProcess[] = [];
let browser: Browser;
let page: Page;
let monitorSecret = '';
const pageErrors: string[] = [];

async function signIn(p: Page, login: string, password: string, totp?: () => string): Promise<void> {
  await p.goto(`${central.url}/ui/`);
  await p.getByLabel('Login').fill(login);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Sign in' }).click();
  if (totp !== undefined) {
    const code = p.getByLabel('Authenticator code (TOTP)');
    await code.waitFor();
    await code.fill(totp());
    await p.getByRole('button', { name: 'Sign in' }).click();
  }
  await p.getByTestId('who').filter({ hasText: login }).waitFor();
}

/** Form controls without a label and buttons without a name on the page (accessibility: both must be none). */
function unlabelled(p: Page): Promise<string[]> {
  return p.evaluate(() => {
    const out: string[] = [];
    for (const el of document.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>('input, select, textarea')) {
      if (el.type !== 'hidden' && (el.labels === null || el.labels.length === 0) && !el.getAttribute('aria-label')) out.push(`${el.tagName} ${el.name || el.id}`);
    }
    for (const b of document.querySelectorAll('button')) if ((b.textContent ?? '').trim() === '' && !b.getAttribute('aria-label')) out.push(`button ${b.outerHTML.slice(0, 80)}`);
    return out;
  });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install --no-install-recommends chromium; .ci/run installs it)`);
  }
  mkdirSync(SHOTS, { recursive: true });
  dir = tempDir('cgn-dashboard-');
  // The node's alert notices go to this receiver; the rule "fewer than 3 miners" fires with the two here.
  receiver = createServer((req, res) => void req.resume().on('end', () => res.writeHead(200).end()));
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  t = await startTestNode({
    alerts: parseAlertConfig({
      webhook: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts` },
      intervalS: 0.2,
      rules: { miners_lost: { minConnected: 3 } },
    }),
  });
  const keys = [generateMinerKey(), generateMinerKey()];
  for (const [i, key] of keys.entries()) miners.push(spawnMiner(t.node.minerUrl, dir.path, { name: `rig-${i}`, key, dservices: [ECHO], slots: 2 }));
  await waitFor(() => t.node.broker.snapshot().miners.length === 2, 'both miners to join the pool', WAIT_MS);

  central = await startCentral({
    port: 0,
    store: new SqliteCentralStore({ path: ':memory:' }),
    argon2: ARGON2_TEST,
    clock: systemClock,
    bootstrapAdmin: TEST_ADMIN,
    ledger: sqliteLedger(join(t.dir, 'ledger.sqlite')),
    ops: { intervalMs: 300, explorerTxUrl: 'https://explorer.example/tx/{tx}' },
    http: { rateLimits: { perIp: { burst: 100_000, perSecond: 100_000 }, perPrincipal: { burst: 100_000, perSecond: 100_000 }, auth: { burst: 100_000, perSecond: 100_000 } } },
  });
  const login = await testCall(central.url, null, 'POST', '/v1/auth/login', TEST_ADMIN);
  const admin = (m: string, p: string, b?: unknown) => testCall(central.url, login.body.token, m, p, b);
  const sys = (await admin('GET', '/v1/me')).body.account.id as string;
  expect((await admin('POST', '/v1/nodes', {
    id: 'node-local-1', operatorAccount: sys, region: 'eu-west', lat: 48.8, lon: 2.3,
    urls: { work: t.node.workUrl, miner: t.node.minerUrl, status: t.node.statusUrl, central: 'wss://127.0.0.1:1' },
  })).status).toBe(201);
  // One miner registered at central by its operator account (so it has a name and a granted tier).
  const acc = await admin('POST', '/v1/accounts', { name: 'rigs-inc', kinds: ['miner', 'developer'], owner: { login: 'rigs-owner', password: 'Rigs-Own3r-Pw!' } });
  expect(acc.status).toBe(201);
  const owner = await testCall(central.url, null, 'POST', '/v1/auth/login', { login: 'rigs-owner', password: 'Rigs-Own3r-Pw!' });
  expect((await testCall(central.url, owner.body.token, 'POST', '/v1/miners', { publicKey: minerIdOf(keys[0]!.publicKey), name: 'rig-zero' })).status).toBe(201);
  // Two DService versions waiting for an administrator's approval.
  for (const version of ['1.0.0', '1.1.0']) {
    expect((await testCall(central.url, owner.body.token, 'POST', '/v1/dservices', { name: 'thumbs', version, digest: `sha256:${randomBytes(32).toString('hex')}` })).status).toBe(201);
  }
  // A monitor with TOTP enrolled.
  expect((await admin('POST', `/v1/accounts/${sys}/users`, { ...MONITOR, role: 'monitor' })).status).toBe(201);
  const mon = await testCall(central.url, null, 'POST', '/v1/auth/login', MONITOR);
  monitorSecret = (await testCall(central.url, mon.body.token, 'POST', '/v1/me/totp')).body.secret as string;
  expect((await testCall(central.url, mon.body.token, 'POST', '/v1/me/totp/confirm', { code: totpCode(monitorSecret, Date.now()) })).status).toBe(200);

  // Work over time, so the charts have points.
  let answered = 0;
  await waitFor(async () => {
    const r = await fetch(t.url('echo', '/'), { method: 'POST', body: `unit ${answered}`, headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    answered++;
    return central.ops!.samples('node-local-1').filter((s) => s.throughput > 0).length >= 3;
  }, 'central to have three samples with work in them', WAIT_MS);

  // A billing cycle closed and anchored, as the settler leaves it (the dashboard links its transaction).
  const closed = await t.node.ledger.store.closeCycle();
  expect(closed.records).toBeGreaterThan(0);
  await t.node.ledger.store.markAnchored(closed.id, ANCHOR_TX);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    // The password step of a TOTP user is answered 401 mfa_required by design; anything else counts.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) pageErrors.push(m.text());
  });
}, SETUP_MS);

afterAll(async () => {
  await browser?.close();
  for (const m of miners) m.kill('SIGKILL');
  await Promise.all(miners.map((m) => m.exited));
  await central?.stop();
  await t?.cleanup();
  receiver?.close();
  dir?.cleanup();
});

describe('operator dashboard in a browser', { timeout: TEST_MS }, () => {
  it('an administrator signs in through the page with the keyboard alone and sees the overview with charts drawn from the samples', async () => {
    await page.goto(`${central.url}/ui/`);
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('name')), POLL).toBe('login');
    expect(await unlabelled(page)).toEqual([]);
    await page.keyboard.type(TEST_ADMIN.login);
    await page.keyboard.press('Tab');
    await page.keyboard.type(TEST_ADMIN.password);
    await page.keyboard.press('Enter');
    await page.getByTestId('who').filter({ hasText: TEST_ADMIN.login }).waitFor();
    await expect.poll(() => page.url(), POLL).toContain('#/ops/overview');
    await page.getByTestId('tile-miners').filter({ hasText: '2' }).waitFor();
    for (const id of ['chart-throughput', 'chart-latency', 'chart-queue', 'chart-errors']) {
      const fig = page.getByTestId(id);
      await expect.poll(async () => Number(await fig.getAttribute('data-points')), POLL).toBeGreaterThanOrEqual(3);
      const box = await fig.locator('canvas').boundingBox();
      expect(box!.width, id).toBeGreaterThan(100);
      expect(box!.height, id).toBeGreaterThan(50);
    }
    // The throughput and latency lines are drawn: pixels of their stroke colours (the first series'
    // blue, #1f6feb) are on the canvas, and the throughput line leaves the zero line somewhere.
    const stroke = (id: string) => page.getByTestId(id).locator('canvas').evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const rows = new Set<number>();
      for (let i = 0; i < d.length; i += 4) {
        if (Math.abs(d[i]! - 0x1f) < 40 && Math.abs(d[i + 1]! - 0x6f) < 40 && Math.abs(d[i + 2]! - 0xeb) < 40 && d[i + 3]! > 128) rows.add(Math.floor(i / 4 / c.width));
      }
      return rows.size;
    });
    // A flat line covers a couple of pixel rows; one that rises covers many.
    await expect.poll(() => stroke('chart-throughput'), POLL).toBeGreaterThan(10);
    await expect.poll(() => stroke('chart-latency'), POLL).toBeGreaterThan(3);
    await page.getByTestId('nodes-table').getByText('node-local-1').waitFor();
    expect(await unlabelled(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, 'dashboard-overview.png'), fullPage: true });
    // The README's picture is refreshed on request only, so a test run leaves the clone as it was.
    if (process.env['CGN_UPDATE_SCREENSHOTS'] === '1') copyFileSync(join(SHOTS, 'dashboard-overview.png'), join(ROOT, 'docs', 'screenshots', 'dashboard.png'));
  });

  it('every miner is listed with its node, region and state; the administrator has the buttons that change things', async () => {
    await page.getByRole('link', { name: 'Miners' }).click();
    const table = page.getByTestId('miners-table');
    for (const m of miners) await table.locator(`[data-miner-id="${m.id}"]`).waitFor();
    await table.locator('[data-miner-id]', { hasText: 'rig-zero' }).waitFor();
    // Both with their node's region: central shows what it last read from the node, and a miner
    // the read missed (it was reconnecting) is listed meanwhile as a registered one, offline, with
    // no region; the next read lists it again.
    await expect.poll(() => table.getByText('eu-west').count(), POLL).toBe(2);
    await expect.poll(() => page.getByTestId('miner-tier').count(), POLL).toBe(1);
    expect(await unlabelled(page)).toEqual([]);
    await page.screenshot({ path: join(SHOTS, 'dashboard-miners.png'), fullPage: true });
    await page.getByRole('link', { name: 'Nodes and queues' }).click();
    await expect.poll(() => page.getByTestId('node-drain').count(), POLL).toBe(1);
    await page.getByTestId('errors-table').getByRole('cell', { name: 'node-local-1' }).waitFor();
  });

  it('the node\'s firing alert is shown', async () => {
    await page.getByRole('link', { name: 'Alerts' }).click();
    const row = page.getByTestId('alerts-table').getByRole('row').filter({ hasText: 'miners_lost' });
    await row.waitFor();
    expect(await row.textContent()).toContain('node:node-local-1');
    await page.screenshot({ path: join(SHOTS, 'dashboard-alerts.png'), fullPage: true });
  });

  it('the audit log shows the sign-ins', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByTestId('audit-table').getByRole('cell', { name: 'login_ok' }).first().waitFor();
    expect(await unlabelled(page)).toEqual([]);
  });

  it('an administrator approves a pending DService version from the DServices page', async () => {
    await page.getByRole('link', { name: 'DServices', exact: true }).click();
    const table = page.getByTestId('dservices-table');
    await table.getByRole('cell', { name: 'thumbs@1.0.0', exact: true }).waitFor();
    await table.getByRole('row').filter({ hasText: 'thumbs@1.0.0' }).getByRole('button', { name: 'Approve' }).click();
    await page.getByTestId('status').filter({ hasText: 'thumbs@1.0.0 approved' }).waitFor();
    await table.getByRole('cell', { name: 'thumbs@1.0.0', exact: true }).waitFor({ state: 'detached' });
    const d = await testCall(central.url, (await testCall(central.url, null, 'POST', '/v1/auth/login', TEST_ADMIN)).body.token, 'GET', '/v1/dservices/thumbs/1.0.0');
    expect(d.body.state).toBe('approved');
  });

  it('revenue per DService comes from the ledger', async () => {
    await page.getByRole('link', { name: 'Revenue and cycles' }).click();
    await page.getByTestId('revenue-table').getByRole('cell', { name: 'echo', exact: true }).waitFor();
    // The anchored cycle, its transaction a link to the explorer.
    const link = page.getByTestId('cycles-table').getByRole('link');
    await link.waitFor();
    expect(await link.getAttribute('href')).toBe(`https://explorer.example/tx/${ANCHOR_TX}`);
    expect(await page.getByTestId('cycles-table').getByText('anchored').count()).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'dashboard-billing.png'), fullPage: true });
  });

  it('a monitor signs in with its TOTP code and sees the pages without any button that changes things', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Login').waitFor();
    // The next step's code (accepted within the clock-skew window): the current step's was used to confirm enrolment.
    await signIn(page, MONITOR.login, MONITOR.password, () => totpCode(monitorSecret, Date.now() + 30_000));
    await page.goto(`${central.url}/ui/#/ops/miners`);
    const table = page.getByTestId('miners-table');
    for (const m of miners) await table.locator(`[data-miner-id="${m.id}"]`).waitFor();
    expect(await page.getByTestId('miner-tier').count()).toBe(0);
    expect(await page.getByRole('columnheader', { name: 'Actions' }).count()).toBe(0);
    await page.goto(`${central.url}/ui/#/ops/nodes`);
    await page.getByTestId('nodes-table').getByText('node-local-1').waitFor();
    expect(await page.getByTestId('node-drain').count()).toBe(0);
    await page.goto(`${central.url}/ui/#/ops/dservices`);
    await page.getByTestId('dservices-table').getByRole('cell', { name: 'thumbs@1.1.0', exact: true }).waitFor();
    expect(await page.getByTestId('ds-approve').count()).toBe(0);
    // Central keeps the audit log for administrators and operators: no link to it here.
    expect(await page.getByRole('link', { name: 'Audit log' }).count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'dashboard-monitor.png'), fullPage: true });
  });

  it('the pages ran without script errors or CSP violations', () => {
    expect(pageErrors).toEqual([]);
  });
});
