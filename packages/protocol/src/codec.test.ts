import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { CgnError } from './errors.js';
import { MAX_KEPT_PACK_BUFFER, SEPARATE_BODY_BYTES, decodeMessage, decodeMessageFragments, encodeMessage, encodeMessageParts, frame } from './codec.js';
import { isChunked, joinBody } from './body.js';
import type { ChunkedBody } from './body.js';
import { generateMinerKey, signChallenge, verifyChallenge, exportMinerKey, importMinerKey } from './auth.js';
import type { Frame, OutgoingFrame } from './frames.js';

const bytes = (n?: number) => (n === undefined ? fc.uint8Array({ maxLength: 512 }) : fc.uint8Array({ minLength: n, maxLength: n }));
/** Patterned bytes to cut large bodies from (a copy per body, made at memcpy speed). */
const PATTERN = new Uint8Array(200_016).map((_, i) => (i * 31 + (i >> 8)) & 0xff);
const id = fc.string({ minLength: 1, maxLength: 40 });
const headers = fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 })), { maxLength: 8 }).map((p) => p.flat());
const ms = fc.integer({ min: 0, max: 2 ** 40 });
/** Headers a result may carry: token names, Latin-1 values without control characters. */
const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&\'*+^`|~'.split(''));
const valueChar = fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c));
const httpHeaders = fc
  .array(fc.tuple(fc.string({ unit: tokenChar, minLength: 1, maxLength: 20 }), fc.string({ unit: valueChar, maxLength: 40 })), { maxLength: 8 })
  .map((p) => p.flat());

const arbFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ t: fc.constant('hello' as const), publicKey: bytes(32), agent: fc.string({ maxLength: 30 }) }),
  fc.record({ t: fc.constant('challenge' as const), nonce: bytes(32), nodeId: id }),
  fc.record({ t: fc.constant('auth' as const), signature: bytes(64) }),
  fc.record({ t: fc.constant('welcome' as const), minerId: id, heartbeatMs: fc.integer({ min: 1, max: 60000 }) }),
  fc.record({
    t: fc.constant('advertise' as const),
    tier: fc.constantFrom('open' as const, 'attested' as const, 'dedicated' as const),
    slots: fc.integer({ min: 1, max: 64 }),
    dservices: fc.array(fc.record({ name: id, version: fc.string({ maxLength: 10 }), digest: id }), { maxLength: 4 }),
    resources: fc.record({ cpus: fc.integer({ min: 0, max: 256 }), memoryMb: fc.integer({ min: 0, max: 1 << 20 }) }),
    payoutAddress: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => `0x${Buffer.from(b).toString('hex')}`),
    stakeProof: bytes(65),
  }, { requiredKeys: ['t', 'tier', 'slots', 'dservices', 'resources'] }),
  fc.record({ t: fc.constant('work' as const), id, dservice: id, method: fc.constantFrom('GET', 'POST'), path: fc.string({ minLength: 1, maxLength: 60 }), headers, body: bytes(), timeoutMs: fc.integer({ min: 1, max: 100000 }) }),
  fc.record({ t: fc.constant('ack' as const), id }),
  fc.record({
    t: fc.constant('result' as const), id, status: fc.integer({ min: 200, max: 599 }), headers: httpHeaders, body: bytes(),
    metering: fc.record({ execUs: fc.integer({ min: 0, max: 86_400_000_000 }), cpuUs: ms }), resultHash: bytes(32),
  }),
  fc.record({ t: fc.constant('cancel' as const), id }),
  fc.record({ t: fc.constant('ping' as const), ts: ms }),
  fc.record({ t: fc.constant('pong' as const), ts: ms }),
  fc.record({ t: fc.constant('beat' as const) }),
  fc.record({ t: fc.constant('drain' as const), reason: fc.string({ maxLength: 50 }) }),
  fc.record({ t: fc.constant('attest' as const), nonce: bytes(32) }),
  fc.record({ t: fc.constant('notice' as const), kind: fc.constantFrom('earnings_held', 'other'), message: fc.string({ maxLength: 200 }) }),
  fc.record({
    t: fc.constant('quote' as const), nonce: bytes(32), quote: fc.uint8Array({ maxLength: 300 }), signature: fc.uint8Array({ maxLength: 256 }),
    log: fc.array(fc.record({ kind: fc.constantFrom('runtime' as const, 'dservice' as const), name: id, digest: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')) }), { maxLength: 3 }),
  }),
  fc.record({ t: fc.constant('error' as const), code: fc.constantFrom('miner_failed' as const, 'bad_frame' as const), message: fc.string({ maxLength: 50 }) }),
).map((f) => frame(f as never) as Frame);

/** Compares with bytes normalised to plain Uint8Array (msgpackr decodes bin as Buffer). */
/** Frames as plain data, bytes (Buffer or Uint8Array alike) as hex, so equal content compares equal, fast. */
const norm = (x: unknown): unknown => {
  if (x instanceof Uint8Array) return `bytes:${Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex')}`;
  if (Array.isArray(x)) return x.map(norm);
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (v !== undefined) out[k] = norm(v);
    return out;
  }
  return x;
};

describe('frame codec', () => {
  it('round-trips every frame type, alone and batched', () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { minLength: 1, maxLength: 5 }), (frames) => {
        const decoded = decodeMessage(encodeMessage(frames));
        expect(norm(decoded)).toEqual(norm(frames));
      }),
    );
  });

  it('keeps bodies as raw bytes (no base64 inflation)', () => {
    const body = new Uint8Array(10_000).fill(7);
    const enc = encodeMessage([frame({ t: 'ack', id: 'x' }), frame({ t: 'work', id: 'w', dservice: 'd', method: 'POST', path: '/', headers: [], body, timeoutMs: 5 })]);
    expect(enc.length).toBeLessThan(10_100);
    const [, w] = decodeMessage(enc);
    expect(w?.t === 'work' && w.body).toBeInstanceOf(Uint8Array);
  });

  it('rejects any random bytes with a CgnError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
        try {
          decodeMessage(data);
        } catch (e) {
          expect(e).toBeInstanceOf(CgnError);
          expect((e as CgnError).code).toBe('bad_frame');
        }
      }),
    );
  });

  it('rejects a truncated frame', () => {
    const enc = encodeMessage([frame({ t: 'ping', ts: 12345 })]);
    expect(() => decodeMessage(enc.subarray(0, enc.length - 2))).toThrowError(CgnError);
  });

  it('rejects a frame with one field corrupted, naming the field', () => {
    const packr = new Packr({ useRecords: false });
    fc.assert(
      fc.property(arbFrame, fc.constantFrom(null, 'x', -1, 1.5, [], {}, new Uint8Array(3)), (f, junk) => {
        const keys = Object.keys(f).filter((k) => k !== 'v');
        const key = keys[keys.length - 1]!;
        const bad = { ...f, [key]: junk };
        try {
          decodeMessage(packr.pack(bad));
          // some junk values are valid for some fields (e.g. 'x' for a string): then it must round-trip
        } catch (e) {
          expect(e).toBeInstanceOf(CgnError);
          expect((e as Error).message).toMatch(/bad .*frame/);
        }
      }),
    );
  });

  it('checks the stake fields of an advertisement', () => {
    const packr = new Packr({ useRecords: false });
    const ad = { t: 'advertise', v: 1, tier: 'open', slots: 1, dservices: [], resources: { cpus: 1, memoryMb: 1 } };
    expect(() => decodeMessage(packr.pack({ ...ad, payoutAddress: '0x1234' }))).toThrowError(/payoutAddress/);
    expect(() => decodeMessage(packr.pack({ ...ad, stakeProof: new Uint8Array(64) }))).toThrowError(/stakeProof.*65 bytes/);
    expect(decodeMessage(packr.pack({ ...ad, payoutAddress: `0x${'aB'.repeat(20)}`, stakeProof: new Uint8Array(65) }))[0]).toMatchObject({ payoutAddress: `0x${'aB'.repeat(20)}` });
  });

  it('carries an advertised payout address, and refuses one that is not an EVM address', () => {
    const ad = { t: 'advertise' as const, tier: 'open' as const, slots: 1, dservices: [], resources: { cpus: 1, memoryMb: 1 } };
    const payoutAddress = `0x${'aB'.repeat(20)}`;
    expect(decodeMessage(encodeMessage([frame({ ...ad, payoutAddress })]))).toMatchObject([{ payoutAddress }]);
    expect(decodeMessage(encodeMessage([frame(ad)]))[0]).not.toHaveProperty('payoutAddress');
    for (const bad of ['0x12', `${'ab'.repeat(20)}`, `0x${'zz'.repeat(20)}`, 7]) {
      expect(() => decodeMessage(encodeMessage([frame({ ...ad, payoutAddress: bad as string })]))).toThrow(/payoutAddress/);
    }
  });

  it('rejects unknown types, wrong versions and non-maps', () => {
    const packr = new Packr({ useRecords: false });
    expect(() => decodeMessage(packr.pack({ t: 'teleport', v: 1 }))).toThrowError(/unknown type/);
    expect(() => decodeMessage(packr.pack({ t: 'ping', v: 99, ts: 1 }))).toThrowError(/version 99/);
    expect(() => decodeMessage(packr.pack([1, 2, 3]))).toThrowError(/not a map/);
    expect(() => decodeMessage(packr.pack({ t: 'work', v: 1, id: 'x' }))).toThrowError(/bad work frame: dservice/);
    expect(() => decodeMessage(new Uint8Array(0))).toThrowError(/empty/);
  });
});

describe('the packing buffer after a large frame', () => {
  it('a large frame does not leave later frames in a buffer sized for it (idle memory)', () => {
    const probe = (n: number) => frame({ t: 'probe', id: 'p1', seed: new Uint8Array(32), chains: 0, steps: 0, every: 1, payload: new Uint8Array(n).fill(7) });
    const payloadOf = (m: Buffer) => Buffer.from((decodeMessage(m)[0] as { payload: Uint8Array }).payload);
    const expected = Buffer.alloc(1024 * 1024, 7);
    const big = encodeMessage([probe(1024 * 1024)]);
    expect(payloadOf(big).equals(expected)).toBe(true);
    for (let i = 0; i < 50; i++) {
      const small = encodeMessage([frame({ t: 'ping', ts: i })]);
      expect(decodeMessage(small)[0]).toMatchObject({ t: 'ping', ts: i });
      expect(small.buffer.byteLength).toBeLessThanOrEqual(MAX_KEPT_PACK_BUFFER);
    }
    // The large frame's bytes are its own still: later packing did not write over them.
    expect(payloadOf(big).equals(expected)).toBe(true);
  });
});

describe('miner auth', () => {
  it('a signature over the nonce verifies, and fails for another nonce, node or key', () => {
    const k = generateMinerKey();
    const k2 = importMinerKey(exportMinerKey(k));
    expect(Buffer.from(k2.publicKey)).toEqual(Buffer.from(k.publicKey));
    const nonce = new Uint8Array(32).fill(1);
    const sig = signChallenge(k, nonce, 'node-a');
    expect(verifyChallenge(k.publicKey, nonce, 'node-a', sig)).toBe(true);
    expect(verifyChallenge(k.publicKey, new Uint8Array(32), 'node-a', sig)).toBe(false);
    expect(verifyChallenge(k.publicKey, nonce, 'node-b', sig)).toBe(false);
    expect(verifyChallenge(generateMinerKey().publicKey, nonce, 'node-a', sig)).toBe(false);
    expect(verifyChallenge(new Uint8Array(32), nonce, 'node-a', sig)).toBe(false);
  });
});

describe('encodeMessageParts (large bodies sent apart, uncopied)', () => {
  const big = fc.integer({ min: 0, max: 200_000 }).map((n) => PATTERN.slice(n % 7, n % 7 + n));
  /** Splits bytes into 1..6 chunks at arbitrary cuts, as a socket delivers them. */
  const chunked = (b: Uint8Array, cuts: number[]): ChunkedBody => {
    const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
    const chunks: Uint8Array[] = [];
    let from = 0;
    for (const c of [...at, b.length]) {
      chunks.push(Buffer.from(b.subarray(from, c)));
      from = c;
    }
    return { chunks, length: b.length };
  };

  it('decodes to the same frames as encodeMessage, whatever the body sizes and chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(arbFrame, fc.tuple(big, fc.array(fc.nat(), { maxLength: 5 }), fc.boolean()).map(([b, cuts, asChunks]) =>
        ({ plain: frame({ t: 'work', id: 'w', dservice: 'd', method: 'POST', path: '/p', headers: ['a', 'b'], body: b, timeoutMs: 9 }) as Frame, sent: frame({ t: 'work', id: 'w', dservice: 'd', method: 'POST', path: '/p', headers: ['a', 'b'], body: asChunks ? chunked(b, cuts) : b, timeoutMs: 9 }) as OutgoingFrame }))),
      { minLength: 1, maxLength: 4 }), (items) => {
        const plain = items.map((x) => ('plain' in x ? x.plain : x));
        const sent = items.map((x) => ('sent' in x ? x.sent : x));
        const parts = encodeMessageParts(sent);
        expect(norm(decodeMessage(Buffer.concat(parts)))).toEqual(norm(decodeMessage(encodeMessage(plain))));
      }),
      { numRuns: 60 },
    );
  });

  it('puts a large body in parts of its own, the very buffers it was given', () => {
    const body = Buffer.alloc(SEPARATE_BODY_BYTES, 5);
    const parts = encodeMessageParts([frame({ t: 'ack', id: 'a' }), frame({ t: 'result', id: 'r', status: 200, headers: [], body, metering: { execUs: 1, cpuUs: 1 }, resultHash: new Uint8Array(32) }), frame({ t: 'ping', ts: 1 })]);
    expect(parts).toHaveLength(3);
    expect(parts[1]).toBe(body);
    const c1 = Buffer.alloc(40_000, 1);
    const c2 = Buffer.alloc(40_000, 2);
    const w = encodeMessageParts([frame({ t: 'work', id: 'w', dservice: 'd', method: 'POST', path: '/', headers: [], body: { chunks: [c1, c2], length: 80_000 }, timeoutMs: 5 })]);
    expect(w.slice(1)).toEqual([c1, c2]);
    expect(w[1]).toBe(c1);
    const [decoded] = decodeMessage(Buffer.concat(w));
    expect(decoded?.t === 'work' && Buffer.from(decoded.body).equals(Buffer.concat([c1, c2]))).toBe(true);
  });

  it('packs small bodies, chunked or not, into one part', () => {
    const parts = encodeMessageParts([frame({ t: 'work', id: 'w', dservice: 'd', method: 'POST', path: '/', headers: [], body: { chunks: [Buffer.from('ab'), Buffer.from('c')], length: 3 }, timeoutMs: 5 }), frame({ t: 'ack', id: 'x' })]);
    expect(parts).toHaveLength(1);
    const [w] = decodeMessage(parts[0]!);
    expect(w?.t === 'work' && Buffer.from(w.body).toString()).toBe('abc');
  });
});

describe('decodeMessageFragments (a message as the WebSocket fragments it arrived in)', () => {
  const big = fc.integer({ min: 0, max: 150_000 }).map((n) => PATTERN.slice(n % 5, n % 5 + n));
  const workWith = (body: Uint8Array | ChunkedBody) => frame({ t: 'work', id: 'w', dservice: 'd', method: 'POST', path: '/p', headers: ['a', 'b'], body, timeoutMs: 9 }) as Frame;
  const resultWith = (body: Uint8Array) => frame({ t: 'result', id: 'r', status: 200, headers: [], body, metering: { execUs: 1, cpuUs: 2 }, resultHash: new Uint8Array(32) }) as Frame;
  const arbItem = fc.oneof(
    { weight: 2, arbitrary: arbFrame },
    fc.tuple(big, fc.integer({ min: 1, max: 4 })).map(([b, pieces]) => {
      const size = Math.ceil(b.length / pieces) || 1;
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < b.length; i += size) chunks.push(Buffer.from(b.subarray(i, i + size)));
      return workWith(chunks.length > 1 ? { chunks, length: b.length } : b);
    }),
    big.map(resultWith),
  );
  /** Frames with every body as one buffer, for comparing. */
  const joined = (frames: Frame[]) => norm(frames.map((f) => (f.t === 'work' ? { ...f, body: joinBody(f.body) } : f)));
  const outcome = (fn: () => Frame[]): { frames: unknown } | { error: string } => {
    try {
      return { frames: joined(fn()) };
    } catch (err) {
      expect(err).toBeInstanceOf(CgnError);
      return { error: (err as CgnError).code };
    }
  };
  /** Re-cuts bytes into fragments at arbitrary points. */
  const recut = (b: Buffer, cuts: number[]): Buffer[] => {
    const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
    const out: Buffer[] = [];
    let from = 0;
    for (const c of [...at, b.length]) {
      if (c > from) out.push(b.subarray(from, c));
      from = c;
    }
    return out.length > 0 ? out : [b];
  };

  it('gives the frames decodeMessage gives for the joined message, for the parts encodeMessageParts writes', () => {
    fc.assert(
      fc.property(fc.array(arbItem, { minLength: 1, maxLength: 4 }), (frames) => {
        const parts = encodeMessageParts(frames);
        expect(joined(decodeMessageFragments(parts))).toEqual(joined(decodeMessage(Buffer.concat(parts))));
      }),
      { numRuns: 80 },
    );
  });

  it('agrees with decodeMessage on the joined bytes, for any cut and any corrupted byte (same frames, or both refuse)', () => {
    fc.assert(
      fc.property(
        fc.array(arbItem, { minLength: 1, maxLength: 3 }),
        fc.option(fc.array(fc.nat(), { maxLength: 8 })),
        fc.option(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }))),
        (frames, cuts, corrupt) => {
          let parts = encodeMessageParts(frames);
          if (corrupt !== null) {
            const k = corrupt[0] % parts.length;
            const part = Buffer.from(parts[k]!);
            if (part.length > 0) part[corrupt[1] % part.length] = corrupt[2];
            parts = parts.map((p, i) => (i === k ? part : p));
          }
          const fragments = cuts === null ? parts : recut(Buffer.concat(parts), cuts);
          expect(outcome(() => decodeMessageFragments(fragments))).toEqual(outcome(() => decodeMessage(Buffer.concat(fragments))));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a large work body in the fragments it came in, uncopied; other bodies come joined', () => {
    const c1 = Buffer.alloc(70_000, 1);
    const c2 = Buffer.alloc(70_000, 2);
    const parts = encodeMessageParts([frame({ t: 'ack', id: 'a' }), workWith({ chunks: [c1, c2], length: 140_000 }), resultWith(Buffer.alloc(SEPARATE_BODY_BYTES, 3)), frame({ t: 'ping', ts: 1 })]);
    const frames = decodeMessageFragments(parts);
    expect(frames.map((f) => f.t)).toEqual(['ack', 'work', 'result', 'ping']);
    const work = frames[1]!;
    expect(work.t === 'work' && isChunked(work.body) && work.body.chunks[0] === c1 && work.body.chunks[1] === c2).toBe(true);
    const result = frames[2]!;
    expect(result.t === 'result' && result.body instanceof Uint8Array && result.body.length === SEPARATE_BODY_BYTES).toBe(true);
  });

  it('agrees with decodeMessage whatever body length a head declares', () => {
    fc.assert(
      fc.property(fc.array(arbItem, { minLength: 1, maxLength: 3 }), fc.nat(), fc.integer({ min: 0, max: 300_000 }), (frames, pick, declared) => {
        const parts = encodeMessageParts(frames);
        const heads = parts.map((p, i) => i).filter((i) => parts[i]!.length >= 5 && parts[i]![parts[i]!.length - 5] === 0xc6);
        if (heads.length === 0) return;
        const k = heads[pick % heads.length]!;
        const head = Buffer.from(parts[k]!);
        head.writeUInt32BE(declared, head.length - 4);
        const fragments = parts.map((p, i) => (i === k ? head : p));
        expect(outcome(() => decodeMessageFragments(fragments))).toEqual(outcome(() => decodeMessage(Buffer.concat(fragments))));
      }),
      { numRuns: 150 },
    );
  });

  it('refuses what decodeMessage refuses: a bin32 head with too few body bytes after it', () => {
    const parts = encodeMessageParts([workWith(Buffer.alloc(SEPARATE_BODY_BYTES, 9))]);
    const short = [parts[0]!, parts[1]!.subarray(1)];
    expect(() => decodeMessageFragments(short)).toThrow(CgnError);
  });
});
