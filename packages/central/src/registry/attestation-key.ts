/**
 * A miner's attestation key (the public half of the AK in its TPM), as central stores it: an SPKI
 * PEM of an RSA key of at least 2048 bits or an EC key on P-256/P-384, the kinds TPMs make and
 * nodes verify quotes with.
 */
import { createPublicKey } from 'node:crypto';
import { badRequest } from '../errors.js';

/** Parses and re-encodes a public key PEM; throws a 400 naming what is wrong. */
export function normaliseAttestationKey(pem: string): string {
  let key;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw badRequest('attestationKey must be a PEM public key (tpm2_readpublic -f pem prints one)');
  }
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    if ((d.modulusLength ?? 0) < 2048) throw badRequest(`attestationKey: an RSA key of ${d.modulusLength} bits is too weak (2048 or more)`);
  } else if (key.asymmetricKeyType === 'ec') {
    if (d.namedCurve !== 'prime256v1' && d.namedCurve !== 'secp384r1') throw badRequest(`attestationKey: EC curve ${d.namedCurve} is not one a TPM quote uses (P-256 or P-384)`);
  } else {
    throw badRequest(`attestationKey: a ${key.asymmetricKeyType} key cannot be a TPM attestation key (RSA or EC)`);
  }
  return key.export({ type: 'spki', format: 'pem' }).toString();
}
