import { describe, expect, it } from 'vitest';
import { NoncePool } from './nonce-pool.js';

describe('NoncePool', () => {
  it('hands out 32-byte nonces that never repeat and do not overlap, across blocks', () => {
    const pool = new NoncePool(32, 4);
    const seen = new Set<string>();
    const nonces = Array.from({ length: 1000 }, () => pool.next());
    for (const n of nonces) {
      expect(n.length).toBe(32);
      seen.add(n.toString('hex'));
    }
    expect(seen.size).toBe(1000);
    // Views into distinct ranges: writing one does not change another.
    const [a, b] = [nonces[0]!, nonces[1]!];
    const before = Buffer.from(b);
    a.fill(0);
    expect(b).toEqual(before);
  });
});
