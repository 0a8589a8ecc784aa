import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LINK_REQUEST, LinkFrameError, LinkFrameReader, encodeLinkHead, type LinkFrame } from './link-frames.js';
import { headerRecord } from './link-server.js';

const frameArb = fc.record({
  kind: fc.integer({ min: 1, max: 2 }),
  id: fc.integer({ min: 0, max: 0xffffffff }),
  meta: fc.string({ maxLength: 200 }),
  body: fc.uint8Array({ maxLength: 3000 }),
});

function encode(f: { kind: number; id: number; meta: string; body: Uint8Array }): Buffer {
  return Buffer.concat([encodeLinkHead(f.kind, f.id, f.meta, f.body.length), f.body]);
}

describe('LinkFrameReader', () => {
  it('gives back every frame, in order, however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 30 }), (frames, cuts) => {
        const stream = Buffer.concat(frames.map(encode));
        const got: LinkFrame[] = [];
        const reader = new LinkFrameReader(1 << 20, (f) => got.push({ ...f, body: Buffer.from(f.body) }));
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          reader.push(stream.subarray(at, at + n));
          at += n;
        }
        expect(got.map((f) => ({ kind: f.kind, id: f.id, meta: f.meta, body: new Uint8Array(f.body) }))).toEqual(
          frames.map((f) => ({ kind: f.kind, id: f.id, meta: f.meta, body: new Uint8Array(f.body) })),
        );
      }),
    );
  });

  it('hands out a frame that sits in one chunk as a view of it (no copy)', () => {
    const chunk = encode({ kind: LINK_REQUEST, id: 7, meta: '{}', body: Buffer.alloc(1000, 9) });
    let body: Buffer | null = null;
    new LinkFrameReader(1 << 20, (f) => (body = f.body)).push(chunk);
    expect(body!.buffer).toBe(chunk.buffer);
    expect(body!.length).toBe(1000);
  });

  it('refuses a frame longer than the limit before buffering it', () => {
    const reader = new LinkFrameReader(100, () => {});
    expect(() => reader.push(encodeLinkHead(LINK_REQUEST, 1, '{}', 500))).toThrowError(LinkFrameError);
  });

  it('refuses a length too short to hold a frame, and a meta that does not fit', () => {
    expect(() => new LinkFrameReader(100, () => {}).push(Buffer.from([0, 0, 0, 2, 1, 1]))).toThrowError(/outside/);
    const head = encodeLinkHead(LINK_REQUEST, 1, 'abcd', 0);
    head.writeUInt32BE(50, 9); // claims 50 bytes of meta in a 13-byte frame
    expect(() => new LinkFrameReader(100, () => {}).push(head)).toThrowError(/meta length 50/);
  });
});

describe('headerRecord', () => {
  it('lower-cases names, joins repeats with a comma and keeps set-cookie as a list, like node:http', () => {
    expect(headerRecord(['Content-Type', 'a/b', 'X-A', '1', 'x-a', '2', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2'])).toEqual({
      'content-type': 'a/b',
      'x-a': '1, 2',
      'set-cookie': ['a=1', 'b=2'],
    });
  });
});
