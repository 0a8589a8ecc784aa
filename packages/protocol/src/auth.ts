/**
 * Miner identity: an Ed25519 key pair. The miner proves it holds the private key by signing the
 * node's challenge nonce; the raw 32-byte public key is its identity on the network.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

const DOMAIN = Buffer.from('cgn-tunnel-auth-v1\0');

/** The bytes a miner signs: a domain tag, the node's nonce, the node id, the miner's public key. */
export function authPayload(nonce: Uint8Array, nodeId: string, publicKey: Uint8Array): Buffer {
  return Buffer.concat([DOMAIN, nonce, Buffer.from(nodeId + '\0'), publicKey]);
}

export interface MinerKeyPair {
  publicKey: Uint8Array;
  privateKey: KeyObject;
}

export function generateMinerKey(): MinerKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: rawPublicKey(publicKey) };
}

/** PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The key pair whose private key is this 32-byte seed (deterministic keys for tests and fuzzing). */
export function minerKeyFromSeed(seed: Uint8Array): MinerKeyPair {
  if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

/** SPKI DER header of an Ed25519 public key; the raw 32-byte key follows. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * The raw 32 bytes, read from the SPKI DER export. Not from a JWK export: Node 20's JWK export of an
 * Ed25519 key allocates a V8 string while holding the key's lock, and a GC at that moment can run
 * the destructor of an earlier key-generation job that waits on the same kind of lock — the process
 * hangs (seen generating 10,000 keys in bench/scale.mjs; gdb: ExportJWKEdKey -> GC -> ~KeyGenJob ->
 * uv_mutex_lock).
 */
function rawPublicKey(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  if (der.length !== ED25519_SPKI_PREFIX.length + 32 || !der.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)) {
    throw new Error('not an Ed25519 public key');
  }
  return new Uint8Array(der.subarray(ED25519_SPKI_PREFIX.length));
}

/** Serialises a key pair as PKCS#8 PEM (the private key holds the public one). */
export function exportMinerKey(pair: MinerKeyPair): string {
  return pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
}

export function importMinerKey(pem: string): MinerKeyPair {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('miner key is not an Ed25519 key');
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

export function signChallenge(pair: MinerKeyPair, nonce: Uint8Array, nodeId: string): Uint8Array {
  return sign(null, authPayload(nonce, nodeId, pair.publicKey), pair.privateKey);
}

export function verifyChallenge(publicKey: Uint8Array, nonce: Uint8Array, nodeId: string, signature: Uint8Array): boolean {
  // The key is imported from JWK on purpose: with Node 20's OpenSSL 3.0 a JWK OKP import takes the
  // raw-key path (about 25 us here), while a DER/SPKI import runs the generic decoder (about 135 us).
  // The signature check itself (about 100 us) is the rest of a miner's admission cost.
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
    return verify(null, authPayload(nonce, nodeId, publicKey), key, signature);
  } catch {
    return false;
  }
}

/** A miner's id: the hex of its public key. */
export function minerIdOf(publicKey: Uint8Array): string {
  return Buffer.from(publicKey).toString('hex');
}
