/**
 * The account pages in a real browser (Debian's chromium, driven by playwright-core) against a
 * real central, a real node linked to it over mutual TLS, and the node's own ledger: a DApp
 * account's owner signs in, enrols TOTP from the page (the code computed from the otpauth URI the
 * page shows), signs in again with a recovery code, creates an API key (shown once; a reload does
 * not show it again), sends work with it through the node, sees the usage charts render, revokes
 * the key (the node then answers 401: central pushes the revocation), and sees invoices, balance
 * with how to top up, and the developer view. Screenshots go to test-output/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { URI } from 'otpauth';
import jsQR from 'jsqr';
import { ensureDevPki, ManualClock, setupDevNetwork, sqliteLedger, SqliteCentralStore, startTestCentral, TEST_ADMIN, type TestCentral } from '@cgn/central';
import { digestPackage } from '@cgn/miner';
import { runLedgerFromArgs } from '@cgn/ledger';
import { ECHO, ROOT, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from '../integration/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-output', 'screenshots');
/**
 * A slow fresh CI machine must not fail a correct test for being slow: nothing here is a timed
 * assertion, so the limits are far above what the tests need (the sign-in and TOTP test took 43 s
 * on this 2-core machine under load, close to vitest's default of 60 s; playwright's is 30 s per wait).
 */
const SETUP_MS = 180_000;
const TEST_MS = 240_000;
const WAIT_MS = 90_000;

/** Sessions and TOTP codes need real time in the browser and at central alike. */
class WallClock extends ManualClock {
  override now(): number {
    return Date.now();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const tmp = tempDir('cgn-account-ui-');
let central: TestCentral;
let t: TestNode;
let miner: MinerProcess;
let browser: Browser;
let page: Page;
let demo: { accountId: string; ownerLogin: string; ownerPassword: string };
const problems: string[] = [];

const atNode = async (key: string): Promise<number> =>
  (await fetch(t.url('echo'), { method: 'POST', body: 'hello', headers: { authorization: `Bearer ${key}` } })).status;

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `account-${name}.png`), fullPage: true });
}

async function go(hash: string, heading: string): Promise<void> {
  await page.getByRole('link', { name: heading === 'Your DServices' ? 'DServices and earnings' : heading }).click();
  await page.waitForURL(`**/ui/#${hash}`);
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  await expectLabelled();
}

/** Every form control on the page has a label, every button a name (what a screen reader reads out). */
async function expectLabelled(): Promise<void> {
  const unnamed = await page.evaluate(() => [
    ...[...document.querySelectorAll('input, select, textarea')].filter((el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute('aria-label')).map((el) => el.outerHTML.slice(0, 120)),
    ...[...document.querySelectorAll('button')].filter((b) => (b.textContent ?? '').trim() === '' && !b.getAttribute('aria-label')).map((b) => b.outerHTML.slice(0, 120)),
  ]);
  expect(unnamed).toEqual([]);
}

/** Draws the page's QR code SVG on a canvas in the browser and decodes the pixels with jsQR. */
async function readQr(p: Page): Promise<string | null> {
  const img = await p.evaluate(async () => {
    const svg = document.querySelector('svg.qr')!;
    const size = 300;
    // A data: URL, as the page's CSP allows images from 'self' and data: only.
    const url = `data:image/svg+xml;base64,${btoa(new XMLSerializer().serializeToString(svg))}`;
    const image = new Image(size, size);
    await new Promise((resolve, reject) => {
      image.onload = resolve;
      image.onerror = reject;
      image.src = url;
    });
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = size;
    const ctx = canvas.getContext('2d')!;
    ctx.drawImage(image, 0, 0, size, size);
    return { width: size, height: size, data: Array.from(ctx.getImageData(0, 0, size, size).data) };
  });
  return jsQR(Uint8ClampedArray.from(img.data), img.width, img.height)?.data ?? null;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install --no-install-recommends chromium; .ci/run installs it)`);
  }
  mkdirSync(SHOTS, { recursive: true });
  const pki = join(tmp.path, 'pki');
  const p = ensureDevPki(pki, ['node-local-1']);
  const linkPort = await freePort();
  const nodeDir = join(tmp.path, 'node');
  central = await startTestCentral({
    clock: new WallClock(),
    store: new SqliteCentralStore({ path: join(tmp.path, 'central.sqlite') }),
    link: { tls: { key: p.central.key, cert: p.central.cert, ca: p.ca }, statusIntervalMs: 200, backoffMaxMs: 500 },
    // The node's own ledger file, read-only: usage and invoices are what the node recorded.
    ledger: sqliteLedger(join(nodeDir, 'ledger.sqlite')),
  });
  const echoDigest = await digestPackage(ECHO);
  // No local DServices: the node serves what central approved, so the developer it credits is the
  // account that registered echo at central (the demo account).
  t = await startTestNode({ nodeId: 'node-local-1', dataDir: nodeDir, dservices: [], central: { port: linkPort, pkiDir: pki, keyTtlMs: 30_000 } });
  // A real miner process (it answers the node's probes and heartbeats like any miner).
  miner = spawnMiner(t.node.minerUrl, tmp.path, { slots: 2, args: ['--sandbox', 'none', '--no-control'] });
  const setup = await setupDevNetwork({
    centralUrl: central.url,
    admin: TEST_ADMIN,
    nodes: [{ id: 'node-local-1', urls: { work: t.node.workUrl, miner: t.node.minerUrl, status: t.node.statusUrl, central: t.node.centralLinkUrl! } }],
    dservices: [{ descriptor: JSON.parse(readFileSync(join(ECHO, 'dservice.json'), 'utf8')) as Record<string, unknown>, digest: echoDigest }],
  });
  demo = setup.demo;
  await waitFor(() => (t.node.status()['dservices'] as unknown[]).length === 1, 'central to approve echo on the node', WAIT_MS);
  await waitFor(() => t.node.broker.snapshot().miners.some((m) => m.id === miner.id), 'the miner to join the pool', WAIT_MS);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // An answer the page expects (401 mfa_required while signing in) is logged by the browser as a
    // failed resource; anything else (a CSP refusal, an exception) is a problem.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
}, SETUP_MS);

afterAll(async () => {
  await browser?.close();
  miner?.kill('SIGKILL');
  await miner?.exited;
  await t?.cleanup();
  await central?.stop().catch(() => undefined);
  tmp.cleanup();
});

describe('account pages in a browser', { timeout: TEST_MS }, () => {
  it('signs in and enrols TOTP from the QR page; the next sign-in needs the second factor', async () => {
    await page.goto(`${central.url}/ui/`);
    await page.getByLabel('Login').fill(demo.ownerLogin);
    await page.getByLabel('Password').fill(demo.ownerPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('nav-account').waitFor();

    await go('/account/security', 'Sign-in security');
    await expect(page.getByTestId('totp-state').textContent()).resolves.toBe('off');
    await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
    const qr = page.getByTestId('totp-qr');
    await qr.waitFor();
    expect(Number(await qr.getAttribute('data-modules'))).toBeGreaterThanOrEqual(21); // a QR code is at least 21 modules wide
    const uri = (await page.getByTestId('totp-uri').textContent())!;
    // The QR code as the browser draws it reads back as exactly the link shown in words.
    expect(await readQr(page)).toBe(uri);
    const totp = URI.parse(uri) as import('otpauth').TOTP;
    expect(totp.secret.base32).toBe(await page.getByTestId('totp-secret').textContent());
    await shot('totp-qr');
    await expectLabelled();
    await page.getByLabel('Code from your authenticator').fill(totp.generate());
    await page.getByRole('button', { name: 'Turn on two-factor sign-in' }).click();
    await page.getByTestId('recovery-codes').waitFor();
    await expect(page.getByTestId('totp-state').textContent()).resolves.toBe('on');
    await page.getByTestId('status').filter({ hasText: 'Two-factor sign-in is on' }).waitFor();
    const codes = (await page.locator('#recovery-codes').textContent())!.trim().split('\n');
    expect(codes.length).toBeGreaterThanOrEqual(8);
    await shot('totp-enrolled');
    expect((await central.admin.call('GET', `/v1/audit?type=totp_enabled&accountId=${demo.accountId}`)).body.events).toHaveLength(1);

    // Signed out, the password alone is not enough; a recovery code signs in.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Login').fill(demo.ownerLogin);
    await page.getByLabel('Password').fill(demo.ownerPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Use a recovery code instead' }).click();
    await page.getByLabel('Recovery code').fill(codes[0]!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('nav-account').waitFor();
  });

  let key = '';
  let prefix = '';
  it('creates a key with the keyboard, shows it once (not after a reload), and the key works at the node', async () => {
    await go('/account/keys', 'API keys');
    const name = page.getByLabel('Name of the new key');
    await name.fill('web shop');
    await name.press('Enter');
    await page.getByTestId('new-key').waitFor();
    key = (await page.getByTestId('new-key-value').textContent())!;
    expect(key).toMatch(/^cgn_/);
    await page.getByText('It is shown only this once').waitFor();
    const row = page.getByTestId('keys-table').getByRole('row', { name: /web shop/ });
    await row.waitFor();
    prefix = (await row.locator('code').textContent())!.replace('…', '');
    expect(key.startsWith(prefix)).toBe(true);
    await shot('key-created');

    await page.reload();
    await page.getByTestId('keys-table').getByRole('row', { name: /web shop/ }).waitFor();
    expect(await page.getByTestId('new-key').count()).toBe(0);
    expect(await page.content()).not.toContain(key);

    for (let i = 0; i < 3; i++) {
      const r = await fetch(t.url('echo'), { method: 'POST', body: 'hello', headers: { authorization: `Bearer ${key}` } });
      expect(r.status, await r.text()).toBe(200);
    }
  });

  it('usage charts render what the node recorded', async () => {
    await waitFor(async () => {
      const r = await central.admin.call('GET', `/v1/accounts/${demo.accountId}/usage/series`);
      return r.status === 200 && r.body.total.records.reduce((a: number, b: number) => a + b, 0) >= 3;
    }, 'the node to record the work in its ledger', WAIT_MS);
    await go('/account/usage', 'Usage');
    const cost = page.getByTestId('chart-cost');
    await cost.locator('canvas').waitFor();
    expect(Number(await cost.getAttribute('data-points'))).toBe(30);
    await page.getByTestId('chart-requests').locator('canvas').waitFor();
    await page.getByTestId('usage-totals').getByRole('cell', { name: 'echo', exact: true }).waitFor();
    await page.getByTestId('end-users').waitFor();
    await shot('usage');
    // Per end user, over billing cycles.
    await page.getByLabel('Group by').selectOption('end-user');
    await page.getByLabel('Over').selectOption('cycle');
    await page.getByRole('figure').filter({ hasText: 'Cost per end user' }).locator('canvas').waitFor();
  });

  it('revoking the key asks for confirmation; the node then refuses the key (401)', async () => {
    await go('/account/keys', 'API keys');
    // Keyboard: Revoke… asks first (focus on the confirmation; Escape backs out), then Enter revokes.
    // Keys are pressed only once the confirmation holds the focus, as a person sees it first: the
    // page moves the focus after it renders, and a key pressed before that goes to no button.
    const confirmFocused = page.locator(`[data-testid="revoke-confirm-${prefix}"]:focus`);
    await page.getByTestId(`revoke-${prefix}`).click();
    await confirmFocused.waitFor();
    await page.keyboard.press('Escape');
    await page.getByTestId(`revoke-${prefix}`).focus();
    await page.keyboard.press('Enter');
    await confirmFocused.waitFor();
    await page.keyboard.press('Enter');
    await page.getByTestId('status').filter({ hasText: 'revoked' }).waitFor();
    await page.getByTestId('keys-table').getByRole('row', { name: /web shop/ }).getByText(/^revoked/).waitFor();
    await waitFor(async () => (await atNode(key)) === 401, 'the node to refuse the revoked key', WAIT_MS);
    await shot('key-revoked');
  });

  it('invoices per cycle, balance with how to top up, and the developer view with its earnings', async () => {
    await go('/account/invoices', 'Invoices');
    await page.getByTestId('invoices').getByText('No billing cycle has closed yet.').waitFor();
    // The operator closes the node's billing cycle (as cgn ledger close-cycle does by hand).
    const err: string[] = [];
    expect(await runLedgerFromArgs(['close-cycle', '--ledger', join(tmp.path, 'node', 'ledger.sqlite')], { out: () => {}, err: (l) => err.push(l) }), err.join('\n')).toBe(0);
    await page.reload();
    const row = page.getByTestId('invoices').getByRole('row').nth(1);
    await row.getByRole('cell', { name: '3', exact: true }).waitFor(); // 3 requests
    await row.getByRole('button', { name: 'Show cycle 1' }).click();
    await page.getByTestId('invoice-1').getByRole('cell', { name: 'echo', exact: true }).waitFor();
    expect(await row.getByRole('button', { name: 'Hide cycle 1' }).getAttribute('aria-expanded')).toBe('true');
    await shot('invoices');

    await go('/account/balance', 'Balance and deposits');
    await page.getByTestId('balance-available').waitFor();
    await page.getByTestId('top-up').getByText(`npx cgn ledger link-address --account ${demo.accountId}`).waitFor();
    await shot('balance');

    await go('/account/developer', 'Your DServices');
    const echo = page.getByTestId('dservices').getByRole('row', { name: /echo@/ });
    await echo.getByText('approved').waitFor();
    await page.getByLabel('Payout address (your wallet, 0x…)').fill('0x' + 'ab'.repeat(20));
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('status').filter({ hasText: 'Payout address saved' }).waitFor();
    expect((await central.admin.call('GET', `/v1/accounts/${demo.accountId}`)).body.payoutAddress).toBe('0x' + 'ab'.repeat(20));
    await page.reload();
    const earned = page.getByTestId('earnings').getByRole('row').nth(1);
    await earned.getByRole('cell', { name: '1', exact: true }).waitFor(); // cycle 1 ...
    await earned.getByRole('cell', { name: '3', exact: true }).waitFor(); // ... paid the developer share of the 3 requests
    await page.getByTestId('revenue').getByRole('cell', { name: 'echo', exact: true }).waitFor();
    await page.getByTestId('chart-earnings').locator('canvas').waitFor();
    await shot('developer');
  });

  it("staff look at any account's pages; another user of the account is told the money pages are the owner's", async () => {
    expect((await central.admin.call('POST', `/v1/accounts/${demo.accountId}/users`, { login: 'demo-member', password: 'Demo-Memb3r-Passw0rd!' })).status).toBe(201);
    const signInAs = async (login: string, password: string): Promise<void> => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Login').fill(login);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByTestId('nav-account').waitFor();
    };
    await signInAs('demo-member', 'Demo-Memb3r-Passw0rd!');
    await page.goto(`${central.url}/ui/#/account/usage`);
    await page.getByRole('alert').filter({ hasText: "Only the account's owner (and CGN staff) may see the usage" }).waitFor();
    await signInAs(TEST_ADMIN.login, TEST_ADMIN.password);
    await page.goto(`${central.url}/ui/#/account/usage`);
    await page.getByLabel('Account id (staff: look at any account)').fill(demo.accountId);
    await page.getByRole('button', { name: 'Look at it' }).click();
    await page.waitForURL(`**/ui/#/account/usage?account=${demo.accountId}`);
    await page.getByTestId('usage-totals').getByRole('cell', { name: 'echo', exact: true }).waitFor();
    await page.getByTestId('chart-cost').locator('canvas').waitFor();
    await shot('staff-view');
    // The account's other pages keep the account.
    await page.getByRole('navigation', { name: "This account's other pages" }).getByRole('link', { name: 'Invoices' }).click();
    await page.waitForURL(`**/ui/#/account/invoices?account=${demo.accountId}`);
    await page.getByTestId('invoices').getByRole('button', { name: 'Show cycle 1' }).waitFor();
    expect(problems).toEqual([]);
  });
});
