/**
 * Hostile values: the strings, numbers and structures a peer that wants to break a parser sends.
 */
import type { Rng } from './rng.js';

const NASTY_STRINGS = [
  '', ' ', '\u0000', '\r\n', '\r\nset-cookie: x=1', 'a\u0000b', '\u001b[2J\u001b[H', '../../etc/passwd', '%00', '%ff%fe', '%',
  '\u00ff', '\u0100', '\u2603', '\ud800', '\udfff\ud800', '\ufeff', '\u202e', 'null', 'undefined', 'NaN', '-1', '1e309',
  '__proto__', 'constructor', 'toString', 'hasOwnProperty', '{"a":1}', '<script>', '${x}', "'; DROP TABLE x; --",
];

/** A hostile string: special values, long runs, control characters, characters above U+00FF. */
export function hostileString(rng: Rng, maxLength = 20_000): string {
  switch (rng.int(0, 5)) {
    case 0:
      return rng.pick(NASTY_STRINGS);
    case 1:
      return rng.pick(['a', 'x', '/', '%', '\u00e9', '\u2603', '\u0000']).repeat(rng.size(maxLength));
    case 2: {
      let s = '';
      const n = rng.size(200);
      for (let i = 0; i < n; i++) s += String.fromCharCode(rng.chance(0.7) ? rng.int(0x20, 0x7e) : rng.int(0, 0xffff));
      return s;
    }
    case 3: {
      let s = '';
      const n = rng.size(64);
      for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(0, 0x1f));
      return s;
    }
    case 4:
      return rng.bytes(rng.size(100)).toString('latin1');
    default:
      return rng.bytes(rng.size(64)).toString('hex');
  }
}

const NASTY_NUMBERS = [0, -0, -1, 1, 0.5, -0.5, 99, 100, 101, 199, 200, 204, 304, 599, 600, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 64, -(2 ** 53), Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity, NaN];

export function hostileNumber(rng: Rng): number {
  return rng.chance(0.7) ? rng.pick(NASTY_NUMBERS) : rng.int(-1e6, 1e6) * (rng.chance(0.2) ? 1.5 : 1);
}

/** Sets a field as an own property, whatever its name (`__proto__` included). */
export function setField(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Any MessagePack-encodable value, possibly nested. */
export function hostileValue(rng: Rng, depth = 0): unknown {
  const kind = rng.int(0, depth > 3 ? 6 : 9);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
    case 3:
      return hostileNumber(rng);
    case 4:
    case 5:
      return hostileString(rng, 5000);
    case 6:
      return rng.bytes(rng.size(4096));
    case 7:
      return Array.from({ length: rng.size(8) }, () => hostileValue(rng, depth + 1));
    case 8: {
      const o: Record<string, unknown> = {};
      for (let i = rng.size(6); i > 0; i--) setField(o, rng.chance(0.5) ? rng.pick(['t', 'v', 'id', 'body', 'headers', 'status', '__proto__', 'toString']) : hostileString(rng, 40), hostileValue(rng, depth + 1));
      return o;
    }
    default:
      // Up to 2^63: what MessagePack's 64-bit integers carry.
      return (BigInt(rng.int(0, 2 ** 30)) << BigInt(rng.int(0, 33))) * (rng.chance(0.5) ? -1n : 1n);
  }
}

/** Percent-encodes any string's UTF-8 bytes (lone surrogates included, as U+FFFD). */
export function pct(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += /[A-Za-z0-9\-_.~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`;
  return out;
}

/** Bytes of MessagePack nesting arrays `depth` deep (what a recursive decoder chokes on). */
export function deepArrayBytes(depth: number): Buffer {
  return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0x90])]);
}
