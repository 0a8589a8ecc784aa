/**
 * Alerts end to end: a node with alert rules, a real HTTP webhook receiver (node:http), real
 * miner processes. Killing every miner fires `miners_lost` (once, however many evaluations pass);
 * starting one resolves it; a receiver that fails at first gets the notice again until it takes
 * it; a queue kept waiting fires `queue_age` and resolves when it drains; an account spent down
 * below its share fires `account_low`; a cycle sealed and left unanchored fires `anchoring`, and
 * resolves once it is marked anchored; a burst of 5xx answers fires `error_rate`, which resolves
 * when the window slides past them. Every wait is on a condition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAlertConfig, type AlertNotice } from '@cgn/node';
import { ECHO, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

interface Received {
  status: number;
  id: string;
  body: AlertNotice & { source: Record<string, string> };
}

describe('alerts to a webhook', () => {
  let t: TestNode;
  let receiver: Server;
  const received: Received[] = [];
  /** Answers the receiver gives next (then 200). */
  const failNext: number[] = [];
  const miners: MinerProcess[] = [];
  const tmp = tempDir();
  const delivered = (rule: string, status: 'firing' | 'resolved') => received.filter((r) => r.status === 200 && r.body.rule === rule && r.body.status === status);

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString()));
      req.on('end', () => {
        const status = failNext.shift() ?? 200;
        received.push({ status, id: String(req.headers['cgn-alert-id']), body: JSON.parse(b) as Received['body'] });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/cgn-alerts`;
    t = await startTestNode({
      alerts: parseAlertConfig({
        webhook: { url, backoffMs: 20, retries: 5 },
        intervalS: 0.1,
        rules: {
          miners_lost: { minConnected: 1 },
          queue_age: { thresholdS: 0.5, forS: 0 },
          account_low: { belowFraction: 0.5 },
          anchoring: { lateS: 0.3 },
          error_rate: { threshold: 0.5, windowS: 1, minRequests: 10 },
        },
      }),
    });
    miners.push(spawnMiner(t.node.minerUrl, tmp.path, { name: 'first', dservices: [ECHO] }));
    await waitFor(() => minersOf(t.node).length === 1, 'the first miner to join');
    // The node started without miners: that episode fired and resolves now the miner is here.
    await waitFor(() => delivered('miners_lost', 'resolved').length === 1, 'the start-up miners_lost to resolve');
  });

  afterAll(async () => {
    for (const m of miners) m.kill('SIGKILL');
    await t.cleanup();
    receiver.close();
    tmp.cleanup();
  });

  it('fires miners_lost once when every miner is gone, retried until the receiver takes it, and resolves when one comes back', async () => {
    const before = received.length;
    failNext.push(503, 503);
    miners[0]!.kill('SIGKILL');
    await waitFor(() => delivered('miners_lost', 'firing').length === 2, 'miners_lost to fire again (after two refused attempts)');
    const fired = delivered('miners_lost', 'firing')[1]!;
    const attempts = received.slice(before).filter((r) => r.id === fired.id);
    expect(attempts.map((a) => a.status)).toEqual([503, 503, 200]);
    expect(fired.body).toMatchObject({ version: 1, severity: 'critical', key: 'miners_lost', value: 0, threshold: 1, endsAt: null, source: { node: 'node-local-1' } });
    expect(fired.body.summary).toMatch(/0 miners connected/);
    expect((t.node.status()['alerts'] as { firing: { key: string }[] }).firing.map((f) => f.key)).toContain('miners_lost');

    // Many evaluations pass while it holds: still one firing notice.
    const evaluations = 5;
    for (let i = 0; i < evaluations; i++) await t.node.alerts!.evaluate();
    expect(delivered('miners_lost', 'firing')).toHaveLength(2);

    // Two slots: the queue_age test's work must outnumber them however slowly its requests arrive.
    miners.push(spawnMiner(t.node.minerUrl, tmp.path, { name: 'second', dservices: [ECHO], slots: 2 }));
    await waitFor(() => delivered('miners_lost', 'resolved').length === 2, 'miners_lost to resolve');
    const resolved = delivered('miners_lost', 'resolved')[1]!;
    expect(resolved.id).toBe(fired.id);
    expect(resolved.body.endsAt).not.toBeNull();
    expect(Date.parse(resolved.body.endsAt!)).toBeGreaterThanOrEqual(Date.parse(fired.body.startsAt));
  });

  it('fires queue_age while work waits too long, and resolves once the queue drains', async () => {
    await waitFor(() => minersOf(t.node).length === 1, 'a miner');
    // More slow work than the miner has slots: the rest waits in the queue past 0.5 s. The miner
    // has few slots, so this holds when the requests reach the node one by one (with 64, the
    // default, they never queued on a loaded machine: the test process, which is the node too,
    // sent them slower than the miner answered them).
    const slots = t.node.broker.snapshot().miners[0]!.slots;
    expect(slots).toBe(2);
    const work = Array.from({ length: slots * 3 }, () => fetch(t.url('echo', '/slow?ms=1000'), { method: 'POST', body: 'x', headers: { authorization: `Bearer ${t.apiKey}` } }).then((r) => r.status));
    await waitFor(() => delivered('queue_age', 'firing').length >= 1, 'queue_age to fire');
    expect(delivered('queue_age', 'firing')[0]!.body.labels).toEqual({ dservice: 'echo', tier: 'open' });
    expect(new Set(await Promise.all(work))).toEqual(new Set([200]));
    // The work may wait in waves (on a loaded machine the requests reach the node spread out, so
    // the oldest wait can dip under the threshold between two batches): that is two episodes,
    // each fired and resolved under its own id. Every one that fired resolves once the queue drains.
    const episodes = (status: 'firing' | 'resolved') => delivered('queue_age', status).map((r) => r.id);
    await waitFor(() => episodes('firing').every((id) => episodes('resolved').includes(id)), 'every queue_age episode to resolve');
    expect(new Set(episodes('resolved'))).toEqual(new Set(episodes('firing')));
  });

  it('fires account_low when a prepaid account is spent below its share of its deposits', async () => {
    const account = 'test-account';
    const balance = () => t.node.ledger.store.balance(account) as { deposited: bigint; spent: bigint; available: bigint };
    const spentSoFar = balance().spent;
    expect(spentSoFar).toBeGreaterThan(0n);
    // Deposits a little over twice what it spent: just above half is left, nothing fires.
    t.node.ledger.store.credit(account, spentSoFar * 2n + spentSoFar / 5n, 'test deposit');
    await t.node.alerts!.evaluate();
    expect(delivered('account_low', 'firing')).toHaveLength(0);
    // Real work spends it down past half.
    for (let i = 0; i < 500 && delivered('account_low', 'firing').length === 0; i++) {
      const r = await fetch(t.url('echo', '/spend'), { method: 'POST', body: 'x', headers: { authorization: `Bearer ${t.apiKey}` } });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
      await t.node.alerts!.evaluate();
    }
    const fired = delivered('account_low', 'firing');
    expect(fired).toHaveLength(1);
    expect(fired[0]!.body.labels).toEqual({ account });
    const b = balance();
    expect(Number(b.available) / Number(b.deposited)).toBeLessThan(0.5);
    expect(fired[0]!.body.value).toBeLessThan(0.5);
  });

  it('fires anchoring when a sealed cycle stays unanchored (no settler), and resolves once it is anchored', async () => {
    const closed = await t.node.ledger.store.closeCycle();
    expect(closed.records).toBeGreaterThan(0);
    await waitFor(() => delivered('anchoring', 'firing').length === 1, 'anchoring to fire');
    const fired = delivered('anchoring', 'firing')[0]!;
    expect(fired.body.labels).toEqual({ cycle: String(closed.id) });
    expect(fired.body.summary).toMatch(/cgn settle/);
    // What the settler does once the root is on chain.
    await t.node.ledger.store.markAnchored(closed.id, `0x${'ab'.repeat(32)}`);
    await waitFor(() => delivered('anchoring', 'resolved').length === 1, 'anchoring to resolve');
    expect(delivered('anchoring', 'resolved')[0]!.id).toBe(fired.id);
  });

  it('fires error_rate on a burst of 5xx answers, and resolves when the window has slid past them', async () => {
    await waitFor(() => minersOf(t.node).length === 1, 'a miner');
    const statuses = await Promise.all(Array.from({ length: 20 }, () => fetch(t.url('echo', '/respond?status=500'), { headers: { authorization: `Bearer ${t.apiKey}` } }).then(async (r) => (await r.arrayBuffer(), r.status))));
    expect(new Set(statuses)).toEqual(new Set([500]));
    await waitFor(() => delivered('error_rate', 'firing').length === 1, 'error_rate to fire');
    expect(delivered('error_rate', 'firing')[0]!.body.value).toBeGreaterThan(0.5);
    await waitFor(() => delivered('error_rate', 'resolved').length === 1, 'error_rate to resolve');
  });
});
