import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALERT_DEFAULTS, AlertConfigError, loadAlertConfig, parseAlertConfig, type AlertRules } from './config.js';
import { evaluateRules, type AlertInputs } from './rules.js';
import { AlertState } from './state.js';
import { WebhookNotifier } from './webhook.js';

const rules = (over: Partial<{ [K in keyof AlertRules]: Partial<AlertRules[K]> }> = {}): AlertRules =>
  parseAlertConfig({ webhook: { url: 'http://127.0.0.1:1/' }, rules: over }).rules;

const quiet: AlertInputs = {
  now: 1_000_000, queues: [{ dservice: 'echo', tier: 'open', oldestMs: 0 }], minersConnected: 2,
  requests: { answered: 100, serverErrors: 0 }, requestsWindowStart: { answered: 0, serverErrors: 0 }, unanchored: [], balances: [{ account: 'a', deposited: 1000n, available: 900n }],
};

describe('alert config', () => {
  it('fills every default and keeps what is given', () => {
    const c = parseAlertConfig({ webhook: { url: 'https://hooks.example/cgn' }, rules: { queue_age: { thresholdS: 9 }, anchoring: { enabled: false } } });
    expect(c.intervalS).toBe(ALERT_DEFAULTS.intervalS);
    expect(c.webhook).toMatchObject({ url: 'https://hooks.example/cgn', retries: 5, backoffMs: 500 });
    expect(c.rules.queue_age).toEqual({ ...ALERT_DEFAULTS.rules.queue_age, thresholdS: 9 });
    expect(c.rules.anchoring.enabled).toBe(false);
    expect(c.rules.miners_lost).toEqual(ALERT_DEFAULTS.rules.miners_lost);
  });

  it('names what is wrong: a missing url, an unknown rule or field, a value out of range', () => {
    expect(() => parseAlertConfig({})).toThrow(/webhook\.url is required/);
    expect(() => parseAlertConfig({ webhook: { url: 'ftp://x' } })).toThrow(/http:\/\/ or https:\/\//);
    expect(() => parseAlertConfig({ webhook: { url: 'http://x' }, rules: { queue_depth: {} } })).toThrow(/unknown field "queue_depth"/);
    expect(() => parseAlertConfig({ webhook: { url: 'http://x' }, rules: { queue_age: { treshold: 1 } } })).toThrow(/rules\.queue_age: unknown field "treshold" \(known: enabled, forS, severity, thresholdS\)/);
    expect(() => parseAlertConfig({ webhook: { url: 'http://x' }, rules: { error_rate: { threshold: 5 } } })).toThrow(/error_rate\.threshold: must be a number from 0 to 1/);
    expect(() => parseAlertConfig({ webhook: { url: 'http://x' }, rules: { error_rate: { severity: 'loud' } } })).toThrow(AlertConfigError);
  });

  it('reads YAML and JSON files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-alerts-'));
    try {
      writeFileSync(join(dir, 'a.yaml'), 'webhook:\n  url: http://127.0.0.1:9/hook\nintervalS: 5\nrules:\n  miners_lost:\n    minConnected: 3\n');
      expect(loadAlertConfig(join(dir, 'a.yaml')).rules.miners_lost.minConnected).toBe(3);
      writeFileSync(join(dir, 'a.json'), JSON.stringify({ webhook: { url: 'http://127.0.0.1:9/hook' }, intervalS: 2 }));
      expect(loadAlertConfig(join(dir, 'a.json')).intervalS).toBe(2);
      writeFileSync(join(dir, 'bad.json'), '{');
      expect(() => loadAlertConfig(join(dir, 'bad.json'))).toThrow(/is not valid JSON/);
      expect(() => loadAlertConfig(join(dir, 'none.json'))).toThrow(/cannot read the alert rules file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('alert rules', () => {
  it('say nothing when all is well', () => {
    expect(evaluateRules(rules(), quiet)).toEqual([]);
  });

  it('fire each on its condition', () => {
    const keys = (x: Partial<AlertInputs>, r = rules()) => evaluateRules(r, { ...quiet, ...x }).map((v) => v.key);
    expect(keys({ queues: [{ dservice: 'echo', tier: 'open', oldestMs: 3001 }, { dservice: 'mediagen', tier: 'open', oldestMs: 2999 }] })).toEqual(['queue_age/echo/open']);
    expect(keys({ requests: { answered: 120, serverErrors: 6 }, requestsWindowStart: { answered: 20, serverErrors: 0 } })).toEqual(['error_rate']);
    // 5 of 100 is not above 5%; too few answers say nothing.
    expect(keys({ requests: { answered: 100, serverErrors: 5 } })).toEqual([]);
    expect(keys({ requests: { answered: 10, serverErrors: 10 } })).toEqual([]);
    expect(keys({ requestsWindowStart: null, requests: { answered: 100, serverErrors: 100 } })).toEqual([]);
    expect(keys({ minersConnected: 0 })).toEqual(['miners_lost']);
    expect(keys({ minersConnected: 2 }, rules({ miners_lost: { minConnected: 3 } }))).toEqual(['miners_lost']);
    expect(keys({ unanchored: [{ cycle: 4, sealedAt: quiet.now - 1_801_000 }, { cycle: 5, sealedAt: quiet.now - 10_000 }] })).toEqual(['anchoring']);
    expect(keys({ unanchored: [{ cycle: 5, sealedAt: quiet.now - 10_000 }] })).toEqual([]);
    expect(keys({ balances: [{ account: 'a', deposited: 1000n, available: 99n }, { account: 'b', deposited: 1000n, available: 100n }, { account: 'never-funded', deposited: 0n, available: -5n }] })).toEqual(['account_low/a']);
    expect(keys({ minersConnected: 0 }, rules({ miners_lost: { enabled: false } }))).toEqual([]);
  });
});

describe('alert state', () => {
  it('fires once after forS, stays quiet while firing, resolves once', () => {
    const s = new AlertState();
    const v = evaluateRules(rules(), { ...quiet, minersConnected: 0 });
    const forS = () => 10;
    expect(s.step(0, v, forS)).toEqual([]);
    expect(s.step(9_999, v, forS)).toEqual([]);
    const fired = s.step(10_000, v, forS);
    expect(fired.map((n) => [n.status, n.key])).toEqual([['firing', 'miners_lost']]);
    expect(s.step(20_000, v, forS)).toEqual([]);
    expect(s.firing().map((f) => f.key)).toEqual(['miners_lost']);
    const resolved = s.step(30_000, [], forS);
    expect(resolved.map((n) => [n.status, n.key, n.id])).toEqual([['resolved', 'miners_lost', fired[0]!.id]]);
    expect(resolved[0]!.endsAt).toBe(new Date(30_000).toISOString());
    expect(s.step(40_000, [], forS)).toEqual([]);
  });

  it('forgets a condition that stopped before forS', () => {
    const s = new AlertState();
    const v = evaluateRules(rules(), { ...quiet, minersConnected: 0 });
    expect(s.step(0, v, () => 10)).toEqual([]);
    expect(s.step(5_000, [], () => 10)).toEqual([]);
    expect(s.step(12_000, v, () => 10)).toEqual([]);
  });
});

describe('webhook notifier', () => {
  let server: Server | null = null;
  afterEach(() => server?.close());

  const receiver = async (answer: (n: number) => number) => {
    const got: { id: string; body: Record<string, unknown>; status: number }[] = [];
    let n = 0;
    server = createServer((req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString()));
      req.on('end', () => {
        const status = answer(n++);
        got.push({ id: String(req.headers['cgn-alert-id']), body: JSON.parse(b) as Record<string, unknown>, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
  };
  const config = (url: string) => ({ ...parseAlertConfig({ webhook: { url, backoffMs: 5, retries: 3 } }).webhook });
  const notice = (status: 'firing' | 'resolved') => ({ id: 'miners_lost@t', status, rule: 'miners_lost' as const, key: 'miners_lost', severity: 'critical' as const, summary: 's', labels: {}, value: 0, threshold: 1, startsAt: 't', endsAt: null });
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(cond()).toBe(true);
  };

  it('retries 5xx with backoff and delivers in order', async () => {
    const r = await receiver((n) => (n < 2 ? 503 : 200));
    const w = new WebhookNotifier(config(r.url), { source: { node: 'n1' }, log: () => {} });
    w.send(notice('firing'));
    w.send(notice('resolved'));
    await until(() => w.counters.sent === 2);
    expect(r.got.map((g) => [g.status, g.body['status']])).toEqual([[503, 'firing'], [503, 'firing'], [200, 'firing'], [200, 'resolved']]);
    expect(r.got[2]!.body).toMatchObject({ version: 1, rule: 'miners_lost', source: { node: 'n1' } });
    expect(new Set(r.got.map((g) => g.id))).toEqual(new Set(['miners_lost@t']));
    expect(w.counters).toMatchObject({ sent: 2, attempts: 4, failedAttempts: 2, givenUp: 0 });
    await w.stop();
  });

  it('does not retry a receiver\'s 4xx, and gives up after the retries', async () => {
    const r = await receiver(() => 400);
    const w = new WebhookNotifier(config(r.url), { source: {}, log: () => {} });
    w.send(notice('firing'));
    await until(() => w.counters.givenUp === 1);
    expect(r.got).toHaveLength(1);
    const down = new WebhookNotifier(config('http://127.0.0.1:1/nobody'), { source: {}, log: () => {} });
    down.send(notice('firing'));
    await until(() => down.counters.givenUp === 1);
    expect(down.counters.attempts).toBe(4);
    await w.stop();
    await down.stop();
  });
});
