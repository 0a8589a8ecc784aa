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
    expect(res.headers.get('cgn-cost')).toMatch(/^\d+ micro$/);
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
