/**
 * Test harness for the broker (not part of the package's API): a real `Broker` with a manual
 * clock and manual timers, so time moves only when the test says so, and the frames it sends and
 * tunnels it closes are recorded. The miners are the test's own calls (`onAck`, `onResult`, ...).
 */
import { frame, type AdvertiseFrame, type Frame, type OutgoingFrame, type ResultFrame, type Tier } from '@cgn/protocol';
import { Broker, type BrokerDeps, type BrokerOptions } from './broker.js';
import type { WorkOutcome, WorkRequest } from './work-unit.js';

export function brokerHarness(options: Partial<BrokerOptions> = {}, extraDeps: Pick<BrokerDeps, 'random' | 'onDispute' | 'wallNow' | 'weightOf' | 'memoryOf' | 'regionsOf' | 'maxResultBytesOf'> = {}) {
  let now = 1000;
  const timers: { at: number; fn: () => void; id: number; live: boolean }[] = [];
  let nextTimer = 1;
  const sent: { miner: string; frame: OutgoingFrame }[] = [];
  const closed: { miner: string; reason: string }[] = [];
  const broker = new Broker(
    {
      now: () => now,
      send: (miner, f) => sent.push({ miner, frame: f }),
      closeMiner: (miner, reason) => closed.push({ miner, reason }),
      setTimer: (fn, ms) => {
        const t = { at: now + ms, fn, id: nextTimer++, live: true };
        timers.push(t);
        return t as unknown as ReturnType<typeof setTimeout>;
      },
      clearTimer: (t) => {
        (t as unknown as { live: boolean }).live = false;
      },
      ...extraDeps,
    },
    options,
  );
  const advance = (ms: number) => {
    now += ms;
    for (const t of timers) if (t.live && t.at <= now) (t.live = false), t.fn();
  };
  const outcomes = new Map<string, WorkOutcome>();
  let n = 0;
  const submit = (over: Partial<WorkRequest> = {}) => {
    const id = over.id ?? `w${++n}`;
    broker.submit(
      { id, account: 'acct', dservice: 'echo', tier: 'open', method: 'POST', path: '/', headers: [], body: new Uint8Array(0), timeoutMs: 10_000, ...over },
      (o) => {
        if (outcomes.has(id)) throw new Error(`onDone called twice for ${id}`); // exactly once
        outcomes.set(id, o);
      },
    );
    return id;
  };
  const ad = (slots: number, dservices = ['echo'], tier: Tier = 'open'): AdvertiseFrame =>
    frame({ t: 'advertise', tier, slots, dservices: dservices.map((name) => ({ name, version: '1', digest: 'd' })), resources: { cpus: 1, memoryMb: 1 } });
  const result = (id: string, status = 200, body: Uint8Array = new Uint8Array([1])): ResultFrame =>
    frame({ t: 'result', id, status, headers: [], body, metering: { execUs: 1, cpuUs: 1 }, resultHash: new Uint8Array(32) });
  const workSentTo = (miner: string) => sent.filter((s) => s.miner === miner && s.frame.t === 'work').map((s) => (s.frame as { id: string }).id);
  return { broker, advance, submit, ad, result, sent, closed, outcomes, workSentTo };
}
