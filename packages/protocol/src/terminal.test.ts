import { describe, expect, it } from 'vitest';
import { colourWanted, coloursFor, progressBar, progressReporter } from './terminal.js';

function sink(isTTY: boolean): { out: string[]; write: (s: string) => void; isTTY: boolean } {
  const out: string[] = [];
  return { out, isTTY, write: (s: string) => void out.push(s) };
}

describe('terminal output', () => {
  it('colours only a terminal, and honours NO_COLOR, TERM=dumb and FORCE_COLOR', () => {
    expect(colourWanted({ write() {}, isTTY: true }, {})).toBe(true);
    expect(colourWanted({ write() {}, isTTY: false }, {})).toBe(false);
    expect(colourWanted({ write() {} }, {})).toBe(false);
    expect(colourWanted({ write() {}, isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colourWanted({ write() {}, isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(colourWanted({ write() {}, isTTY: false }, { FORCE_COLOR: '1' })).toBe(true);
    expect(coloursFor({ write() {}, isTTY: false }, {}).green('ok')).toBe('ok');
    expect(coloursFor({ write() {}, isTTY: true }, {}).green('ok')).toBe('\x1b[32mok\x1b[39m');
  });

  it('draws a bar with the share done', () => {
    expect(progressBar(5_000, 10_000, 'records', 10)).toBe('[#####.....]  50%  5,000/10,000 records');
    expect(progressBar(0, 0, 'records', 4)).toBe('[####] 100%  0/0 records');
    expect(progressBar(12, 10, 'x', 4)).toBe('[####] 100%  12/10 x');
  });

  it('writes one line per tenth when the stream is not a terminal', () => {
    const s = sink(false);
    const p = progressReporter(s, 'closing', 'records');
    for (let i = 0; i <= 1000; i++) p.update(i, 1000);
    p.finish();
    expect(s.out).toHaveLength(11);
    expect(s.out.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true);
    expect(s.out[10]).toContain('100%');
  });

  it('redraws in place on a terminal, throttled, and ends the line', () => {
    const s = sink(true);
    let t = 0;
    const p = progressReporter(s, 'closing', 'records', { now: () => t, minIntervalMs: 100 });
    for (let i = 0; i < 100; i++) {
      t += 10;
      p.update(i, 100);
    }
    p.finish('done');
    expect(s.out.length).toBeLessThanOrEqual(12);
    expect(s.out.every((l) => l.startsWith('\r'))).toBe(true);
    expect(s.out.at(-1)).toMatch(/done\n$/);
  });
});
