/**
 * Hostile images for MediaGen: real PNG, JPEG, WebP and GIF images made at start, then bit-flipped,
 * truncated, spliced, given absurd declared sizes (decompression bombs), with hostile transform
 * parameters — sent through the node to the real DService.
 */
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { hostileString, pct } from './hostile.js';
import type { Rng } from './rng.js';
import type { HttpCase } from './http-cases.js';

export type Seeds = Buffer[];

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

function crc32(b: Buffer): number {
  let c = -1;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid PNG that declares `w` x `h` pixels but holds only a few bytes of them. */
export function pngBomb(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(4096))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

export async function makeSeeds(): Promise<Seeds> {
  const base = sharp({ create: { width: 48, height: 32, channels: 3, background: { r: 200, g: 30, b: 90 } } });
  return Promise.all([
    base.clone().png().toBuffer(),
    base.clone().jpeg({ quality: 80 }).toBuffer(),
    base.clone().webp().toBuffer(),
    base.clone().gif().toBuffer(),
    sharp({ create: { width: 300, height: 200, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer(),
  ]);
}

function mutate(rng: Rng, seeds: Seeds): { image: Buffer; how: string } {
  const seed = rng.pick(seeds);
  switch (rng.int(0, 7)) {
    case 0:
      return { image: seed, how: 'intact' };
    case 1: {
      const b = Buffer.from(seed);
      const n = rng.int(1, 20);
      for (let i = 0; i < n; i++) b[rng.int(0, b.length - 1)] = rng.int(0, 255);
      return { image: b, how: `${n} bytes changed` };
    }
    case 2:
      return { image: seed.subarray(0, rng.int(0, seed.length - 1)), how: 'truncated' };
    case 3: {
      const other = rng.pick(seeds);
      return { image: Buffer.concat([seed.subarray(0, rng.int(0, seed.length)), other.subarray(rng.int(0, other.length))]), how: 'spliced' };
    }
    case 4: {
      const b = Buffer.from(seed);
      for (let i = 0; i < Math.min(32, b.length); i++) if (rng.chance(0.3)) b[i] = rng.int(0, 255);
      return { image: b, how: 'header bytes changed' };
    }
    case 5:
      return { image: pngBomb(rng.pick([65_535, 100_000, 1 << 30, 0, 1]), rng.pick([65_535, 100_000, 1 << 30, 0, 1])), how: 'declared size bomb' };
    case 6:
      return { image: rng.bytes(rng.size(50_000)), how: 'random bytes' };
    default: {
      const b = Buffer.from(seed);
      const at = rng.int(0, b.length);
      return { image: Buffer.concat([b.subarray(0, at), rng.bytes(rng.size(5000)), b.subarray(at)]), how: 'bytes inserted' };
    }
  }
}

const PARAMS: readonly (readonly [string, readonly string[]])[] = [
  ['width', ['1', '10', '4096', '100000', '0', '-5', '1.5', 'NaN', '1e9']],
  ['height', ['1', '20', '8192', '0', '-1', 'abc']],
  ['fit', ['cover', 'contain', 'fill', 'inside', 'outside', 'nope']],
  ['rotate', ['90', '45', '-1e9', '1e99', 'x']],
  ['crop', ['0,0,10,10', '5,5,1000,1000', '-1,0,1,1', '0,0,0,0', 'a,b,c,d']],
  ['blur', ['0.3', '1000', '0', '1e6']],
  ['sharpen', ['1', 'true', '-1']],
  ['format', ['png', 'jpeg', 'webp', 'avif', 'gif', 'bmp', '']],
  ['quality', ['1', '100', '0', '101']],
  ['grayscale', ['true', 'false', 'maybe']],
  ['flip', ['true', '1']],
  ['text', ['hi', 'x'.repeat(300), '\u2603']],
  ['textSize', ['1', '1000', '0']],
  ['background', ['#fff', 'red', '#zzzzzz', 'rgba(0,0,0,0.5)']],
];

export function imageCase(rng: Rng, seeds: Seeds, apiKey: string): HttpCase {
  const { image, how } = mutate(rng, seeds);
  const route = rng.weighted([[6, '/transform'], [3, '/info'], [1, '/nothing']] as const);
  const params: string[] = [];
  for (let i = rng.size(5); i > 0; i--) {
    const [k, vs] = rng.pick(PARAMS);
    params.push(`${k}=${pct(rng.chance(0.85) ? rng.pick(vs) : hostileString(rng, 50))}`);
  }
  const path = `${route}${params.length > 0 ? `?${params.join('&')}` : ''}`;
  const head = Buffer.from(
    `POST /v1/d/mediagen${path} HTTP/1.1\r\nhost: fuzz\r\nauthorization: Bearer ${apiKey}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${image.length}\r\nconnection: close\r\n\r\n`,
    'latin1',
  );
  return { what: `MediaGen ${path.slice(0, 80)} with a ${image.length} B image (${how})`, exchange: { pieces: [head, image], timeoutMs: 40_000 } };
}
