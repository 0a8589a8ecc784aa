import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ackCeiling, ackDeadline, ackVerdict, newAckRtt, sampleAck } from './ack-deadline.js';

const base = fc.integer({ min: 1, max: 60_000 });
// Round trips a miner may show: honest ones, hostile ones (huge), and clock oddities (negative, NaN).
const sample = fc.oneof(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.constantFrom(-5, Number.NaN, Infinity, 1e300));
const samples = fc.array(sample, { maxLength: 60 });

function estimate(xs: number[]) {
  const r = newAckRtt();
  for (const x of xs) sampleAck(r, x);
  return r;
}

describe('ack deadline', () => {
  it('is the base until the miner is measured', () => {
    expect(ackDeadline(newAckRtt(), 2000)).toBe(2000);
  });

  it('never falls below the base nor exceeds the ceiling, whatever the miner acked', () => {
    fc.assert(
      fc.property(base, samples, (b, xs) => {
        const d = ackDeadline(estimate(xs), b);
        expect(d).toBeGreaterThanOrEqual(b);
        expect(d).toBeLessThanOrEqual(ackCeiling(b));
        expect(ackCeiling(b)).toBe(4 * b);
      }),
    );
  });

  it('grows for a miner whose acks are slow and jittery, up to the ceiling', () => {
    // A loaded machine: acks between 0.3 and 1.9 s, each alone inside the 2 s base.
    const r = estimate([300, 1900, 400, 1800, 350, 1700, 500, 1900]);
    expect(ackDeadline(r, 2000)).toBeGreaterThan(2000);
    expect(ackDeadline(estimate(Array(50).fill(7000)), 2000)).toBeCloseTo(7000, 0);
    expect(ackDeadline(estimate(Array(50).fill(9000)), 2000)).toBe(8000);
  });

  it('comes back to the base once the acks are quick again', () => {
    const r = estimate([1900, 300, 1800]);
    for (let i = 0; i < 40; i++) sampleAck(r, 20);
    expect(ackDeadline(r, 2000)).toBe(2000);
  });

  it('drops a miner whose unit is unacked past the ceiling, heard from or not, whatever it measured', () => {
    fc.assert(
      fc.property(base, samples, fc.double({ min: 0, max: 1e7, noNaN: true }), fc.boolean(), (b, xs, over, heard) => {
        const age = ackCeiling(b) + over + 1e-6;
        expect(ackVerdict(age, estimate(xs), b, heard)).toBe('drop');
      }),
    );
  });

  it('never drops a miner within the base, and a heard-from one never before the ceiling', () => {
    fc.assert(
      fc.property(base, samples, fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), (b, xs, f, heard) => {
        const r = estimate(xs);
        expect(ackVerdict(f * b, r, b, heard)).toBe('ok');
        const age = f * ackCeiling(b);
        expect(ackVerdict(age, r, b, true)).not.toBe('drop');
      }),
    );
  });

  it('drops a silent miner exactly when it is past its own deadline', () => {
    fc.assert(
      fc.property(base, samples, fc.double({ min: 0, max: 5, noNaN: true }), (b, xs, f) => {
        const r = estimate(xs);
        const age = f * b;
        expect(ackVerdict(age, r, b, false)).toBe(age > ackDeadline(r, b) ? 'drop' : 'ok');
      }),
    );
  });
});
