/**
 * A simulation of open-tier verification: the real broker and verification code (`Broker`,
 * `Redundancy`, `VerificationPolicy`) driven with virtual time (an event queue, no sockets, no
 * timers), seeded and reproducible. Miners answer after their own latency; cheating miners return
 * a wrong result at their rate. It measures what sampling costs and what it catches:
 *
 * - catchRate: cheating miners proven and dropped / cheating miners (also per rate);
 * - extraExecutionShare: executions beyond the one each answer needs / answers;
 * - honestPenalized: honest miners dropped (must be 0);
 * - wrongAnswersServedPerMillion: answers the DApp got that were wrong (the price of sampling);
 * - requestsToCatchP50 / P99: units a cheater ran before it was caught (caught ones).
 */
import { frame, type OutgoingFrame, type ResultFrame } from '@cgn/protocol';
import { Broker } from './broker.js';

export interface SimulationOptions {
  seed: number;
  miners: number;
  /** Share of miners that cheat, split evenly among `cheatRates`. */
  cheaterShare: number;
  cheatRates: number[];
  requests: number;
  /** Verification floor and decay (the broker's `redundancy` and `verificationDecay`). */
  floor: number;
  decay: number;
  /** Slots per miner. Default 4. */
  slots?: number;
  /** Requests arriving per virtual ms. Default: half the pool's capacity. */
  arrivalsPerMs?: number;
  /**
   * Cheaters return the same wrong bytes (colluding), so two of them checking each other agree.
   * Default false: each cheater's wrong answer is its own.
   */
  colluding?: boolean;
}

export interface SimulationReport {
  miners: number;
  cheaters: number;
  requests: number;
  answered: number;
  failed: number;
  catchRate: number;
  catchRateByRate: Record<string, number>;
  extraExecutionShare: number;
  honestPenalized: number;
  wrongAnswersServed: number;
  wrongAnswersServedPerMillion: number;
  requestsToCatchP50: number | null;
  requestsToCatchP99: number | null;
  virtualSeconds: number;
  wallSeconds: number;
}

/** mulberry32: small, fast, seeded. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Event {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

/** A binary min-heap of events by time, then insertion order. */
class EventQueue {
  private heap: Event[] = [];
  private seq = 0;
  push(at: number, fn: () => void): Event {
    const e: Event = { at, seq: this.seq++, fn, live: true };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(h[p]!, e)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
    return e;
  }
  pop(): Event | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && before(h[r]!, h[l]!) ? r : l;
      if (before(last, h[c]!)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }
  get size(): number {
    return this.heap.length;
  }
}
const before = (a: Event, b: Event): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

const RIGHT = Buffer.from('right');
const WRONG = Buffer.from('wrong');
const NO_HASH = new Uint8Array(32);

export function simulateVerification(o: SimulationOptions): SimulationReport {
  const started = performance.now();
  const random = rng(o.seed);
  const slots = o.slots ?? 4;
  const q = new EventQueue();
  let now = 0;
  const nCheaters = Math.round(o.miners * o.cheaterShare);
  const miners = Array.from({ length: o.miners }, (_, i) => ({
    id: `m${String(i).padStart(5, '0')}`,
    latencyMs: 10 + 30 * random(),
    cheatRate: i < nCheaters ? o.cheatRates[i % o.cheatRates.length]! : 0,
    ran: 0,
    gone: false,
    caughtAfter: null as number | null,
    wrong: o.colluding === true ? WRONG : Buffer.from(`wrong:${i}`),
  }));
  // Shuffle so cheaters are not the lowest ids (ties in assignment go to lower ids).
  for (let i = miners.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [miners[i], miners[j]] = [miners[j]!, miners[i]!];
  }
  const byId = new Map(miners.map((m) => [m.id, m]));
  let honestPenalized = 0;
  const broker = new Broker(
    {
      now: () => now,
      random,
      wallNow: () => now,
      send: (minerId: string, f: OutgoingFrame) => {
        if (f.t !== 'work') return;
        const m = byId.get(minerId)!;
        const id = f.id;
        q.push(now + m.latencyMs * (0.8 + 0.4 * random()), () => {
          if (m.gone) return;
          m.ran++;
          const wrong = m.cheatRate > 0 && random() < m.cheatRate;
          const result: ResultFrame = frame({ t: 'result', id, status: 200, headers: [], body: wrong ? m.wrong : RIGHT, metering: { execUs: 1000, cpuUs: 1000 }, resultHash: NO_HASH }) as ResultFrame;
          broker.onResult(minerId, result);
        });
      },
      closeMiner: (minerId: string) => {
        const m = byId.get(minerId)!;
        m.gone = true;
        if (m.cheatRate === 0) honestPenalized++;
        else m.caughtAfter ??= m.ran;
      },
      setTimer: (fn: () => void, ms: number) => q.push(now + ms, fn) as unknown as ReturnType<typeof setTimeout>,
      clearTimer: (t: ReturnType<typeof setTimeout>) => {
        (t as unknown as Event).live = false;
      },
    },
    { redundancy: o.floor, verificationDecay: o.decay, maxQueueDepth: 1_000_000, maxQueueAgeMs: 60_000, ackTimeoutMs: 60_000 },
  );
  const ad = { t: 'advertise' as const, v: 1, tier: 'open' as const, slots, dservices: [{ name: 'echo', version: '1', digest: 'x' }], resources: { cpus: 1, memoryMb: 64 } };
  for (const m of miners) broker.addMiner(m.id, ad);

  let answered = 0;
  let failed = 0;
  let wrong = 0;
  const capacityPerMs = (o.miners * slots) / 25;
  const perMs = o.arrivalsPerMs ?? Math.max(1, Math.floor(capacityPerMs / 2));
  let submitted = 0;
  const arrive = (): void => {
    for (let k = 0; k < perMs && submitted < o.requests; k++) {
      const id = `w${submitted++}`;
      broker.submit({ id, account: 'a', dservice: 'echo', tier: 'open', method: 'POST', path: '/', headers: [], body: RIGHT, timeoutMs: 30_000 }, (outcome) => {
        if (outcome.kind === 'error') failed++;
        else {
          answered++;
          if (Buffer.compare(Buffer.from(outcome.result.body), RIGHT) !== 0) wrong++;
        }
      });
    }
    if (submitted < o.requests) q.push(now + 1, arrive);
  };
  q.push(0, arrive);
  for (let e = q.pop(); e !== undefined; e = q.pop()) {
    if (!e.live) continue;
    now = e.at;
    e.fn();
  }
  const cheaters = miners.filter((m) => m.cheatRate > 0);
  const caught = cheaters.filter((m) => m.caughtAfter !== null);
  const byRate: Record<string, number> = {};
  for (const r of o.cheatRates) {
    const of = cheaters.filter((m) => m.cheatRate === r);
    byRate[String(r)] = of.length === 0 ? 1 : of.filter((m) => m.caughtAfter !== null).length / of.length;
  }
  const toCatch = caught.map((m) => m.caughtAfter!).sort((a, b) => a - b);
  const pct = (p: number): number | null => (toCatch.length === 0 ? null : toCatch[Math.min(toCatch.length - 1, Math.floor(p * toCatch.length))]!);
  const snap = broker.snapshot();
  const extra = snap.redundancy?.extraExecutions ?? 0;
  return {
    miners: o.miners,
    cheaters: cheaters.length,
    requests: o.requests,
    answered,
    failed,
    catchRate: cheaters.length === 0 ? 1 : caught.length / cheaters.length,
    catchRateByRate: byRate,
    extraExecutionShare: answered === 0 ? 0 : extra / answered,
    honestPenalized,
    wrongAnswersServed: wrong,
    wrongAnswersServedPerMillion: answered === 0 ? 0 : (wrong / answered) * 1e6,
    requestsToCatchP50: pct(0.5),
    requestsToCatchP99: pct(0.99),
    virtualSeconds: now / 1000,
    wallSeconds: (performance.now() - started) / 1000,
  };
}
