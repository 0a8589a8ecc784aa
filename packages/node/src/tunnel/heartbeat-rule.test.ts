import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BEAT_DROP_INTERVALS, BEAT_INTERVALS, MAX_BEATS_PER_INTERVAL, NODE_BEAT_AFTER_INTERVALS, NODE_BEAT_INTERVALS, countBeat, visit, visitBeating, type Liveness } from './heartbeat-rule.js';

const HB = 5000;

/**
 * Visits one tunnel at the given times; a live miner answers each ping `rtt(i)` ms later (before
 * the next visit) and says nothing else. Returns the verdicts.
 */
function run(times: number[], answers: ((i: number) => number) | null): string[] {
  const l: Liveness = { lastSeen: 0, heard: true, lastSent: 0, pingedAt: 0, suspect: false };
  const out: string[] = [];
  times.forEach((now, i) => {
    const v = visit(l, true, now, HB);
    out.push(v);
    if (v === 'ping') {
      if (answers !== null) {
        l.lastSeen = now + answers(i);
        l.heard = true;
      }
    }
  });
  return out;
}

describe('heartbeat rule, a pinged (older) miner', () => {
  it('pings an idle miner every other visit and never drops it, on time or with the wheel turning late', () => {
    const onTime = run(Array.from({ length: 20 }, (_, i) => (i + 1) * HB), () => 1);
    expect(onTime.filter((v) => v === 'ping')).toHaveLength(10);
    expect(onTime).not.toContain('drop');
    // The busy node's wheel takes 8 s a turn: 2 turns exceed the 15 s of silence, but the miner
    // was asked and answered, so it stays.
    const late = run(Array.from({ length: 20 }, (_, i) => (i + 1) * 8000), () => 1);
    expect(late).not.toContain('drop');
  });

  it('drops a silent miner once 3 intervals passed and its ping had 2, and not before', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: HB, max: 2 * HB }), { minLength: 12, maxLength: 12 }), (gaps) => {
        const times = gaps.map((_, i) => gaps.slice(0, i + 1).reduce((a, b) => a + b, 0));
        const verdicts = run(times, null);
        const at = verdicts.indexOf('drop');
        expect(at).toBeGreaterThan(0);
        const firstPing = verdicts.indexOf('ping');
        expect(times[at]! > 3 * HB && times[at]! - times[firstPing]! >= 2 * HB).toBe(true);
        // Visits on time: dropped at the 4th or 5th, 15-25 s after its last word.
        if (gaps.every((g) => g === HB)) expect(times[at]).toBeLessThanOrEqual(5 * HB);
      }),
    );
  });

  it('keeps a live miner whose pong comes within an interval, whatever the wheel does between HB and 2 HB a visit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: HB, max: 2 * HB }), fc.integer({ min: 0, max: HB - 1 })), { minLength: 1, maxLength: 40 }),
        (steps) => {
          const times = steps.map((_, i) => steps.slice(0, i + 1).reduce((a, [g]) => a + g, 0));
          expect(run(times, (i) => steps[i]![1])).not.toContain('drop');
        },
      ),
    );
  });

  it("reaches an idle miner at least every 2.5 intervals while the wheel turns in under 1.25, at every visit when slower (the miner's watchdog wants one every 3)", () => {
    const late = run(Array.from({ length: 10 }, (_, i) => (i + 1) * 1.3 * HB), () => 1);
    expect(late).toEqual(Array(10).fill('ping'));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: HB, max: 1.25 * HB - 1 }), { minLength: 2, maxLength: 40 }), (gaps) => {
        const times = gaps.map((_, i) => gaps.slice(0, i + 1).reduce((a, b) => a + b, 0));
        const verdicts = run(times, () => 1);
        const pings = [0, ...times.filter((_, i) => verdicts[i] === 'ping')];
        for (let i = 1; i < pings.length; i++) expect(pings[i]! - pings[i - 1]!).toBeLessThanOrEqual(2.5 * HB);
        expect(times[times.length - 1]! - pings[pings.length - 1]!).toBeLessThan(2.5 * HB);
      }),
    );
  });

  it('never pings a miner that talks and is talked to between visits, and does not drop it either', () => {
    const l: Liveness = { lastSeen: 0, heard: true, lastSent: 0, pingedAt: 0, suspect: false };
    for (let i = 1; i <= 10; i++) {
      l.lastSeen = i * HB - 100;
      l.heard = true;
      l.lastSent = i * HB - 100;
      expect(visit(l, true, i * HB, HB)).toBe('none');
    }
  });

  it('drops a tunnel still in its handshake after 3 silent intervals without pinging it', () => {
    const l: Liveness = { lastSeen: 0, heard: true, lastSent: 0, pingedAt: 0, suspect: false };
    expect([1, 2, 3, 4].map((i) => visit(l, false, i * HB + 1, HB))).toEqual(['none', 'none', 'drop', 'drop']);
  });
});

/**
 * A beating tunnel: the node visits it at `visits` (ms, ascending) and reads each beat at
 * `readAt(sent)`; at equal times the visit comes first (the timers phase runs before the reads).
 * Returns the time of the drop, or null.
 */
function beating(beats: number[], visits: number[], readAt: (sent: number) => number = (b) => b): number | null {
  const l: Liveness = { lastSeen: 0, heard: true, lastSent: 0, pingedAt: 0, suspect: false };
  const events = [...visits.map((at) => ({ at, visit: true })), ...beats.map((b) => ({ at: readAt(b), visit: false }))];
  events.sort((a, b) => a.at - b.at || Number(b.visit) - Number(a.visit));
  for (const e of events) {
    if (!e.visit) l.lastSeen = Math.max(l.lastSeen, e.at);
    else if (visitBeating(l, e.at, HB) === 'drop') return e.at;
  }
  return null;
}
const sums = (gaps: number[]): number[] => gaps.map((_, i) => gaps.slice(0, i + 1).reduce((a, b) => a + b, 0));

describe('heartbeat rule, a beating miner (the node writes nothing)', () => {
  it('never drops a miner heard at least every BEAT_DROP_INTERVALS intervals, however the wheel turns', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: BEAT_DROP_INTERVALS * HB }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: HB / 4, max: 3 * HB }), { minLength: 1, maxLength: 60 }),
        (beatGaps, visitGaps) => {
          const beats = sums(beatGaps);
          const visits = sums(visitGaps).filter((v) => v <= beats[beats.length - 1]!);
          expect(beating(beats, visits)).toBeNull();
        },
      ),
    );
  });

  it('does not drop a live miner (a beat at least every 2 intervals) after the node stalled, whatever the stall (its beats are read after the late visit)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: HB / 2, max: BEAT_INTERVALS * HB }), { minLength: 40, maxLength: 40 }),
        fc.integer({ min: 0, max: 10 * HB }),
        fc.integer({ min: HB, max: 20 * HB }),
        fc.integer({ min: 0, max: HB - 1 }),
        (beatGaps, stallFrom, stallFor, phase) => {
          const beats = sums(beatGaps);
          const end = stallFrom + stallFor;
          // On time before and after the stall; the visits due during it come as one, at its end.
          const visits = [...Array.from({ length: 60 }, (_, i) => phase + i * HB).filter((v) => v <= stallFrom || v > end), end].sort((a, b) => a - b);
          const readAt = (b: number) => (b > stallFrom && b < end ? end : b);
          expect(beating(beats, visits.filter((v) => v <= beats[beats.length - 1]!), readAt)).toBeNull();
        },
      ),
    );
  });

  it('drops a silent miner once silent for BEAT_DROP_INTERVALS intervals, never before, and within one more with the wheel on time', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: HB / 4, max: 2 * HB }), { minLength: 24, maxLength: 24 }), fc.boolean(), (gaps, onTime) => {
        const visits = sums(onTime ? gaps.map((g) => Math.min(g, HB)) : gaps);
        const at = beating([0], visits);
        expect(at).not.toBeNull();
        expect(at!).toBeGreaterThan(BEAT_DROP_INTERVALS * HB);
        if (onTime) expect(at!).toBeLessThanOrEqual((BEAT_DROP_INTERVALS + 1) * HB);
      }),
    );
  });

  it('takes up to MAX_BEATS_PER_INTERVAL beats or pings an interval; a miner sending more is at fault', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: HB / MAX_BEATS_PER_INTERVAL, max: 3 * HB }), { minLength: 1, maxLength: 50 }), (gaps) => {
        const w = { beatWindowAt: -Infinity, beatsInWindow: 0 };
        for (const at of sums(gaps)) expect(countBeat(w, at, HB)).toBe(true);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * HB }), fc.array(fc.integer({ min: 0, max: Math.floor(HB / (MAX_BEATS_PER_INTERVAL + 1)) - 1 }), { minLength: MAX_BEATS_PER_INTERVAL + 1, maxLength: MAX_BEATS_PER_INTERVAL + 1 }), (start, gaps) => {
        const w = { beatWindowAt: -Infinity, beatsInWindow: 0 };
        const ok = sums(gaps).map((at) => countBeat(w, start + at, HB));
        expect(ok.slice(0, MAX_BEATS_PER_INTERVAL).every(Boolean)).toBe(true);
        expect(ok[MAX_BEATS_PER_INTERVAL]).toBe(false);
      }),
    );
  });

  it("answers often enough for the miner's watchdog: the miner beats at least every BEAT_INTERVALS, so the node speaks within its announced interval", () => {
    expect(NODE_BEAT_AFTER_INTERVALS + BEAT_INTERVALS).toBeLessThan(NODE_BEAT_INTERVALS);
  });
});
