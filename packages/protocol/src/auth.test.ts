import { describe, expect, it } from 'vitest';
import { createPublicKey, randomBytes } from 'node:crypto';
import { exportMinerKey, generateMinerKey, importMinerKey, minerKeyFromSeed, signChallenge, verifyChallenge } from './auth.js';

describe('miner keys', () => {
  it('the raw public key is the 32 bytes of the key (as its JWK says), for generated, seeded and imported keys', () => {
    for (const pair of [generateMinerKey(), minerKeyFromSeed(new Uint8Array(32).fill(7)), importMinerKey(exportMinerKey(generateMinerKey()))]) {
      expect(pair.publicKey.length).toBe(32);
      const x = createPublicKey(pair.privateKey).export({ format: 'jwk' }).x as string;
      expect(Buffer.from(pair.publicKey).toString('base64url')).toBe(x);
    }
    expect(minerKeyFromSeed(new Uint8Array(32).fill(7)).publicKey).toEqual(minerKeyFromSeed(new Uint8Array(32).fill(7)).publicKey);
  });

  it('a signed challenge verifies for its key, nonce and node only', () => {
    const a = generateMinerKey();
    const b = generateMinerKey();
    const nonce = randomBytes(32);
    const sig = signChallenge(a, nonce, 'node-1');
    expect(verifyChallenge(a.publicKey, nonce, 'node-1', sig)).toBe(true);
    expect(verifyChallenge(b.publicKey, nonce, 'node-1', sig)).toBe(false);
    expect(verifyChallenge(a.publicKey, randomBytes(32), 'node-1', sig)).toBe(false);
    expect(verifyChallenge(a.publicKey, nonce, 'node-2', sig)).toBe(false);
    expect(verifyChallenge(new Uint8Array(31), nonce, 'node-1', sig)).toBe(false);
  });
});
