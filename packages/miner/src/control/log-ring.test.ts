import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LogRing, teeLogger } from './log-ring.js';

describe('the control app log ring', () => {
  it('keeps the newest lines up to its capacity, with bounded fields', () => {
    const ring = new LogRing(3);
    for (let i = 1; i <= 5; i++) ring.push({ level: 'info', msg: `line ${i}`, fields: { i, big: 'x'.repeat(1000) }, time: i });
    const lines = ring.since();
    expect(lines.map((l) => l.msg)).toEqual(['line 3', 'line 4', 'line 5']);
    expect(lines[0]!.fields.length).toBeLessThanOrEqual(400);
    expect(ring.since(lines[1]!.seq).map((l) => l.msg)).toEqual(['line 5']);
  });

  it('a tee logger writes to pino and keeps the lines pino would write, children with their bindings', () => {
    let out = '';
    const sink = new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) });
    const ring = new LogRing(10);
    const log = teeLogger(pino({ level: 'info' }, sink), ring);
    log.debug({}, 'not kept: below the level');
    log.info({ a: 1 }, 'kept');
    log.child({ dservice: 'echo' }).warn({ b: 2n as unknown as number }, 'from a child');
    log.fatal({}, 'fatal is kept as an error');
    expect(ring.since().map((l) => [l.level, l.msg, l.fields])).toEqual([
      ['info', 'kept', '{"a":1}'],
      ['warn', 'from a child', '{"dservice":"echo","b":"2"}'],
      ['error', 'fatal is kept as an error', ''],
    ]);
    expect(out).toContain('"msg":"kept"');
    expect(out).not.toContain('below the level');
  });
});
