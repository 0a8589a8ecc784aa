/**
 * The node announces its tunnel frame limit in welcome and holds to it, and the limit leaves room
 * for every DService's largest answer: a result of exactly MediaGen's maxBodyBytes (the largest of
 * the node's DServices) reaches the client whole over the real node's tunnel, and the miner stays.
 * (A result larger than its DService's maxBodyBytes is refused whatever the frame limit:
 * result-limit.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resultFits, type WelcomeFrame } from '@cgn/protocol';
import { MEDIAGEN, ScriptedMiner, minersOf, startTestNode, waitFor } from './harness.js';

describe('tunnel frame limit', () => {
  it('is announced in welcome, leaves room for the largest DService answer, and that answer is carried', async () => {
    const t = await startTestNode();
    const largest = (JSON.parse(readFileSync(join(MEDIAGEN, 'dservice.json'), 'utf8')) as { maxBodyBytes: number }).maxBodyBytes;
    const m = new ScriptedMiner({ dservices: ['mediagen'], advert: { resources: { cpus: 1, memoryMb: 1024 } }, ack: true, answer: true, tamper: () => new Uint8Array(largest).fill(1) });
    try {
      await m.connect(t.node.minerUrl);
      const welcome = m.received.find((f): f is WelcomeFrame => f.t === 'welcome');
      expect(welcome?.maxFrameBytes).toBeGreaterThanOrEqual(largest);
      expect(resultFits(largest, welcome!.maxFrameBytes!)).toBe(true);
      await waitFor(() => minersOf(t.node).length === 1, 'the miner in the pool');
      const res = await fetch(t.url('mediagen', '/'), { method: 'POST', body: 'x', headers: { authorization: `Bearer ${t.apiKey}` } });
      expect(res.status, res.status === 200 ? '' : await res.clone().text()).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(largest);
      expect(minersOf(t.node)).toHaveLength(1);
    } finally {
      m.ws.close();
      await t.cleanup();
    }
  });
});
