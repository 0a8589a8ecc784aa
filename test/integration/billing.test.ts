/**
 * Billing on the request path: priced records, Idempotency-Key (charged once, same answer),
 * and 402 when the prepaid balance cannot cover the work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedMiner, startTestNode, type TestNode } from './harness.js';

const post = (t: TestNode, body: string, headers: Record<string, string> = {}) =>
  fetch(t.url('echo'), { method: 'POST', body, headers: { authorization: `Bearer ${t.apiKey}`, ...headers } });

describe('idempotency and pricing', () => {
  let t: TestNode;
  let m: ScriptedMiner;
  beforeAll(async () => {
    t = await startTestNode();
    m = new ScriptedMiner({ ack: true, answer: true });
    await m.connect(t.node.minerUrl);
  });
  afterAll(async () => {
    m.ws.close();
    await t.cleanup();
  });

  it('records every answered request with its price and split', async () => {
    const res = await post(t, 'priced');
    expect(res.status).toBe(200);
    const id = res.headers.get('cgn-work-id')!;
    expect(res.headers.get('cgn-cost')).toMatch(/^\d+ uUSD$/);
    const row = t.node.ledger.store.getRow(id);
    expect(row?.record.pricing?.priceMicros).toBe(BigInt(res.headers.get('cgn-cost')!.split(' ')[0]!));
  });

  it('a repeated Idempotency-Key gets the stored answer, runs once and is charged once', async () => {
    const key = `idem-${Date.now()}`;
    const first = await post(t, 'once', { 'idempotency-key': key });
    const again = await post(t, 'once', { 'idempotency-key': key });
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(await first.text());
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('cgn-work-id')).toBe(first.headers.get('cgn-work-id'));
    expect(m.workIds().filter((id) => id === first.headers.get('cgn-work-id')).length).toBe(1);
    const differentBody = await post(t, 'other', { 'idempotency-key': key });
    expect(differentBody.status).toBe(422);
    expect(((await differentBody.json()) as { code: string }).code).toBe('idempotency_mismatch');
  });

  it('refuses a malformed Idempotency-Key with 400', async () => {
    expect((await post(t, 'x', { 'idempotency-key': 'has space' })).status).toBe(400);
  });
});

describe('prepaid balance', () => {
  it('answers 402 when the balance cannot cover the work, and serves once credited', async () => {
    const t = await startTestNode({ billing: { enforceBalance: true } });
    const m = new ScriptedMiner({ ack: true, answer: true });
    await m.connect(t.node.minerUrl);
    try {
      const refused = await post(t, 'no money');
      expect(refused.status).toBe(402);
      expect(((await refused.json()) as { code: string }).code).toBe('payment_required');
      expect(m.workIds()).toEqual([]);
      t.node.ledger.store.credit('test-account', 10n ** 15n, 'test top-up');
      const ok = await post(t, 'paid');
      expect(ok.status).toBe(200);
      expect(await ok.text()).toBe('paid');
    } finally {
      m.ws.close();
      await t.cleanup();
    }
  });
});

describe('the bill the node can vouch for (issue 13)', () => {
  it('a paid retry at zero balance gets its stored answer; only new work is refused', async () => {
    const t = await startTestNode({ billing: { enforceBalance: true } });
    const m = new ScriptedMiner({ ack: true, answer: true });
    await m.connect(t.node.minerUrl);
    try {
      const probe = await post(t, 'paid once');
      expect(probe.status).toBe(402);
      const needed = BigInt(((await probe.json()) as { details: { needed: string } }).details.needed);
      // Exactly one reservation's worth: after the first charge the account cannot cover another.
      t.node.ledger.store.credit('test-account', needed, 'one request');
      const key = `paid-${Date.now()}`;
      const first = await post(t, 'paid once', { 'idempotency-key': key });
      expect(first.status).toBe(200);
      expect((await post(t, 'paid once')).status).toBe(402);
      const retry = await post(t, 'paid once', { 'idempotency-key': key });
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(await retry.text()).toBe('paid once');
      expect(m.workIds().length).toBe(1);
      // A new key is new work: refused, and its key stays free for after a top-up.
      const fresh = `fresh-${Date.now()}`;
      expect((await post(t, 'other', { 'idempotency-key': fresh })).status).toBe(402);
      t.node.ledger.store.credit('test-account', 10n ** 15n, 'top-up');
      expect((await post(t, 'other', { 'idempotency-key': fresh })).status).toBe(200);
    } finally {
      m.ws.close();
      await t.cleanup();
    }
  });

  it('a miner that lies about its CPU time is billed what the node measured, within the reservation', async () => {
    const t = await startTestNode({ billing: { enforceBalance: true } });
    const liar = new ScriptedMiner({ ack: true, answer: true, answerWith: () => ({ metering: { execUs: 1, cpuUs: 5_000_000_000 } }) });
    await liar.connect(t.node.minerUrl);
    try {
      t.node.ledger.store.credit('test-account', 10n ** 15n, 'top-up');
      const started = performance.now();
      const res = await post(t, 'lie', { 'cgn-deadline-ms': '2000' });
      const wallUs = (performance.now() - started) * 1000;
      expect(res.status).toBe(200);
      const row = t.node.ledger.store.getRow(res.headers.get('cgn-work-id')!) as { format: number; record: { cpuUs: number; execUs: number; reportedCpuUs?: number; pricing: { priceMicros: bigint } } };
      // The record keeps both figures, covered by the hash chain.
      expect(row.format).toBe(3);
      expect(row.record.reportedCpuUs).toBe(5_000_000_000);
      expect(t.node.ledger.store.verifyChain()).toMatchObject({ ok: true });
      // echo declares 1 CPU: at most the node's own measurement of the execution.
      expect(row.record.cpuUs).toBeLessThanOrEqual(row.record.execUs);
      expect(row.record.execUs).toBeLessThanOrEqual(wallUs);
      const ds = t.node.status()['dservices'] as { name: string }[];
      expect(ds.some((d) => d.name === 'echo')).toBe(true);
      const clips = t.node.status()['meteringClips'] as { total: number; byMiner: { miner: string; clips: number; reportedCpuUs: number }[] };
      expect(clips.total).toBe(1);
      expect(clips.byMiner[0]).toMatchObject({ miner: liar.id.slice(0, 16), clips: 1, reportedCpuUs: 5_000_000_000 });
      // Far below what the lie would have cost: 5,000 CPU-seconds at the default 1,000 micro per CPU-second.
      expect(row.record.pricing.priceMicros).toBeLessThan(5_000_000n);
      // A miner that keeps lying is quarantined and dropped at its third lie.
      await post(t, 'lie 2');
      const closed = liar.closed;
      await post(t, 'lie 3');
      const c = await closed;
      expect(c.code).toBe(4004);
      expect(c.reason).toMatch(/quarantined/);
      expect((t.node.status()['minerFaults'] as { miner: string; faults: number }[])[0]).toMatchObject({ miner: liar.id.slice(0, 16), faults: 3 });
    } finally {
      liar.ws.close();
      await t.cleanup();
    }
  });
});
