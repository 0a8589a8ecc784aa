/**
 * The miner's side of the attested tier: at start, make sure its TPM holds an attestation key
 * (written as PEM beside the miner key, for `cgn miner register --attestation-key`), reset the
 * attestation PCR and measure the runtime and each DService into it; then answer each of the
 * node's challenges with a quote over its nonce and the event log.
 */
import { writeFileSync } from 'node:fs';
import type { MeasurementEvent, QuoteFrame } from '@cgn/protocol';
import { ATTESTATION_PCR } from '@cgn/protocol';
import type { Log } from '../log.js';
import { Tpm } from './tpm.js';
import { measureRuntime } from './runtime.js';

export interface Attestation {
  /** The AK public key (SPKI PEM) and where it was written. */
  attestationKey: string;
  attestationKeyFile: string;
  log: readonly MeasurementEvent[];
  quote(nonce: Uint8Array): Promise<Omit<QuoteFrame, 't' | 'v'>>;
}

/** Where the AK public key is written: `<key file without .pem>.attestation-key.pem`. */
export function attestationKeyFileFor(keyFile: string): string {
  return `${keyFile.replace(/\.pem$/, '')}.attestation-key.pem`;
}

export async function startAttestation(o: { tcti: string; keyFile: string; dservices: { name: string; digest: string }[]; log: Log }): Promise<Attestation> {
  const tpm = new Tpm(o.tcti);
  const attestationKey = await tpm.attestationKey();
  const attestationKeyFile = attestationKeyFileFor(o.keyFile);
  writeFileSync(attestationKeyFile, attestationKey);
  const runtime = await measureRuntime();
  const log: MeasurementEvent[] = [
    { kind: 'runtime', name: 'cgn-miner', digest: runtime.digest },
    ...o.dservices.map((d) => ({ kind: 'dservice' as const, name: d.name, digest: d.digest })),
  ];
  await tpm.measure(log);
  o.log.info({ tpm: o.tcti, attestationKeyFile, pcr: ATTESTATION_PCR, runtime: runtime.digest, dservices: o.dservices.map((d) => d.name) }, 'TPM ready: attestation key loaded, runtime and DServices measured');
  return {
    attestationKey,
    attestationKeyFile,
    log,
    quote: async (nonce) => ({ nonce, ...(await tpm.quote(nonce)), log }),
  };
}
