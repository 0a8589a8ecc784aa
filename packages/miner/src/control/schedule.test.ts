import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { inAnyWindow, inWindow, parseWindow, type TimeWindow } from './schedule.js';

const at = (h: number, m = 0): Date => new Date(2026, 11, 7, h, m);
const w = (text: string): TimeWindow => {
  const p = parseWindow(text);
  if ('error' in p) throw new Error(p.error);
  return p;
};

describe('time windows', () => {
  it('a window within the day: start inclusive, end exclusive', () => {
    const day = w('09:00-17:30');
    expect(inWindow(day, at(8, 59))).toBe(false);
    expect(inWindow(day, at(9, 0))).toBe(true);
    expect(inWindow(day, at(17, 29))).toBe(true);
    expect(inWindow(day, at(17, 30))).toBe(false);
  });

  it('a window over midnight', () => {
    const night = w('22:00-07:00');
    expect(inWindow(night, at(21, 59))).toBe(false);
    expect(inWindow(night, at(22, 0))).toBe(true);
    expect(inWindow(night, at(0, 0))).toBe(true);
    expect(inWindow(night, at(6, 59))).toBe(true);
    expect(inWindow(night, at(7, 0))).toBe(false);
    expect(inWindow(night, at(12, 0))).toBe(false);
  });

  it('00:00-24:00 is all day; no windows means any time', () => {
    const all = w('00:00-24:00');
    for (let h = 0; h < 24; h++) expect(inWindow(all, at(h, 30))).toBe(true);
    expect(inAnyWindow([], at(3))).toBe(true);
    expect(inAnyWindow([w('01:00-02:00'), w('22:00-23:00')], at(22, 15))).toBe(true);
    expect(inAnyWindow([w('01:00-02:00'), w('22:00-23:00')], at(12))).toBe(false);
  });

  it('refuses what is not a window, saying why', () => {
    for (const [text, why] of [
      ['22-07', /HH:MM-HH:MM/],
      ['25:00-07:00', /HH:MM-HH:MM/],
      ['10:61-11:00', /HH:MM-HH:MM/],
      ['08:00-08:00', /empty/],
      ['24:00-02:00', /cannot start at 24:00/],
      ['', /HH:MM-HH:MM/],
    ] as const) {
      const p = parseWindow(text);
      expect('error' in p ? p.error : 'parsed', text).toMatch(why);
    }
  });

  it('property: a window and its complement split every minute of the day', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1439 }), fc.integer({ min: 0, max: 1439 }), fc.integer({ min: 0, max: 1439 }), (a, b, minute) => {
      fc.pre(a !== b);
      const hhmm = (n: number): string => `${String(Math.floor(n / 60)).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}`;
      const date = at(Math.floor(minute / 60), minute % 60);
      const inside = inWindow(w(`${hhmm(a)}-${hhmm(b)}`), date);
      const outside = inWindow(w(`${hhmm(b)}-${hhmm(a)}`), date);
      expect(inside !== outside).toBe(true);
    }));
  });
});
