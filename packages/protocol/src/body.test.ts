import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { bodyOf, bodyPieces, isChunked, joinBody, updateHashWithBody } from './body.js';

describe('Body', () => {
  it('is one buffer when the upload came in one chunk, and keeps several chunks unjoined', () => {
    const a = Buffer.from('abc');
    expect(bodyOf([], 0).length).toBe(0);
    expect(bodyOf([a], 3)).toBe(a);
    const b = bodyOf([a, Buffer.from('de')], 5);
    expect(isChunked(b)).toBe(true);
    expect(b.length).toBe(5);
    expect(joinBody(b).toString()).toBe('abcde');
  });

  it('hashes and joins to the same bytes as the chunks back to back', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), (parts) => {
        const chunks = parts.map((p) => Buffer.from(p));
        const whole = Buffer.concat(chunks);
        const body = bodyOf(chunks, whole.length);
        expect(body.length).toBe(whole.length);
        expect(joinBody(body).equals(whole)).toBe(true);
        expect(Buffer.concat(bodyPieces(body) as Uint8Array[]).equals(whole)).toBe(true);
        expect(updateHashWithBody(createHash('sha256'), body).digest('hex')).toBe(createHash('sha256').update(whole).digest('hex'));
      }),
    );
  });
});
