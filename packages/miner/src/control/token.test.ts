import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearerToken, loadOrCreateToken, tokenFileFor, tokenMatches } from './token.js';

describe('control token', () => {
  it('is made once in a 0600 file next to the key and read back after', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-token-'));
    try {
      const file = tokenFileFor(join(dir, 'sub', 'miner-key.pem'));
      expect(file).toBe(join(dir, 'sub', 'miner-key.pem.control-token'));
      const t = loadOrCreateToken(file);
      expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(loadOrCreateToken(file)).toBe(t);
      // A file others could read is narrowed to 0600.
      chmodSync(file, 0o644);
      expect(loadOrCreateToken(file)).toBe(t);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      // Not a token: an error naming the file, and the file is left alone.
      writeFileSync(file, 'short\n');
      expect(() => loadOrCreateToken(file)).toThrow(/control-token: holds no token.*delete it/);
      expect(readFileSync(file, 'utf8')).toBe('short\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('matches only the exact token', () => {
    const t = 'A'.repeat(43);
    expect(tokenMatches(t, t)).toBe(true);
    for (const wrong of [null, undefined, '', 'A'.repeat(42), 'A'.repeat(44), `${'A'.repeat(42)}B`, 'x'.repeat(10_000)]) {
      expect(tokenMatches(t, wrong)).toBe(false);
    }
    fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 100 }), fc.string({ maxLength: 100 }), (a, b) => {
      expect(tokenMatches(a, b)).toBe(a === b);
    }));
  });

  it('takes the token from an Authorization: Bearer header only', () => {
    expect(bearerToken('Bearer abc_-1')).toBe('abc_-1');
    expect(bearerToken(undefined)).toBeNull();
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken('Bearer ')).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
  });
});
