/**
 * A miner's answer larger than the DService's own limit (its descriptor's maxBodyBytes; echo's is
 * 1 MiB), though well inside the tunnel's frame limit: the node refuses it with 502 problem+json
 * naming the limit and the size, and the client never gets the body. Honest miners refuse such an
 * answer themselves (the miner's DService client); this is a scripted miner that does not.
 */
import { describe, expect, it } from 'vitest';
import { ScriptedMiner, minersOf, startTestNode, waitFor } from './harness.js';

const LIMIT = 1024 * 1024;

describe("a result larger than the DService's maxBodyBytes", () => {
  it('is refused with 502 naming the limit; an answer at the limit passes', async () => {
    const t = await startTestNode();
    let oversize = true;
    const m = new ScriptedMiner({ ack: true, answer: true, slots: 1, tamper: () => new Uint8Array(oversize ? LIMIT + 1 : LIMIT) });
    await m.connect(t.node.minerUrl);
    try {
      await waitFor(() => minersOf(t.node).length === 1, 'the miner to join');
      const post = () => fetch(t.url('echo'), { method: 'POST', body: 'x', headers: { authorization: `Bearer ${t.apiKey}` } });
      const refused = await post();
      expect(refused.status).toBe(502);
      expect(refused.headers.get('content-type')).toBe('application/problem+json');
      expect(refused.headers.get('cgn-cost')).toBeNull();
      const problem = (await refused.json()) as { code: string; detail: string; details: { limit: number; bytes: number } };
      expect(problem.code).toBe('miner_failed');
      expect(problem.details).toEqual({ limit: LIMIT, bytes: LIMIT + 1 });
      expect(problem.detail).toContain(`maxBodyBytes ${LIMIT}`);
      oversize = false;
      const ok = await post();
      expect(ok.status).toBe(200);
      expect((await ok.arrayBuffer()).byteLength).toBe(LIMIT);
      expect(m.ws.readyState).toBe(m.ws.OPEN);
    } finally {
      m.ws.close();
      await t.cleanup();
    }
  });
});
