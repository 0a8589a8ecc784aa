/**
 * Attestation verification behind one interface, so that a TEE report (SEV-SNP, TDX) can be a
 * second implementation later: given the evidence a miner sent for a challenge, the key registered
 * for it and the allow-list, say whether it proves the miner runs known-good software now.
 *
 * `TpmQuoteVerifier` checks a TPM 2.0 quote in-process (no tpm2-tools on nodes, and a precise
 * reason for each refusal): the signature against the registered attestation key, the nonce (this
 * challenge's, not expired), the PCR selection and digest against the replayed event log, and each
 * event against the allow-list.
 */
import { createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { ATTESTATION_PCR, pcrDigestOf, type AdvertisedDService, type MeasurementEvent, type QuoteFrame } from '@cgn/protocol';
import { TPM_ALG, TpmParseError, parseTpmsAttest } from './tpm-quote.js';

/** Known-good measurements: runtime digests (central's allow-list) and each DService's approved digest. */
export interface AttestationPolicy {
  runtimes: ReadonlySet<string>;
  dservices: ReadonlyMap<string, string>;
}

export interface AttestationChallenge {
  nonce: Uint8Array;
  /** When the node sent it (ms, the verifier's clock). */
  issuedAt: number;
}

export interface AttestationInput {
  evidence: QuoteFrame;
  challenge: AttestationChallenge;
  /** The miner's registered attestation key (SPKI PEM). */
  key: string;
  policy: AttestationPolicy;
  /** What the miner advertises: each must be measured with the advertised digest. */
  dservices: readonly AdvertisedDService[];
}

export type RefusalCode = 'malformed' | 'signature' | 'nonce' | 'stale' | 'pcr' | 'runtime' | 'dservice';

export type AttestationVerdict =
  | { ok: true; runtime: string; dservices: Record<string, string> }
  | { ok: false; code: RefusalCode; reason: string };

export interface AttestationVerifier {
  /** Evidence kind, for logs and status (`tpm2-quote`; a TEE would say `sev-snp`, `tdx`). */
  readonly kind: string;
  verify(input: AttestationInput): AttestationVerdict;
}

const refuse = (code: RefusalCode, reason: string): AttestationVerdict => ({ ok: false, code, reason });
const short = (hex: string): string => hex.slice(0, 16);

export class TpmQuoteVerifier implements AttestationVerifier {
  readonly kind = 'tpm2-quote';
  private readonly keys = new Map<string, KeyObject>();

  constructor(private readonly opts: { now: () => number; maxAgeMs: number }) {}

  verify({ evidence, challenge, key, policy, dservices }: AttestationInput): AttestationVerdict {
    const age = this.opts.now() - challenge.issuedAt;
    if (age > this.opts.maxAgeMs) return refuse('stale', `stale nonce: the quote came ${age} ms after the challenge (at most ${this.opts.maxAgeMs} ms)`);
    if (!same(evidence.nonce, challenge.nonce)) return refuse('nonce', 'the quote answers another challenge (a replayed quote, or a nonce that is no longer outstanding)');
    let info;
    try {
      info = parseTpmsAttest(evidence.quote);
    } catch (err) {
      if (err instanceof TpmParseError) return refuse('malformed', `malformed quote: ${err.message}`);
      throw err;
    }
    if (!signatureVerifies(this.publicKey(key), evidence.quote, evidence.signature)) {
      return refuse('signature', 'the quote signature does not verify against the attestation key registered for this miner (a quote from another TPM, or altered)');
    }
    if (!same(info.extraData, challenge.nonce)) {
      return refuse('nonce', 'the quote was signed over another nonce than this challenge\'s (a replayed quote)');
    }
    const sel = info.pcrSelect.filter((s) => s.pcrs.length > 0);
    if (sel.length !== 1 || sel[0]!.hashAlg !== TPM_ALG.sha256 || sel[0]!.pcrs.length !== 1 || sel[0]!.pcrs[0] !== ATTESTATION_PCR) {
      return refuse('pcr', `the quote must cover exactly PCR sha256:${ATTESTATION_PCR}, not ${sel.map((s) => `0x${s.hashAlg.toString(16)}:${s.pcrs.join(',')}`).join(' ') || 'nothing'}`);
    }
    const log = evidence.log;
    if (!pcrDigestOf(log).equals(info.pcrDigest)) {
      return refuse('pcr', `PCR ${ATTESTATION_PCR} in the quote does not match the measurement log it came with (${log.length} events): something else was measured`);
    }
    return checkLog(log, policy, dservices);
  }

  private publicKey(pem: string): KeyObject {
    let k = this.keys.get(pem);
    if (k === undefined) {
      k = createPublicKey(pem);
      if (this.keys.size > 10_000) this.keys.clear();
      this.keys.set(pem, k);
    }
    return k;
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function signatureVerifies(key: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    if (key.asymmetricKeyType === 'rsa') return verify('sha256', data, key, sig);
    if (key.asymmetricKeyType === 'ec') return verify('sha256', data, { key, dsaEncoding: 'der' }, sig);
  } catch {
    return false;
  }
  return false;
}

/** The log against the allow-list: a known runtime first, then known DServices, covering every advertised one. */
function checkLog(log: readonly MeasurementEvent[], policy: AttestationPolicy, advertised: readonly AdvertisedDService[]): AttestationVerdict {
  const runtimes = log.filter((e) => e.kind === 'runtime');
  if (runtimes.length !== 1 || log[0]?.kind !== 'runtime') return refuse('runtime', 'the measurement log must start with the runtime, measured once');
  const runtime = runtimes[0]!.digest;
  if (!policy.runtimes.has(runtime)) return refuse('runtime', `the miner runtime measured as ${short(runtime)}… is not on the allow-list of known-good runtimes (a changed or unknown runtime)`);
  const measured: Record<string, string> = {};
  for (const e of log.slice(1)) {
    const allowed = policy.dservices.get(e.name);
    if (allowed === undefined) return refuse('dservice', `DService ${e.name} is measured but not on the allow-list`);
    if (allowed !== e.digest) return refuse('dservice', `DService ${e.name} measured as ${short(e.digest)}… is not the known-good package ${short(allowed)}… (a changed DService)`);
    measured[e.name] = e.digest;
  }
  for (const d of advertised) {
    if (measured[d.name] !== d.digest) return refuse('dservice', `DService ${d.name} is advertised with digest ${short(d.digest)}… but that is not what was measured`);
  }
  return { ok: true, runtime, dservices: measured };
}
