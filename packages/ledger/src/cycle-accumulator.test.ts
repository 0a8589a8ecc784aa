/**
 * The cycle close's fast paths give exactly what the plain computation gives: the in-place
 * Merkle root equals the tree of `merkleRoot`, and rows fed as text (`pushText`, what the stores
 * read) or in chunks (`pushChunk`, what the SQLite store reads) close into the same
 * totals, credits, held credits and roots as rows fed as bigints (`push`), whatever the amounts
 * (sums past 2^53, amounts past 15 digits).
 */
import * as crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CycleAccumulator, CycleKeyError, CycleReadFallback, type CycleRow, type HeldCredit } from './billing.js';
import { merkleRoot, merkleRootInPlace } from './merkle.js';
import { TreeHasher } from './tree-hasher.js';

const leaf = (i: number): Buffer => crypto.createHash('sha256').update(`leaf ${i}`).digest();

describe('merkleRootInPlace', () => {
  it('is merkleRoot of the same leaves, for every count up to 70 and some larger ones', () => {
    for (const n of [...Array.from({ length: 70 }, (_, i) => i + 1), 127, 128, 129, 1000, 4097]) {
      const leaves = Array.from({ length: n }, (_, i) => leaf(i));
      const buf = Buffer.concat([...leaves, leaf(-1)]); // a spare leaf after them is ignored
      expect(merkleRootInPlace(buf, n).toString('hex')).toBe(merkleRoot(leaves).toString('hex'));
    }
  });

  it('refuses an empty tree and a buffer too short for the leaves', () => {
    expect(() => merkleRootInPlace(Buffer.alloc(64), 0)).toThrow(RangeError);
    expect(() => merkleRootInPlace(Buffer.alloc(64), 3)).toThrow(RangeError);
  });
});

interface Row {
  account: string;
  miner: string;
  ids: [string, string, string];
  /** null: unpriced */
  money: { price: bigint; parts: [bigint, bigint, bigint, bigint] } | null;
}

const amount = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 2n ** 53n }), fc.bigInt({ min: 0n, max: 10n ** 22n }));
const arbRow: fc.Arbitrary<Row> = fc.record({
  // Ids with characters a chunk uses as separators, digits, and multi-byte UTF-8.
  account: fc.constantFrom('acct_a', 'acct_b', 'acct_c', 'acct_é;1,2', '口座😀'),
  miner: fc.constantFrom('ab'.repeat(32), 'cd'.repeat(32)),
  ids: fc.tuple(fc.constantFrom('dev_0', 'dev_1', '12,3;'), fc.constantFrom('op_1', 'op_2', 'öp'), fc.constant('charity')),
  money: fc.option(fc.record({ price: amount, parts: fc.tuple(amount, amount, amount, amount) }), { nil: null }),
});

/** A chunk field as the SQLite store's query writes it: its UTF-8 length in bytes, ',', its bytes (one character each). */
const field = (s: string): string => {
  const b = Buffer.from(s, 'utf8');
  return `${b.length},${b.toString('latin1')}`;
};
/** A chunk row: seq, then for a priced row ',' and price, tokens, key and parts as fields. */
const chunkRow = (seq: number, money: { price: string; tokens: string; key: string; parts: string } | null): string =>
  money === null ? `${seq}` : `${seq},${field(money.price)}${field(money.tokens)}${field(money.key)}${field(money.parts)}`;

function closeBoth(rows: readonly Row[], batchSize: number, registered: ReadonlyMap<string, string>, held: readonly HeldCredit[], chunkSize = 7) {
  const plain = new CycleAccumulator(batchSize);
  const text = new CycleAccumulator(batchSize);
  const chunked = new CycleAccumulator(batchSize);
  let leaves: Buffer[] = [];
  let lines: string[] = [];
  const flush = (): void => {
    if (lines.length > 0) chunked.pushChunk(Buffer.concat(leaves), lines.join(';'));
    leaves = [];
    lines = [];
  };
  rows.forEach((r, i) => {
    const seq = 10 + i * 3;
    const hash = leaf(i);
    const m = r.money;
    const tokens = m === null ? null : m.parts.reduce((a, b) => a + b, 0n);
    const row: CycleRow = {
      seq, account: r.account, miner: r.miner, priceMicros: m?.price ?? null, tokens,
      parts: m === null ? null : { miner: m.parts[0], developer: m.parts[1], operator: m.parts[2], charity: m.parts[3] },
      developer: m === null ? null : r.ids[0], operator: m === null ? null : r.ids[1], charity: m === null ? null : r.ids[2], hash,
    };
    plain.push(row);
    const key = m === null ? `${r.account}\u0000${r.miner}\u0000\u0000\u0000` : [r.account, r.miner, ...r.ids].join('\u0000');
    const hex = i % 2 === 0 ? hash.toString('hex') : hash.toString('hex').toUpperCase();
    text.pushText(seq, hex, key, m?.price.toString() ?? null, tokens?.toString() ?? null, m === null ? null : m.parts.join('/'));
    leaves.push(hash);
    lines.push(chunkRow(seq, m === null ? null : { price: m.price.toString(), tokens: tokens!.toString(), key, parts: m.parts.join('/') }));
    if (lines.length === chunkSize) flush();
  });
  flush();
  return [plain.finish(7, { registered, held }), text.finish(7, { registered, held }), chunked.finish(7, { registered, held })] as const;
}

describe('TreeHasher', () => {
  it('builds on its worker thread the roots merkleRootInPlace builds, for any batch sizes', () => {
    const hasher = new TreeHasher();
    try {
      const sizes = [1, 2, 3, 7, 64, 65, 1000, 4096];
      const want = sizes.map((n, k) => {
        const buf = Buffer.concat(Array.from({ length: n }, (_, i) => leaf(k * 10_000 + i)));
        hasher.add(k, buf);
        buf.fill(0); // the hasher took a copy: the caller may reuse its buffer at once
        return merkleRoot(Array.from({ length: n }, (_, i) => leaf(k * 10_000 + i))).toString('hex');
      });
      expect(hasher.roots()).toEqual(want);
    } finally {
      hasher.close();
    }
  });
});

describe('CycleAccumulator', () => {
  it('property: rows pushed as text and as bigints close identically (totals, credits, held, batches, roots)', () => {
    fc.assert(
      fc.property(fc.array(arbRow, { maxLength: 60 }), fc.integer({ min: 1, max: 9 }), fc.boolean(), fc.integer({ min: 1, max: 20 }), (rows, batchSize, registerMiner, chunkSize) => {
        const registered = new Map<string, string>([['developer\u0000dev_0', '0x' + '22'.repeat(20)]]);
        if (registerMiner) registered.set(`miner\u0000${'ab'.repeat(32)}`, '0x' + '11'.repeat(20));
        const held: HeldCredit[] = registerMiner ? [{ cycle: 3, account: 'acct_z', role: 'miner', beneficiary: 'ab'.repeat(32), tokens: 5n, releasedIn: null }] : [];
        const [a, b, c] = closeBoth(rows, batchSize, registered, held, chunkSize);
        expect(b).toEqual(a);
        expect(c).toEqual(a);
        const tokens = rows.reduce((s, r) => s + (r.money === null ? 0n : r.money.parts.reduce((x, y) => x + y, 0n)), 0n);
        expect(b.tokens).toBe(tokens);
        expect(b.debits.reduce((s, d) => s + d.tokens, 0n)).toBe(tokens);
        expect(b.credits.reduce((s, c) => s + c.tokens, 0n)).toBe(tokens);
      }),
      { numRuns: 200 },
    );
  });

  it('sums past 2^53 exactly when every amount is small enough for a double', () => {
    const big = 2n ** 52n + 7n;
    const rows: Row[] = Array.from({ length: 9 }, () => ({ account: 'acct_a', miner: 'ab'.repeat(32), ids: ['dev_0', 'op_1', 'charity'], money: { price: big, parts: [big, 1n, 0n, big] } }));
    const [a, b, c] = closeBoth(rows, 4, new Map(), []);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect(b.tokens).toBe(9n * (2n * big + 1n));
    expect(b.priceMicros).toBe(9n * big);
  });

  it('keeps apart two old rows whose ids hold NULs, even where their ids joined by NUL read the same', () => {
    const row = (seq: number, account: string, miner: string): CycleRow => ({
      seq, account, miner, priceMicros: 10n, tokens: 10n, parts: { miner: 7n, developer: 1n, operator: 1n, charity: 1n },
      developer: 'dev', operator: 'op', charity: 'ch', hash: leaf(seq),
    });
    const acc = new CycleAccumulator(4);
    acc.push(row(1, 'a\u0000b', 'm'));
    acc.push(row(2, 'a', 'b\u0000m'));
    const s = acc.finish(1, { registered: new Map(), held: [] });
    expect(s.debits.map((d) => [d.account, d.tokens])).toEqual(expect.arrayContaining([['a\u0000b', 10n], ['a', 10n]]));
    expect(s.debits).toHaveLength(2);
  });

  it('takes the exact path for amounts that are not plain digits, with the same result', () => {
    const acc = new CycleAccumulator(4);
    const ok = new CycleAccumulator(4);
    acc.pushText(1, '00'.repeat(32), 'a\u0000m\u0000d\u0000o\u0000c', '10', '10', '7/1/1/1');
    ok.pushText(1, '00'.repeat(32), 'a\u0000m\u0000d\u0000o\u0000c', '10', '10', '7/1/1/1');
    // "1e3" is 1000 as a double but no integer BigInt reads: refused, not summed as 1000.
    expect(() => acc.pushText(2, '00'.repeat(32), 'a\u0000m\u0000d\u0000o\u0000c', '1e3', '10', '7/1/1/1')).toThrow(SyntaxError);
    expect(acc.finish(1, { registered: new Map(), held: [] }).tokens).toBe(ok.finish(1, { registered: new Map(), held: [] }).tokens);
  });

  it('refuses a key that is not five ids (an id with a NUL), and rows out of order', () => {
    const acc = new CycleAccumulator(4);
    expect(() => acc.pushText(1, '00'.repeat(32), 'a\u0000b\u0000c', '1', '1', '1/0/0/0')).toThrow(CycleKeyError);
    const ordered = new CycleAccumulator(4);
    ordered.pushText(5, '00'.repeat(32), 'a\u0000m\u0000d\u0000o\u0000c', null, null, null);
    expect(() => ordered.pushText(5, '00'.repeat(32), 'a\u0000m\u0000d\u0000o\u0000c', null, null, null)).toThrow(/out of order/);
    expect(() => ordered.pushText(6, 'zz'.repeat(32), 'a\u0000m\u0000d\u0000o\u0000c', null, null, null)).toThrow(/malformed hash/);
  });

  it('chunks: odd amounts take the exact path; separators inside a field stay in it; an id with a NUL, rows out of order, a bad hash and missing leaves are refused', () => {
    const h = leaf(0);
    const ids = 'a\u0000m\u0000d\u0000o\u0000c';
    const row = (seq: number, price: string, tokens: string, parts: string, key = ids) => chunkRow(seq, { price, tokens, key, parts });
    const want = new CycleAccumulator(4);
    want.pushText(1, h.toString('hex'), ids, '10', '10', '7/1/1/1');
    want.pushText(2, h.toString('hex'), ids, '0012', '1234567890123456789', '1234567890123456780/3/3/3');
    want.pushText(3, h.toString('hex'), ids, '', '5', '5/0/0/0');
    want.pushText(4, h.toString('hex'), ids, '5', '5', '5/0/0/0');
    const got = new CycleAccumulator(4);
    got.pushChunk(Buffer.concat([h, h]), [row(1, '10', '10', '7/1/1/1'), row(2, '0012', '1234567890123456789', '1234567890123456780/3/3/3')].join(';'));
    got.pushChunk(Buffer.concat([h, h]), [row(3, '', '5', '5/0/0/0'), row(4, '5', '5', '5/0/0/0')].join(';'));
    expect(got.finish(1, { registered: new Map(), held: [] })).toEqual(want.finish(1, { registered: new Map(), held: [] }));
    expect(() => new CycleAccumulator(4).pushChunk(h, row(1, '1e3', '10', '7/1/1/1'))).toThrow(SyntaxError);
    // Separators inside an amount are part of it (refused as an amount), never the start of another field.
    expect(() => new CycleAccumulator(4).pushChunk(h, row(1, '1,2', '10', '7/1/1/1'))).toThrow(SyntaxError);
    expect(() => new CycleAccumulator(4).pushChunk(h, row(1, '1\u00002', '10', '7/1/1/1'))).toThrow(SyntaxError);
    expect(() => new CycleAccumulator(4).pushChunk(h, row(1, '10', '10', '7/1/1/1', 'a\u0000b\u0000m\u0000d\u0000o\u0000c'))).toThrow(CycleKeyError);
    expect(() => new CycleAccumulator(4).pushChunk(Buffer.concat([h, h]), `${row(2, '1', '1', '1/0/0/0')};1`)).toThrow(CycleReadFallback);
    expect(() => new CycleAccumulator(4).pushChunk(h, '1!')).toThrow(/malformed hash/);
    expect(() => new CycleAccumulator(4).pushChunk(h, '1;2')).toThrow(/fewer leaves/);
    expect(() => new CycleAccumulator(4).pushChunk(Buffer.concat([h, h]), '1')).toThrow(/2 leaves for 1 rows/);
    expect(() => new CycleAccumulator(4).pushChunk(h, '1,9,10')).toThrow(/not a well-formed/);
    expect(() => new CycleAccumulator(4).pushChunk(h, '1x')).toThrow(/not a well-formed/);
  });
});
