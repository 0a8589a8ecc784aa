import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { CgnError } from './errors.js';
import { LIMITS, frameProblem, isWritableHeader, validateFrame, workRequestProblem } from './validate.js';
import { decodeMessage } from './codec.js';
import { describeValue, excerpt } from './excerpt.js';

const result = (over: Record<string, unknown>) => ({
  t: 'result', v: 1, id: 'w1', status: 200, headers: ['content-type', 'text/plain'], body: new Uint8Array(1),
  metering: { execUs: 1, cpuUs: 1 }, resultHash: new Uint8Array(32), ...over,
});

function badFrame(value: unknown): CgnError {
  const p = frameProblem(value);
  expect(p).toBeInstanceOf(CgnError);
  expect(p!.code).toBe('bad_frame');
  return p!;
}

describe('result frames are answers a Node HTTP server can write', () => {
  it('takes a final status 200-599 only (an interim 1xx would leave the DApp waiting)', () => {
    for (const status of [100, 101, 103, 199, 600, 0, -1]) expect(badFrame(result({ status })).details?.['field']).toBe('status');
    for (const status of [200, 204, 304, 404, 599]) expect(frameProblem(result({ status }))).toBeNull();
  });

  it('refuses header values with characters HTTP cannot carry, and names that are not tokens', () => {
    expect(badFrame(result({ headers: ['x-name', 'caf\u00e9 \u2603'] })).message).toMatch(/value of "x-name"/);
    expect(badFrame(result({ headers: ['x-name', 'a\r\nset-cookie: x=1'] })).details?.['field']).toBe('headers');
    expect(badFrame(result({ headers: ['bad name', 'v'] })).message).toMatch(/not an HTTP token/);
    expect(badFrame(result({ headers: ['', 'v'] })).details?.['field']).toBe('headers');
    expect(frameProblem(result({ headers: ['x-latin1', 'caf\u00e9\tok'] }))).toBeNull();
  });

  it('bounds result headers at 16 KiB as on the wire, work headers at 64 KiB', () => {
    const big = (n: number) => ['x-big', 'a'.repeat(n)];
    expect(frameProblem(result({ headers: big(LIMITS.maxResultHeaderBytes - 9) }))).toBeNull();
    expect(badFrame(result({ headers: big(LIMITS.maxResultHeaderBytes - 8) })).details?.['field']).toBe('headers');
    expect(workRequestProblem('GET', '/', big(20_000))).toBeNull();
    expect(workRequestProblem('GET', '/', big(LIMITS.maxHeaderBytes))?.details?.['field']).toBe('headers');
  });

  it('isWritableHeader agrees with the validator', () => {
    expect(isWritableHeader('content-type', 'text/plain')).toBe(true);
    expect(isWritableHeader('x', '\u0100')).toBe(false);
    expect(isWritableHeader('x y', 'v')).toBe(false);
  });
});

describe('work requests are checked against the limits a miner enforces', () => {
  it('names the field over its limit', () => {
    expect(workRequestProblem('GET', '/'.repeat(LIMITS.maxPathLength), [])).toBeNull();
    expect(workRequestProblem('GET', '/'.repeat(LIMITS.maxPathLength + 1), [])?.details?.['field']).toBe('path');
    const many = Array.from({ length: LIMITS.maxHeaderCount + 1 }, (_, i) => [`x-${i}`, 'v']).flat();
    expect(workRequestProblem('GET', '/', many)?.details?.['field']).toBe('headers');
    expect(workRequestProblem('GET', '/', many.slice(2))).toBeNull();
  });
});

describe('the validator never throws anything but a bad_frame CgnError', () => {
  it('on a version that cannot be turned into text', () => {
    expect(badFrame({ t: 'ping', v: { toString: 1 }, ts: 1 }).message).toMatch(/unsupported protocol version/);
    let deep: unknown[] = [];
    for (let i = 0; i < 5000; i++) deep = [deep];
    expect(badFrame({ t: 'ping', v: deep, ts: 1 }).message).toMatch(/a list of 1/);
  });

  it('on a value whose getter throws', () => {
    const o = { t: 'ping', v: 1 };
    Object.defineProperty(o, 'ts', { get: () => { throw new TypeError('boom'); }, enumerable: true });
    expect(badFrame(o).message).toBe('bad frame: a value that cannot be read');
  });

  it('on an array nested 5,000 deep inside MessagePack', () => {
    const packr = new Packr({ useRecords: false });
    const deep = Buffer.concat([Buffer.alloc(5000, 0x91), Buffer.from([0x90])]); // [[[...[]...]]]
    const mapOf = (key: string, value: Buffer, rest: Record<string, unknown>) => {
      const head = packr.pack(rest); // a fixmap: bump its size by one and append key and value
      return Buffer.concat([Buffer.from([head[0]! + 1]), head.subarray(1), packr.pack(key), value]);
    };
    for (const m of [mapOf('ts', deep, { t: 'ping', v: 1 }), mapOf('v', deep, { t: 'ping', ts: 1 }), mapOf('t', deep, { v: 1 })]) {
      expect(() => decodeMessage(m)).toThrow(CgnError);
    }
  });

  it('quotes a long or hostile type only as a bounded, escaped excerpt', () => {
    const p = badFrame({ t: 'x'.repeat(1_000_000) + '\u001b[2J', v: 1 });
    expect(p.message.length).toBeLessThan(100);
    expect(badFrame({ t: 'pi\nng', v: 1 }).message).toContain('\\n');
  });

  it('for any value at all (fast-check)', () => {
    fc.assert(
      fc.property(fc.anything({ withObjectString: true, withNullPrototype: true, withBigInt: true, withTypedArray: true, withSparseArray: true, maxDepth: 4 }), fc.constantFrom('hello', 'work', 'result', 'advertise', 'error', 'zzz'), (v, t) => {
        for (const value of [v, { t, v: 1, ...(typeof v === 'object' && v !== null ? (v as object) : { x: v }) }, { t, v }]) {
          try {
            validateFrame(value);
          } catch (e) {
            expect(e).toBeInstanceOf(CgnError);
            expect((e as CgnError).code).toBe('bad_frame');
            expect((e as CgnError).message.length).toBeLessThanOrEqual(LIMITS.maxMessageLength);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('excerpt', () => {
  it('bounds and escapes whatever it is given', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 2000 }), fc.integer({ min: 16, max: 500 }), (text, max) => {
        const e = excerpt(text, max);
        expect(e.length).toBeLessThanOrEqual(max + 14);
        expect(/^[\x20-\x7e…]*$/.test(e)).toBe(true);
        if (/^[\x20-\x5b\x5d-\x7e]*$/.test(text) && text.length <= max) expect(e).toBe(text);
      }),
    );
    expect(excerpt('a'.repeat(5000), 100)).toMatch(/…\(\+\d+\)$/);
    expect(excerpt('\u001b[31mred')).toBe('\\u001b[31mred');
    // Found by the property above: short text is never cut for a marker it does not need.
    expect(excerpt('      ', 16)).toBe('      ');
    expect(excerpt('x'.repeat(16), 16)).toBe('x'.repeat(16));
    expect(excerpt('x'.repeat(17), 16)).toBe('xxxx…(+13)');
  });

  it('describes values without calling their methods', () => {
    expect(describeValue({ toString: () => { throw new Error('x'); } })).toBe('a object');
    expect(describeValue(new Uint8Array(3))).toBe('3 bytes');
    expect(describeValue('x'.repeat(100)).length).toBeLessThan(60);
  });
});
