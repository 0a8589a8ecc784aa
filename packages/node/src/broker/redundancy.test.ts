import { describe, expect, it } from 'vitest';
import type { CgnError } from '@cgn/protocol';
import { decide, resultHashHex, type DisputeVerdict } from './redundancy.js';
import { brokerHarness } from './testing.js';
import type { VerificationPolicy } from './verification.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s));

describe('the redundancy rule', () => {
  const r = (minerId: string, resultHash: string) => ({ minerId, resultHash });

  it('two equal results agree', () => {
    expect(decide([r('a', 'h1'), r('b', 'h1')])).toEqual({ kind: 'agree', hash: 'h1' });
  });

  it('two different results need a third', () => {
    expect(decide([r('a', 'h1'), r('b', 'h2')])).toEqual({ kind: 'need-third' });
  });

  it('the third result makes a majority and names the odd one out', () => {
    expect(decide([r('a', 'h1'), r('b', 'h2'), r('c', 'h1')])).toEqual({ kind: 'majority', hash: 'h1', cheaters: ['b'] });
    expect(decide([r('a', 'h1'), r('b', 'h2'), r('c', 'h2')])).toEqual({ kind: 'majority', hash: 'h2', cheaters: ['a'] });
  });

  it('three different results settle nothing', () => {
    expect(decide([r('a', 'h1'), r('b', 'h2'), r('c', 'h3')])).toEqual({ kind: 'split' });
  });

  it('hashes status and body the way miners do', () => {
    expect(resultHashHex(200, bytes('x'))).not.toBe(resultHashHex(201, bytes('x')));
    expect(resultHashHex(200, bytes('x'))).toBe(resultHashHex(200, bytes('x')));
    // sha256(0x00c8 || "x")
    expect(resultHashHex(200, bytes('x'))).toMatch(/^[0-9a-f]{64}$/);
  });
});

function threeMiners(sampleRate = 1, random?: () => number) {
  const disputes: DisputeVerdict[] = [];
  const h = brokerHarness({ redundancy: sampleRate }, { onDispute: (v) => disputes.push(v), wallNow: () => 1_700_000_000_000, ...(random ? { random } : {}) });
  for (const m of ['m1', 'm2', 'm3']) h.broker.addMiner(m, h.ad(1));
  /** Which miner got replica `n` of `id`. */
  const holder = (id: string, n: number) => ['m1', 'm2', 'm3'].find((m) => h.workSentTo(m).includes(`${id}~${n}`));
  return { ...h, disputes, holder };
}

describe('Broker with redundant open-tier execution', () => {
  it('runs an open-tier unit on two distinct miners and answers once when the results agree', () => {
    const h = threeMiners();
    const id = h.submit({ body: bytes('in') });
    const a = h.holder(id, 1)!;
    const b = h.holder(id, 2)!;
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(a).not.toBe(b);
    h.broker.onResult(a, h.result(`${id}~1`, 200, bytes('out')));
    expect(h.outcomes.has(id)).toBe(false); // one result is not enough
    h.broker.onResult(b, h.result(`${id}~2`, 200, bytes('out')));
    const o = h.outcomes.get(id);
    expect(o?.kind).toBe('result');
    if (o?.kind === 'result') {
      expect(Buffer.from(o.result.body).toString()).toBe('out');
      expect(o.minerId).toBe(a);
    }
    expect(h.broker.snapshot().redundancy).toMatchObject({ runs: 1, agreed: 1, disputes: 0, extraExecutions: 1, extraCpuUs: 1 });
    expect(h.broker.pending).toBe(0);
    expect(h.disputes).toEqual([]);
    expect(h.closed).toEqual([]);
  });

  it('on a mismatch runs a third miner, answers with the majority and drops the odd one out', () => {
    const h = threeMiners();
    const id = h.submit({ body: bytes('in'), path: '/p?q=1' });
    const honest = h.holder(id, 1)!;
    const cheater = h.holder(id, 2)!;
    h.broker.onResult(honest, h.result(`${id}~1`, 200, bytes('right')));
    h.broker.onResult(cheater, h.result(`${id}~2`, 200, bytes('wrong')));
    expect(h.outcomes.has(id)).toBe(false);
    const third = h.holder(id, 3)!;
    expect(third).toBeDefined();
    expect([honest, cheater]).not.toContain(third);
    h.broker.onResult(third, h.result(`${id}~3`, 200, bytes('right')));

    const o = h.outcomes.get(id);
    expect(o?.kind).toBe('result');
    if (o?.kind === 'result') expect(Buffer.from(o.result.body).toString()).toBe('right');
    expect(h.closed.map((c) => c.miner)).toEqual([cheater]);
    expect(h.closed[0]!.reason).toMatch(/proven wrong result/);
    expect(h.broker.snapshot().miners.map((m) => m.id)).not.toContain(cheater);
    expect(h.disputes).toHaveLength(1);
    const v = h.disputes[0]!;
    expect(v).toMatchObject({ workId: id, dservice: 'echo', account: 'acct', cheater, majorityHash: resultHashHex(200, bytes('right')), receivedAt: 1_700_000_000_000 });
    expect(v.replicas.map((r) => r.minerId)).toEqual([honest, cheater, third]);
    expect(v.replicas.map((r) => r.resultHash)).toEqual([resultHashHex(200, bytes('right')), resultHashHex(200, bytes('wrong')), resultHashHex(200, bytes('right'))]);
    expect(v.requestHash).toMatch(/^[0-9a-f]{64}$/);
    expect(h.broker.snapshot().redundancy).toMatchObject({ runs: 1, agreed: 0, disputes: 1, cheatersProven: 1, extraExecutions: 2 });
  });

  it('a dropped cheater gets no more open-tier work', () => {
    const h = threeMiners();
    const id = h.submit();
    const [a, b] = [h.holder(id, 1)!, h.holder(id, 2)!];
    h.broker.onResult(a, h.result(`${id}~1`, 200, bytes('right')));
    h.broker.onResult(b, h.result(`${id}~2`, 200, bytes('wrong')));
    h.broker.onResult(h.holder(id, 3)!, h.result(`${id}~3`, 200, bytes('right')));
    const before = h.workSentTo(b).length;
    for (let i = 0; i < 4; i++) h.submit();
    expect(h.workSentTo(b).length).toBe(before);
  });

  it('answers 502 result_unconfirmed when no third miner settles a mismatch before the deadline', () => {
    const h = brokerHarness({ redundancy: 1 });
    h.broker.addMiner('m1', h.ad(1));
    h.broker.addMiner('m2', h.ad(1));
    const id = h.submit({ timeoutMs: 5000 });
    h.broker.onResult('m1', h.result(`${id}~1`, 200, bytes('a')));
    h.broker.onResult('m2', h.result(`${id}~2`, 200, bytes('b')));
    // The third replica may go to neither m1 nor m2, even though both are free now.
    expect(h.workSentTo('m1')).toEqual([`${id}~1`]);
    expect(h.workSentTo('m2')).toEqual([`${id}~2`]);
    h.advance(5001);
    const o = h.outcomes.get(id);
    expect(o?.kind).toBe('error');
    expect((o as { error: CgnError }).error.code).toBe('result_unconfirmed');
    expect((o as { error: CgnError }).error.httpStatus).toBe(502);
    expect(h.closed).toEqual([]);
    expect(h.broker.pending).toBe(0);
  });

  it('blames nobody when three miners return three different results', () => {
    const h = threeMiners();
    const id = h.submit();
    h.broker.onResult(h.holder(id, 1)!, h.result(`${id}~1`, 200, bytes('a')));
    h.broker.onResult(h.holder(id, 2)!, h.result(`${id}~2`, 200, bytes('b')));
    h.broker.onResult(h.holder(id, 3)!, h.result(`${id}~3`, 200, bytes('c')));
    expect((h.outcomes.get(id) as { error: CgnError }).error.code).toBe('result_unconfirmed');
    expect(h.closed).toEqual([]);
    expect(h.disputes).toHaveLength(1);
    expect(h.disputes[0]).toMatchObject({ cheater: null, majorityHash: null });
  });

  it('never answers a single result: without a second miner the unit ends with 504', () => {
    const h = brokerHarness({ redundancy: 1 });
    h.broker.addMiner('m1', h.ad(2));
    const id = h.submit({ timeoutMs: 3000 });
    expect(h.workSentTo('m1')).toEqual([`${id}~1`]);
    h.broker.onResult('m1', h.result(`${id}~1`));
    h.advance(3001);
    const o = h.outcomes.get(id) as { kind: 'error'; error: CgnError };
    expect(o.kind).toBe('error');
    expect(o.error.code).toBe('deadline_exceeded');
    expect(o.error.message).toMatch(/no two miners agreed/);
  });

  it('a replica waiting for a distinct miner does not keep the free miner from other work', () => {
    const h = brokerHarness({ redundancy: 1 });
    h.broker.addMiner('m1', h.ad(2));
    const w1 = h.submit();
    const w2 = h.submit();
    // Both second replicas wait for a miner other than m1; m1 still takes the next unit.
    expect(h.workSentTo('m1')).toEqual([`${w1}~1`, `${w2}~1`]);
    h.broker.addMiner('m2', h.ad(1));
    expect(h.workSentTo('m2')).toEqual([`${w1}~2`]);
    h.broker.onResult('m1', h.result(`${w1}~1`));
    h.broker.onResult('m2', h.result(`${w1}~2`));
    expect(h.outcomes.get(w1)?.kind).toBe('result');
    expect(h.workSentTo('m2')).toEqual([`${w1}~2`, `${w2}~2`]);
    h.broker.onResult('m1', h.result(`${w2}~1`));
    h.broker.onResult('m2', h.result(`${w2}~2`));
    expect(h.outcomes.get(w2)?.kind).toBe('result');
    expect(h.broker.snapshot().redundancy).toMatchObject({ runs: 2, agreed: 2 });
  });

  it('checks every unit of a new miner, those of a proven miner at the floor, and a mismatch starts over', () => {
    let draws: number[] = [];
    const h = brokerHarness({ redundancy: 0.25 }, { random: () => draws.shift() ?? 0 });
    for (const m of ['m1', 'm2']) h.broker.addMiner(m, h.ad(8));
    const replicas = (id: string) => ['m1', 'm2', 'm3'].flatMap((m) => h.workSentTo(m)).filter((s) => s.startsWith(`${id}~`));
    const answered = new Set<string>();
    const answerAll = (id: string, body = 'same') => {
      for (const m of ['m1', 'm2', 'm3']) {
        for (const w of h.workSentTo(m)) {
          if (!w.startsWith(`${id}~`) || answered.has(w)) continue;
          answered.add(w);
          h.broker.onResult(m, h.result(w, 200, bytes(body)));
        }
      }
    };
    const policy = (h.broker as unknown as { redundancy: { policy: VerificationPolicy } }).redundancy.policy;
    const settings = { floor: 0.25, decay: 0.8 };
    // New miners: every unit is checked (draws of 0 keep checking while their probability falls).
    for (let i = 0; i < 12; i++) {
      const id = h.submit();
      expect(replicas(id)).toHaveLength(2);
      answerAll(id);
      expect(h.outcomes.get(id)?.kind).toBe('result');
    }
    // Proven (0.8^n fell below the floor): checked with the floor's probability, 0.25.
    draws = [0.2, 0.3, 0.24, 0.26];
    const ids = [h.submit(), h.submit(), h.submit(), h.submit()];
    expect(ids.map((id) => replicas(id).length)).toEqual([2, 1, 2, 1]);
    // Every unit travels as a replica: a miner cannot tell a checked one from an ordinary one.
    for (const id of ids) expect(replicas(id).sort()[0]).toBe(`${id}~1`);
    for (const id of ids) answerAll(id);
    expect(ids.every((id) => h.outcomes.get(id)?.kind === 'result')).toBe(true);
    expect(h.broker.snapshot().redundancy).toMatchObject({ unchecked: 2 });
    // A mismatch: both miners involved are checked on every unit again (until they prove clean).
    h.broker.addMiner('m3', h.ad(8));
    draws = [0.1];
    const d = h.submit();
    const [a, b] = ['m1', 'm2', 'm3'].filter((m) => h.workSentTo(m).some((w) => w.startsWith(`${d}~`)));
    h.broker.onResult(a!, h.result(`${d}~1`, 200, bytes('right')));
    h.broker.onResult(b!, h.result(`${d}~2`, 200, bytes('wrong')));
    const c = ['m1', 'm2', 'm3'].find((m) => m !== a && m !== b)!;
    h.broker.onResult(c, h.result(`${d}~3`, 200, bytes('right')));
    expect(h.closed.map((x) => x.miner)).toEqual([b]);
    // The honest miner of the mismatch was proven (at the floor) and starts over: reset to 1, then
    // one clean result. The cheater is gone.
    expect(policy.probability(a!, settings)).toBeCloseTo(0.8);
    expect(policy.probability(b!, settings)).toBe(1);
    expect(h.broker.snapshot().miners.map((m) => m.id)).not.toContain(b);
  });

  it('never runs attested or dedicated work redundantly', () => {
    const h = brokerHarness({ redundancy: 1 });
    h.broker.addMiner('a1', h.ad(2, ['echo'], 'attested'));
    h.broker.addMiner('a2', h.ad(2, ['echo'], 'attested'));
    const id = h.submit({ tier: 'attested' });
    expect([...h.workSentTo('a1'), ...h.workSentTo('a2')]).toEqual([id]);
    h.broker.onResult(h.workSentTo('a1').length ? 'a1' : 'a2', h.result(id));
    expect(h.outcomes.get(id)?.kind).toBe('result');
    expect(h.broker.snapshot().redundancy).toMatchObject({ runs: 0 });
  });

  it('a lost miner hands its replica to a miner that does not hold the other replica', () => {
    const h = threeMiners();
    const id = h.submit();
    const a = h.holder(id, 1)!;
    const b = h.holder(id, 2)!;
    const c = ['m1', 'm2', 'm3'].find((m) => m !== a && m !== b)!;
    h.broker.removeMiner(b, 'tunnel closed');
    expect(h.workSentTo(c)).toEqual([`${id}~2`]);
    expect(h.workSentTo(a)).toEqual([`${id}~1`]);
    h.broker.onResult(a, h.result(`${id}~1`));
    h.broker.onResult(c, h.result(`${id}~2`));
    expect(h.outcomes.get(id)?.kind).toBe('result');
  });

  it('cancelling the request cancels every replica on its miner', () => {
    const h = threeMiners();
    const id = h.submit();
    const a = h.holder(id, 1)!;
    const b = h.holder(id, 2)!;
    h.broker.cancel(id);
    expect((h.outcomes.get(id) as { error: CgnError }).error.code).toBe('cancelled');
    const cancels = h.sent.filter((s) => s.frame.t === 'cancel').map((s) => [s.miner, (s.frame as { id: string }).id]);
    expect(cancels).toEqual([
      [a, `${id}~1`],
      [b, `${id}~2`],
    ]);
    expect(h.broker.pending).toBe(0);
  });
});
