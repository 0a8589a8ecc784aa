import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Broker, MinerState } from './broker.js';
import { brokerHarness } from './testing.js';

/** The sweep as a full scan: every miner, its oldest unacked unit decides. */
function fullScanSweep(broker: Broker): void {
  const b = broker as unknown as { miners: Map<string, MinerState>; deps: { now: () => number; closeMiner: (id: string, reason: string) => void } };
  const now = b.deps.now();
  for (const m of [...b.miners.values()]) {
    let head;
    for (const u of m.inFlight.values()) {
      if (!u.acked) {
        head = u;
        break;
      }
    }
    if (head !== undefined && now - head.sentAt > broker.options.ackTimeoutMs) {
      const reason = `no ack for work ${head.id} within ${broker.options.ackTimeoutMs} ms`;
      broker.removeMiner(m.id, reason);
      b.deps.closeMiner(m.id, reason);
    }
  }
}

type Op =
  | { k: 'join'; miner: number; slots: number }
  | { k: 'leave'; miner: number }
  | { k: 'submit' }
  | { k: 'ack'; pick: number }
  | { k: 'result'; pick: number }
  | { k: 'advance'; ms: number }
  | { k: 'sweep' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('join' as const), miner: fc.integer({ min: 0, max: 5 }), slots: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ k: fc.constant('leave' as const), miner: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ k: fc.constant('submit' as const) }),
  fc.record({ k: fc.constant('submit' as const) }),
  fc.record({ k: fc.constant('ack' as const), pick: fc.nat() }),
  fc.record({ k: fc.constant('result' as const), pick: fc.nat() }),
  fc.record({ k: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 80 }) }),
  fc.record({ k: fc.constant('sweep' as const) }),
);

describe('Broker.sweep (only miners sent work)', () => {
  it('drops exactly the miners, in the same order and with the same reasons, as a full scan', () => {
    let runsWithDrops = 0;
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 150, size: 'max' }), (ops) => {
        const heap = brokerHarness({ ackTimeoutMs: 100, maxAttempts: 3 });
        const scan = brokerHarness({ ackTimeoutMs: 100, maxAttempts: 3 });
        for (const o of ops) {
          for (const [h, sweep] of [[heap, () => heap.broker.sweep()], [scan, () => fullScanSweep(scan.broker)]] as const) {
            const work = h.sent.filter((s) => s.frame.t === 'work').map((s) => ({ miner: s.miner, id: (s.frame as { id: string }).id }));
            switch (o.k) {
              case 'join':
                h.broker.addMiner(`m${o.miner}`, h.ad(o.slots));
                break;
              case 'leave':
                h.broker.removeMiner(`m${o.miner}`, 'gone');
                break;
              case 'submit':
                h.submit();
                break;
              case 'ack':
              case 'result': {
                const w = work[o.pick % Math.max(1, work.length)];
                if (w === undefined) break;
                if (o.k === 'ack') h.broker.onAck(w.miner, w.id);
                else h.broker.onResult(w.miner, h.result(w.id));
                break;
              }
              case 'advance':
                h.advance(o.ms);
                break;
              case 'sweep':
                sweep();
                break;
            }
          }
          expect(heap.closed).toEqual(scan.closed);
          expect(heap.sent).toEqual(scan.sent);
          expect([...heap.outcomes]).toEqual([...scan.outcomes]);
          expect(heap.broker.queueOf('echo', 'open')).toEqual(scan.broker.queueOf('echo', 'open'));
        }
        if (heap.closed.length > 0) runsWithDrops++;
      }),
      { numRuns: 300 },
    );
    // The comparison means something only if ack timeouts happened.
    expect(runsWithDrops).toBeGreaterThan(30);
  });
});
