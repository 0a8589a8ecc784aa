/**
 * Which answers are charged, over real sockets (issue 15, 10): every answer the DService gave is
 * work done and charged, whatever its status (its 4xx and 5xx too), with `cgn-cost`; every error
 * the node makes itself (problem+json: 401, 402, 403, 404, 408, 413, 414, 429, 431, 502, 503,
 * 504) is free: no ledger record, no `cgn-cost`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedMiner, startTestNode, type TestNode } from './harness.js';

describe('what is billed', () => {
  let t: TestNode;
  let m: ScriptedMiner;
  let silent: ScriptedMiner;
  beforeAll(async () => {
    t = await startTestNode();
    // A DService that answers with the status the request names (its own 4xx and 5xx).
    m = new ScriptedMiner({ ack: true, answer: true, dservices: ['echo'], answerWith: (w) => ({ status: Number(/status=(\d{3})/.exec(w.path)?.[1] ?? 200) }) });
    await m.connect(t.node.minerUrl);
  });
  afterAll(async () => {
    m.ws.close();
    silent?.ws.close();
    await t.cleanup();
  });

  const rows = (): number => t.node.ledger.store.count();
  const call = (path: string, init: RequestInit = {}) =>
    fetch(t.url('echo', path), { method: 'POST', body: 'x', ...init, headers: { authorization: `Bearer ${t.apiKey}`, ...(init.headers as Record<string, string> | undefined) } });

  it("charges the DService's answers, whatever their status: 200, 400, 404, 500", async () => {
    for (const status of [200, 400, 404, 500]) {
      const before = rows();
      const res = await call(`/respond?status=${status}`);
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type') ?? '').not.toContain('problem+json');
      expect(res.headers.get('cgn-cost')).toMatch(/^\d+ uUSD$/);
      await res.arrayBuffer();
      expect(rows()).toBe(before + 1);
      const row = t.node.ledger.store.getRow(res.headers.get('cgn-work-id')!)!;
      expect(row.record.status).toBe(status);
      expect(row.record.pricing!.priceMicros).toBe(BigInt(res.headers.get('cgn-cost')!.split(' ')[0]!));
    }
  });

  it('never charges an error the node made itself', async () => {
    const free = async (status: number, res: Response | { status: number; headers: Headers }) => {
      expect(res.status).toBe(status);
      expect(res.headers.get('cgn-cost')).toBeNull();
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    };
    const before = rows();
    await free(401, await fetch(t.url('echo', '/'), { method: 'POST', body: 'x', headers: { authorization: 'Bearer cgn_wrong' } }));
    await free(404, await fetch(`${t.node.workUrl}nope/`, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${t.apiKey}` } }));
    await free(413, await call('/', { body: Buffer.alloc(1024 * 1024 + 1) }));
    await free(414, await call(`/${'a'.repeat(9000)}`));
    await free(431, await call('/', { headers: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x-h${i}`, 'v'])) }));
    // The deadline passes: the node answers 504 (a miner that acks and never answers).
    m.ws.close();
    silent = new ScriptedMiner({ ack: true, answer: false, dservices: ['echo'] });
    await silent.connect(t.node.minerUrl);
    await free(504, await call('/', { headers: { 'cgn-deadline-ms': '300' } }));
    expect(rows()).toBe(before);
  });

  it('never charges 402: work refused for want of funds', async () => {
    const p = await startTestNode({ billing: { enforceBalance: true } });
    const miner = new ScriptedMiner({ ack: true, answer: true });
    await miner.connect(p.node.minerUrl);
    try {
      const res = await fetch(p.url('echo'), { method: 'POST', body: 'x', headers: { authorization: `Bearer ${p.apiKey}` } });
      expect(res.status).toBe(402);
      expect(res.headers.get('cgn-cost')).toBeNull();
      expect(p.node.ledger.store.count()).toBe(0);
    } finally {
      miner.ws.close();
      await p.cleanup();
    }
  });
});
