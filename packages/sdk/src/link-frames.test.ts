import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LINK_REQUEST, LinkFrameError, LinkFrameReader, LinkWriter, encodeLinkHead, type LinkFrame } from './link-frames.js';
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

describe('LinkWriter', () => {
  /** A socket that records what reaches the wire: writes made while uncorked, or flushed by the last uncork. */
  function fakeSocket() {
    let corks = 0;
    let held: Buffer[] = [];
    const flushes: Buffer[][] = [];
    const socket = {
      destroyed: false,
      cork: () => void corks++,
      uncork: () => {
        if (corks > 0 && --corks === 0 && held.length > 0) {
          flushes.push(held);
          held = [];
        }
      },
      write: (b: Uint8Array) => {
        if (corks > 0) held.push(Buffer.from(b));
        else flushes.push([Buffer.from(b)]);
        return true;
      },
    };
    return { socket: socket as unknown as import('node:net').Socket, flushes };
  }
  const turn = () => new Promise((r) => setImmediate(r));

  it('without the option, frames of one turn leave together at the end of the turn', async () => {
    const { socket, flushes } = fakeSocket();
    const w = new LinkWriter(socket);
    w.write(LINK_REQUEST, 1, '{}', Buffer.from('a'));
    w.write(LINK_REQUEST, 2, '{}', Buffer.from('b'));
    expect(flushes).toHaveLength(0);
    await turn();
    expect(flushes).toHaveLength(1);
    expect(flushes[0]).toHaveLength(4);
  });

  it('after a quiet spell a frame leaves at once; frames soon after it batch again', async () => {
    let t = 100;
    const { socket, flushes } = fakeSocket();
    const w = new LinkWriter(socket, { writeAtOnceWhenQuietMs: 1, now: () => t });
    w.write(LINK_REQUEST, 1, '{}', { chunks: [Buffer.from('a'), Buffer.from('b')], length: 2 });
    expect(flushes).toHaveLength(1);
    expect(Buffer.concat(flushes[0]!).subarray(-2).toString()).toBe('ab');
    t += 0.5;
    w.write(LINK_REQUEST, 2, '{}', Buffer.from('c'));
    w.write(LINK_REQUEST, 3, '{}', Buffer.from('d'));
    expect(flushes).toHaveLength(1);
    await turn();
    expect(flushes).toHaveLength(2);
    t += 5;
    w.write(LINK_REQUEST, 4, '{}', undefined);
    expect(flushes).toHaveLength(3);
    const reader: LinkFrame[] = [];
    const r = new LinkFrameReader(1024, (f) => reader.push(f));
    for (const f of flushes) for (const b of f) r.push(b);
    expect(reader.map((f) => [f.id, f.body.toString()])).toEqual([[1, 'ab'], [2, 'c'], [3, 'd'], [4, '']]);
  });
});
