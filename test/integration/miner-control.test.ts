/**
 * The miner control app over a real miner process (`cgn miner`) and a real node: pausing through
 * its HTTP API takes the miner out of the node's pool while the work in flight still completes;
 * resuming brings it back and it takes work again; stop and start; the token, the Host check and
 * the settings' validation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

let t: TestNode;
let dir: { path: string; cleanup: () => void };
let m: MinerProcess;
let base = '';
let token = '';

const auth = (): Record<string, string> => ({ authorization: `Bearer ${token}` });
const api = (path: string, init: RequestInit = {}): Promise<Response> => fetch(`${base}${path}`, { ...init, headers: { ...auth(), ...(init.headers as Record<string, string> | undefined) } });
const state = async (): Promise<{ state: string; hold: string | null; inFlight: number; work: { total: number; byDService: Record<string, number> }; dservices: { name: string }[] }> =>
  (await (await api('api/status')).json()) as never;
const poolEntry = (): { id: string; draining: boolean } | undefined => t.node.broker.snapshot().miners.find((x) => x.id === m.id);
const inPool = (): boolean => poolEntry()?.draining === false;
const work = (path: string, body = 'x'): Promise<Response> => fetch(t.url('echo', path), { method: 'POST', body, headers: { authorization: `Bearer ${t.apiKey}` } });

/** A GET with a Host header of our choosing (fetch does not let one set it). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host, ...auth() } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  t = await startTestNode();
  dir = tempDir('cgn-control-');
  m = spawnMiner(t.node.minerUrl, dir.path, { slots: 2, args: ['--control-port', '0', '--sandbox', 'none', '--metrics-port', '0'] });
  await waitFor(() => /miner control app: (http:\S+)/.test(m.stderr()), 'the miner to print its control URL');
  const printed = /miner control app: (http:\S+)/.exec(m.stderr())![1]!;
  [base, token] = printed.split('#token=') as [string, string];
  await waitFor(inPool, 'the miner to join the pool');
}, 180_000);

afterAll(async () => {
  m?.kill('SIGKILL');
  await m?.exited;
  await t?.cleanup();
  dir?.cleanup();
});

describe('miner control app (real miner process)', { timeout: 180_000 }, () => {
  it('serves on loopback, with the token from its 0600 file, in the URL fragment', () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const keyFile = readdirKey();
    const tokenFile = `${keyFile}.control-token`;
    expect(readFileSync(tokenFile, 'utf8').trim()).toBe(token);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
  });

  it('wrong or missing token: 401 JSON; a foreign Host: refused; the page has a strict CSP and no CORS', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token-wrong-token' }, { authorization: `Basic ${token}` }]) {
      const r = await fetch(`${base}api/status`, { headers });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/application\/json/);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
    const r = await fetch(`${base}api/pause`, { method: 'POST', headers: { authorization: 'Bearer nope' } });
    expect(r.status).toBe(401);
    expect(inPool()).toBe(true);

    const port = new URL(base).port;
    expect(await getWithHost(`${base}api/status`, `evil.example:${port}`)).toBe(421);
    expect(await getWithHost(`${base}`, `attacker.test`)).toBe(421);
    expect(await getWithHost(`${base}api/status`, `localhost:${port}`)).toBe(200);

    const page = await fetch(base, { headers: { origin: 'http://evil.example' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self' 'sha256-[^']+'(;|$)/);
    expect(page.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await fetch(`${base}api/pause`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${base}ui/vendor/preact.module.js`)).status).toBe(200);
    // The log from the first line on (the miner's start), not only what came after the app.
    const logs = (await (await api('api/logs')).json()) as { lines: { msg: string }[] };
    expect(logs.lines.map((l) => l.msg)).toContain('miner started');
  });

  it('pause: out of the node pool, the work in flight completes; resume: back, and it takes work again', async () => {
    const slow = work('/slow?ms=1500', 'in flight');
    await waitFor(async () => (await state()).inFlight === 1, 'the slow unit to run on the miner');

    const paused = await api('api/pause', { method: 'POST' });
    expect(paused.status).toBe(200);
    await waitFor(() => poolEntry()?.draining === true, "the node to take the miner out of its pool");
    const during = await state();
    expect(during.hold).toBe('owner');
    expect(['draining', 'paused']).toContain(during.state);

    const res = await slow;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('in flight');
    await waitFor(async () => (await state()).state === 'paused', 'paused once the work finished');
    expect(poolEntry()?.draining).toBe(true);
    const before = (await state()).work.total;

    const resumed = await api('api/resume', { method: 'POST' });
    expect(resumed.status).toBe(200);
    await waitFor(inPool, 'the miner back in the pool');
    const again = await work('/', 'after resume');
    expect(again.status).toBe(200);
    expect(await again.text()).toBe('after resume');
    await waitFor(async () => (await state()).work.total === before + 1, 'the new unit counted');
    expect((await state()).work.byDService['echo']).toBe(before + 1);
  });

  it('settings: refused with the field named; saved and applied (CPU ceiling, time windows)', async () => {
    const bad = await api('api/settings', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ windows: ['tonight'] }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: 'bad_settings', field: 'windows[0]' } });
    const notJson = await api('api/settings', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(notJson.status).toBe(400);
    // Hostile or careless requests get a clear 4xx and the app keeps serving.
    const huge = await api('api/settings', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ windows: ['x'.repeat(20_000)] }) });
    expect(huge.status).toBe(413);
    expect((await api('api/settings', { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: '{}' })).status).toBe(415);
    expect((await api('api/pause')).status).toBe(405);
    expect((await api('api/nothing-here')).status).toBe(404);
    expect((await fetch(`${base}ui/../../etc/passwd`)).status).toBe(404);
    expect((await api('api/logs?after=-5')).status).toBe(200);
    expect((await api('api/status')).status).toBe(200);

    // A window that excludes now: the miner leaves the pool on its own.
    const now = new Date();
    const hhmm = (d: Date): string => `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
    const later = new Date(now.getTime() + 2 * 3600_000);
    const laterEnd = new Date(now.getTime() + 3 * 3600_000);
    const ok = await api('api/settings', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ windows: [`${hhmm(later)}-${hhmm(laterEnd)}`] }) });
    expect(ok.status).toBe(200);
    await waitFor(() => poolEntry()?.draining === true, 'the node to take the miner out (outside its window)');
    expect((await state()).hold).toBe('schedule');
    const saved = JSON.parse(readFileSync(`${readdirKey()}.control.json`, 'utf8')) as { windows: string[] };
    expect(saved.windows).toHaveLength(1);

    const back = await api('api/settings', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ windows: [] }) });
    expect(back.status).toBe(200);
    await waitFor(inPool, 'the miner back in the pool (no window)');
  });

  it('stop: the node loses the miner and the app keeps serving; start: it is back', async () => {
    const stop = await api('api/stop', { method: 'POST' });
    expect(stop.status).toBe(202);
    await waitFor(() => poolEntry() === undefined, 'the miner to leave the node');
    await waitFor(async () => (await state()).state === 'stopped', 'the app to say stopped');
    expect((await api('api/pause', { method: 'POST' })).status).toBe(409);
    expect((await api('api/start', { method: 'POST' })).status).toBe(202);
    await waitFor(inPool, 'the restarted miner back in the pool', 60_000);
    const r = await work('/', 'after restart');
    expect(r.status).toBe(200);
    // Its Prometheus metrics follow the restarted miner.
    const metricsUrl = /"metricsUrl":"(http:[^"]+)"/.exec(m.stderr())![1]!;
    await waitFor(async () => /^cgn_miner_connected\{[^}]*\} 1$/m.test(await (await fetch(metricsUrl)).text()), 'the metrics to show the restarted miner connected');
  });
});

describe('reputation', { timeout: 180_000 }, () => {
  it("shows the node's report of how it sees the miner, not printed on its console", async () => {
    await waitFor(async () => ((await (await api('api/status')).json()) as { reputation: { known: boolean } }).reputation.known, "the node's reputation notice", 60_000);
    const st = (await (await api('api/status')).json()) as { reputation: { reason: string } };
    expect(st.reputation.reason).toMatch(/^node \S+: \d+ units completed, \d+ failed here/);
    expect(m.stderr()).not.toMatch(/units completed/);
  });
});

describe('earnings per cycle', { timeout: 180_000 }, () => {
  it("shows what the node announces each closed cycle pays the miner, and says unclaimed is unknown without a chain", async () => {
    // Only the paid miner takes work: the first one is paused.
    expect((await api('api/pause', { method: 'POST' })).status).toBe(200);
    await waitFor(() => poolEntry()?.draining === true, 'the first miner out of the pool');
    const address = `0x${'5a'.repeat(20)}`;
    const paid = spawnMiner(t.node.minerUrl, dir.path, { name: 'paid', args: ['--control-port', '0', '--sandbox', 'none', '--payout-address', address] });
    try {
      await waitFor(() => /miner control app: (http:\S+)/.test(paid.stderr()), 'the paid miner to print its control URL');
      const [pbase, ptoken] = /miner control app: (http:\S+)/.exec(paid.stderr())![1]!.split('#token=') as [string, string];
      const status = async (): Promise<{ earnings: { perCycle: { cycleId: string; amount: string }[]; unclaimed: string; payoutAddress: string } }> =>
        (await (await fetch(`${pbase}api/status`, { headers: { authorization: `Bearer ${ptoken}` } })).json()) as never;
      await waitFor(() => t.node.broker.snapshot().miners.some((x) => x.id === paid.id && !x.draining), 'the paid miner in the pool');
      const res = await work('/', 'paid work');
      expect(res.status).toBe(200);
      expect(t.node.ledger.store.getRow(res.headers.get('cgn-work-id')!)!.record.miner).toBe(paid.id);
      const cycle = t.node.ledger.store.closeCycle();
      await waitFor(async () => (await status()).earnings.perCycle.some((c) => c.cycleId === String(cycle.id)), "the cycle's earnings in the paid miner's app", 60_000);
      const st = await status();
      expect(st.earnings.payoutAddress).toBe(address);
      expect(Number(st.earnings.perCycle.find((c) => c.cycleId === String(cycle.id))!.amount)).toBeGreaterThan(0);
      expect(st.earnings.unclaimed).toMatch(/no chain configured/);
      expect(paid.stderr()).toContain(`cgn miner: billing cycle ${cycle.id} closed: this miner is paid`);
    } finally {
      paid.kill('SIGKILL');
      await paid.exited;
    }
  });
});

function readdirKey(): string {
  const m2 = /--key (\S+)/.exec(m.proc.spawnargs.join(' '));
  return m2![1]!;
}
