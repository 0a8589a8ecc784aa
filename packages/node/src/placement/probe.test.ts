/**
 * The capability probe on the node's side, without sockets: an honest answer verifies, a forged
 * or partial one does not, the timings give the parallel speed-up, and the runner leaves a miner
 * unmeasured (with the reason) when it does not answer or answers wrongly.
 */
import { describe, expect, it } from 'vitest';
import { probeChain, type OutgoingFrame, type ProbeFrame, type ProbedFrame } from '@cgn/protocol';
import { implausible, measure, probeRequest, verifyProbed, PROBE_DEFAULTS, type ProbeOptions, type ProbeRequest } from './probe-check.js';
import { ProbeRunner } from './probe-runner.js';

const small = { ...PROBE_DEFAULTS, steps: 400, checkpoints: 20, payloadBytes: 64, timeoutMs: 1000 };
const honest = (req: ProbeRequest): Omit<ProbedFrame, 't' | 'v'> => ({
  id: req.id,
  checkpoints: Buffer.concat(Array.from({ length: req.chains }, (_, c) => probeChain(req.seed, c, req.steps, req.every))),
  payload: req.payload,
  memoryMb: 2048, diskMb: 5000, gpus: 0,
});

describe('probe answers are checked', () => {
  it('an honest answer verifies; a forged, truncated or misdirected one does not', () => {
    const req = probeRequest('p1', 'parallel', 4, small);
    expect(verifyProbed(req, honest(req), 4)).toBeNull();
    const forged = { ...honest(req), checkpoints: new Uint8Array(honest(req).checkpoints.length).fill(9) };
    expect(verifyProbed(req, forged, 4)).toMatch(/chain 0 is wrong/);
    // Only the last link of chain 2 faked: the node always checks each chain's last link.
    const late = honest(req);
    late.checkpoints = Buffer.from(late.checkpoints);
    late.checkpoints[(3 * 20 - 1) * 32] ^= 1;
    expect(verifyProbed(req, late, 1)).toMatch(/chain 2 is wrong at step 400/);
    expect(verifyProbed(req, { ...honest(req), checkpoints: honest(req).checkpoints.subarray(32) }, 4)).toMatch(/checkpoints, expected 4 chains x 20/);
    expect(verifyProbed(req, { ...honest(req), id: 'p2' }, 4)).toMatch(/not p1/);
    const bw = probeRequest('p3', 'bandwidth', 0, small);
    expect(verifyProbed(bw, { ...honest(bw), payload: new Uint8Array(64) }, 4)).toMatch(/echoed payload differs/);
  });

  it('a miner that skipped a chain (a copy of another, or another spliced in after its first link) is caught', () => {
    const req = probeRequest('p1', 'parallel', 2, small);
    const zero = probeChain(req.seed, 0, req.steps, req.every);
    expect(verifyProbed(req, { ...honest(req), checkpoints: Buffer.concat([zero, zero]) }, 2)).toMatch(/chain 1 is wrong at step 20/);
    // Chain 1's first link computed, the rest chain 0's: every later segment is wrong, the last one always checked.
    const spliced = Buffer.concat([zero, probeChain(req.seed, 1, req.steps, req.every).subarray(0, 32), zero.subarray(32)]);
    expect(verifyProbed(req, { ...honest(req), checkpoints: spliced }, 2)).toMatch(/chain 1 is wrong at step 400/);
  });

  it('the parallel speed-up gives the CPUs, within 1..chains', () => {
    const base = { rttMs: 2, bandwidthMs: 12, payloadBytes: 1_250_000, oneMs: 102, chains: 8, steps: 30_000 };
    expect(measure({ ...base, parallelMs: 102 }).cpus).toBe(8);
    expect(measure({ ...base, parallelMs: 202 }).cpus).toBe(4);
    expect(measure({ ...base, parallelMs: 802 }).cpus).toBe(1);
    expect(measure({ ...base, parallelMs: 5000 }).cpus).toBe(1);
    expect(measure({ ...base, parallelMs: 3 }).cpus).toBe(8);
    // 2 x 1.25 MB in 10 ms: 2,000 Mbit/s; 30,000 hashes in 100 ms.
    expect(measure(base)).toMatchObject({ cpus: 1, bandwidthMbps: 2000, hashesPerSec: 300_000 });
  });
});

describe('the probe runner', () => {
  function runner(answer: (req: ProbeFrame, to: string) => Omit<ProbedFrame, 't' | 'v'> | null, delayOf: (req: ProbeFrame) => number = () => 1, options: Partial<ProbeOptions> = {}, concurrency = 4) {
    let now = 0;
    const timers: { at: number; fn: () => void }[] = [];
    const logs: string[] = [];
    const sent: string[] = [];
    let r!: ProbeRunner;
    const send = (id: string, f: OutgoingFrame) => {
      if (f.t !== 'probe') return;
      sent.push(id);
      const a = answer(f, id);
      if (a === null) return;
      // The answer arrives `delay` ms later (on the injected clock), after this turn.
      queueMicrotask(() => {
        now += delayOf(f);
        r.onProbed(id, { t: 'probed', v: 1, ...a });
      });
    };
    r = new ProbeRunner({
      send, now: () => now, log: (_l, msg, fields) => logs.push(`${msg} ${JSON.stringify(fields)}`),
      setTimer: (fn, ms) => (timers.push({ at: now + ms, fn }), timers.length as unknown as ReturnType<typeof setTimeout>),
      clearTimer: () => {},
    }, { ...small, ...options }, concurrency);
    const fireTimers = () => {
      for (const t of timers.splice(0)) t.fn();
    };
    return { r, logs, fireTimers, sent };
  }

  const settle = async (r: ProbeRunner, id: string) => {
    for (let i = 0; i < 100 && r.resultOf(id) === undefined; i++) await new Promise((res) => setImmediate(res));
    return r.resultOf(id);
  };

  it('measures an honest miner: CPUs from the speed-up, memory, disk and GPUs self-reported', async () => {
    // Each chain takes 100 ms on a core; 4 chains at once take 100 ms too: 4 cores.
    const { r } = runner((f) => honest(f), (f) => (f.chains > 0 ? 100 : 1));
    r.probe('m1', 4);
    expect(r.version).toBe(0);
    const res = await settle(r, 'm1');
    expect(res).toMatchObject({ ok: true, measured: { cpus: 4, memoryMb: 2048, diskMb: 5000, gpus: 0 }, selfReported: ['memoryMb', 'diskMb', 'gpus'] });
    // Placement's timer rounds read the version: a finished probe is a change worth a full round.
    expect(r.version).toBe(1);
  });

  it('records a miner claiming 64 CPUs whose chains run one after the other as measured below its claim', async () => {
    const { r } = runner((f) => honest(f), (f) => 1 + 100 * f.chains);
    r.probe('liar', 64);
    const res = await settle(r, 'liar');
    expect(res?.ok).toBe(true);
    if (res?.ok !== true) return;
    expect(res.measured.cpus).toBe(1);
  });

  it('leaves a miner with a forged answer unmeasured, saying why', async () => {
    const { r, logs } = runner((f) => ({ ...honest(f), checkpoints: new Uint8Array(f.chains * (f.steps / f.every) * 32) }));
    r.probe('forger', 2);
    const res = await settle(r, 'forger');
    expect(res).toMatchObject({ ok: false });
    expect(res?.ok === false && res.reason).toMatch(/the one probe answer does not verify: chain 0 is wrong/);
    expect(logs.some((l) => l.includes('capability probe failed'))).toBe(true);
  });

  it('leaves a miner that does not answer unmeasured after the timeout', async () => {
    const { r, fireTimers } = runner(() => null);
    r.probe('mute', 2);
    await new Promise((res) => setImmediate(res));
    fireTimers();
    const res = await settle(r, 'mute');
    expect(res).toMatchObject({ ok: false, reason: 'no answer to the rtt probe within 1000 ms' });
  });

  it('ignores answers nobody asked for, and forgets a miner that left', async () => {
    const { r, logs } = runner(() => null);
    r.onProbed('stranger', { t: 'probed', v: 1, id: 'p9', checkpoints: new Uint8Array(0), payload: new Uint8Array(0), memoryMb: 0, diskMb: 0, gpus: 0 });
    expect(logs[0]).toMatch(/nobody asked for/);
    r.probe('m1', 2);
    r.forget('m1');
    await new Promise((res) => setImmediate(res));
    expect(r.resultOf('m1')).toBeUndefined();
  });

  it('takes the fastest of several rounds: a miner slowing some answers down gains nothing', async () => {
    let rtts = 0;
    // rtt answers take 50, 5, 50 ms: the 5 counts, as the network's round trip.
    const { r } = runner((f) => honest(f), (f) => (f.chains > 0 ? 105 : f.payload.length > 0 ? 10 : [50, 5, 50][rtts++ % 3]!));
    r.probe('m1', 2);
    const res = await settle(r, 'm1');
    expect(res).toMatchObject({ ok: true, measurement: { rttMs: 5, cpus: 2 } });
  });

  it('credits no more CPUs than chains ran: a perfect speed-up at 64 claimed CPUs is the probe\'s 8 chains', async () => {
    const { r, sent } = runner((f) => honest(f), (f) => (f.chains > 0 ? 100 : 1));
    r.probe('big', 64);
    const res = await settle(r, 'big');
    expect(res).toMatchObject({ ok: true, measured: { cpus: 8 } });
    expect(sent.length).toBe(3 + 1 + 3 + 3);
  });

  it('fails an implausibly fast miner (chains hashed faster than a core can), which then counts as a failed probe', async () => {
    // 400 steps in 1 ms (2 ms less the 1 ms round trip) is 400,000 hashes/s: over a 100,000/s ceiling.
    const { r } = runner((f) => honest(f), (f) => (f.chains > 0 ? 2 : 1), { maxHashesPerSecPerCore: 100_000 });
    r.probe('fast', 4);
    const res = await settle(r, 'fast');
    expect(res).toMatchObject({ ok: false });
    expect(res?.ok === false && res.reason).toMatch(/^implausible probe: one chain hashed at 400000\/s, more than a core plausibly does/);
    expect(r.counters.implausible).toBe(1);
    // The parallel phase alone can give it away too.
    expect(implausible({ rttMs: 1, bandwidthMs: 2, payloadBytes: 1, oneMs: 101, parallelMs: 2, chains: 4, steps: 400 }, 100_000)).toMatch(/4 chains hashed at 400000\/s each/);
    expect(implausible({ rttMs: 1, bandwidthMs: 2, payloadBytes: 1, oneMs: 101, parallelMs: 101, chains: 4, steps: 400 }, 100_000)).toBeNull();
  });

  it('ends a probe that outlives its deadline, however each answer keeps within its own timeout', async () => {
    // Each answer 200 ms (the phase timeout is 1000): past 500 ms in all, the probe fails.
    const { r } = runner((f) => honest(f), () => 200, { deadlineMs: 500 });
    r.probe('slow', 2);
    const res = await settle(r, 'slow');
    expect(res).toMatchObject({ ok: false, reason: 'the probe took longer than 500 ms in all (at the bandwidth phase)' });
  });

  it('a refusal ends the probe at once, not at its timeout; an error for another id is not the probe\'s', async () => {
    let r!: ProbeRunner;
    const h = runner((f, to) => {
      queueMicrotask(() => {
        expect(r.onRefused(to, 'not-this', 'x')).toBe(false);
        expect(r.onRefused(to, f.id, 'this miner does not answer capability probes')).toBe(true);
      });
      return null;
    });
    r = h.r;
    r.probe('refuser', 2);
    const res = await settle(r, 'refuser');
    expect(res).toMatchObject({ ok: false, reason: 'the miner refused the probe: this miner does not answer capability probes' });
  });

  it('bounds the queue: a miner finding it full fails at once (counted least) and is probed once there is room', async () => {
    const { r, fireTimers } = runner(() => null, () => 1, { maxQueue: 2 }, 1);
    for (const id of ['a', 'b', 'c', 'd']) r.probe(id, 2);
    // a runs, b and c wait, d found the queue full.
    expect(r.waiting).toEqual({ queued: 2, overflow: 1 });
    expect(r.resultOf('d')).toMatchObject({ ok: false, reason: 'the probe queue is full (2 miners wait); probed when there is room' });
    r.forget('b');
    expect(r.waiting).toEqual({ queued: 2, overflow: 0 });
    // d's probe runs in its turn and replaces the queue-full result with its own.
    for (let i = 0; i < 3; i++) {
      await new Promise((res) => setImmediate(res));
      fireTimers();
    }
    await settle(r, 'c');
    for (let i = 0; i < 20 && (r.resultOf('d') as { reason?: string } | undefined)?.reason?.startsWith('the probe queue') === true; i++) {
      await new Promise((res) => setImmediate(res));
      fireTimers();
    }
    expect(r.resultOf('d')).toMatchObject({ ok: false, reason: 'no answer to the rtt probe within 1000 ms' });
  });

  it('takes the groups in turn: a flood of one tier does not hold up another tier\'s miner', async () => {
    const { r, sent } = runner((f) => honest(f), () => 1, {}, 1);
    for (let i = 1; i <= 5; i++) r.probe(`open${i}`, 1, 'open');
    r.probe('reg1', 1, 'registered');
    for (let i = 0; i < 200 && r.resultOf('open5') === undefined; i++) await new Promise((res) => setImmediate(res));
    const firstProbe = [...new Set(sent)];
    expect(firstProbe).toEqual(['open1', 'open2', 'reg1', 'open3', 'open4', 'open5']);
  });
});
