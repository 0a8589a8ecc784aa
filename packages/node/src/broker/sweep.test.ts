import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Broker, MinerState } from './broker.js';
import { ackDeadline, ackVerdict } from './ack-deadline.js';
import { brokerHarness } from './testing.js';

/** The sweep as a full scan: every miner, its oldest unacked unit and the ack rule decide. */
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
    const base = broker.options.ackTimeoutMs;
    if (head !== undefined && ackVerdict(now - head.sentAt, m.ackRtt, base, false) === 'drop') {
      const reason = `no ack for work ${head.id} within ${Math.round(now - head.sentAt)} ms (this miner's ack deadline: ${Math.round(ackDeadline(m.ackRtt, base))} ms)`;
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

describe('Broker.sweep (the ack rule of ack-deadline.ts)', () => {
  /** A harness whose miners' tunnels are alive exactly when `alive` says (the node's heardWithin). */
  function withTunnels(alive: (id: string) => boolean, ackTimeoutMs = 100) {
    return brokerHarness({ ackTimeoutMs }, { heardWithin: (id: string) => alive(id) } as Parameters<typeof brokerHarness>[1]);
  }

  it('keeps a late miner whose tunnel is alive, and drops it at the ceiling', () => {
    const h = withTunnels((id) => id === 'talking');
    h.broker.addMiner('talking', h.ad(1));
    h.broker.addMiner('silent', h.ad(1));
    h.submit();
    h.submit();
    h.advance(150);
    h.broker.sweep();
    expect(h.closed.map((c) => c.miner)).toEqual(['silent']);
    h.advance(250); // 400 ms: the ceiling, not past it
    h.broker.sweep();
    expect(h.closed.map((c) => c.miner)).toEqual(['silent']);
    h.advance(1);
    h.broker.sweep();
    expect(h.closed.map((c) => c.miner)).toEqual(['silent', 'talking']);
    expect(h.closed[1]!.reason).toMatch(/no ack for work w\d within 401 ms/);
  });

  it("gives a miner whose acks have been slow more than the base, from its own round trips", () => {
    const h = withTunnels(() => false);
    h.broker.addMiner('slow', h.ad(1));
    h.broker.addMiner('quick', h.ad(1));
    // Both answer in turns: 'slow' acks each unit after 30 or 95 ms (inside the base), 'quick' after 5.
    for (let i = 0; i < 6; i++) {
      const [s, q] = [h.submit(), h.submit()];
      h.advance(5);
      h.broker.onAck('quick', h.workSentTo('quick').includes(s) ? s : q);
      h.advance(i % 2 === 0 ? 25 : 90);
      h.broker.onAck('slow', h.workSentTo('slow').includes(s) ? s : q);
      for (const id of [s, q]) h.broker.onResult(h.workSentTo('slow').includes(id) ? 'slow' : 'quick', h.result(id));
    }
    h.submit();
    h.submit();
    h.advance(120);
    h.broker.sweep();
    expect(h.closed.map((c) => c.miner)).toEqual(['quick']);
    expect(h.closed[0]!.reason).toMatch(/ack deadline: 100 ms/);
  });

  it("starts a joining miner from the node's acks: after slow acks, a miner back from a drop is not held to the base", () => {
    const h = withTunnels(() => false);
    const deadlineOf = (id: string) => h.broker.ackDeadlineOf((h.broker as unknown as { miners: Map<string, MinerState> }).miners.get(id)!);
    h.broker.addMiner('first', h.ad(1));
    expect(deadlineOf('first')).toBe(100);
    for (const rtt of [30, 95, 40, 90, 35, 95]) {
      const id = h.submit();
      h.advance(rtt);
      h.broker.onAck('first', id);
      h.broker.onResult('first', h.result(id));
    }
    h.broker.addMiner('back', h.ad(1));
    expect(deadlineOf('back')).toBeGreaterThan(100);
    expect(deadlineOf('back')).toBe(deadlineOf('first'));
  });

  it('never leaves a unit unacked past the ceiling after a sweep, whatever the miners do and say', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 20, maxLength: 150, size: 'max' }), fc.func(fc.boolean()), (ops, alive) => {
        const h = withTunnels((id) => alive(id));
        const ceiling = 4 * h.broker.options.ackTimeoutMs;
        const b = h.broker as unknown as { miners: Map<string, MinerState> };
        for (const o of ops) {
          const work = h.sent.filter((s) => s.frame.t === 'work').map((s) => ({ miner: s.miner, id: (s.frame as { id: string }).id }));
          if (o.k === 'join') h.broker.addMiner(`m${o.miner}`, h.ad(o.slots));
          else if (o.k === 'leave') h.broker.removeMiner(`m${o.miner}`, 'gone');
          else if (o.k === 'submit') h.submit();
          else if (o.k === 'advance') h.advance(o.ms * 5);
          else if (o.k === 'sweep') {
            h.broker.sweep();
            const now = (h.broker as unknown as { deps: { now: () => number } }).deps.now();
            for (const m of b.miners.values()) for (const u of m.inFlight.values()) if (!u.acked) expect(now - u.sentAt).toBeLessThanOrEqual(ceiling);
          } else {
            const w = work[o.pick % Math.max(1, work.length)];
            if (w === undefined) continue;
            if (o.k === 'ack') h.broker.onAck(w.miner, w.id);
            else h.broker.onResult(w.miner, h.result(w.id));
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
