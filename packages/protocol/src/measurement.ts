/**
 * What an attested miner measures into its TPM, and how a node replays it. The miner resets PCR
 * 23 (resettable, application-defined on PC-client TPMs), then extends it with one measurement per
 * event, in order: its runtime first, then each DService package it runs. It sends the event log
 * with each quote; the node replays the log to the PCR value the quote must show, then checks
 * every event against the allow-list. An event's measurement binds its kind and name to its
 * digest, so a log cannot relabel a measured digest.
 */
import { createHash } from 'node:crypto';

/** The PCR attested miners measure into (sha256 bank). Resettable by the miner at start. */
export const ATTESTATION_PCR = 23;
export const ATTESTATION_PCR_BANK = 'sha256';

export type MeasurementKind = 'runtime' | 'dservice';

export interface MeasurementEvent {
  kind: MeasurementKind;
  /** `cgn-miner` for the runtime; the DService's name. */
  name: string;
  /** sha256 hex of what was measured (the runtime, the DService package). */
  digest: string;
}

const DOMAIN = 'cgn-measurement-v1';

/** The 32 bytes extended into the PCR for one event. */
export function measurementOf(e: MeasurementEvent): Buffer {
  return createHash('sha256').update(`${DOMAIN}\0${e.kind}\0${e.name}\0${e.digest}`).digest();
}

/** The PCR value after a reset and extending every event in order: pcr = sha256(pcr || measurement). */
export function replayPcr(events: readonly MeasurementEvent[]): Buffer {
  let pcr = Buffer.alloc(32);
  for (const e of events) pcr = createHash('sha256').update(pcr).update(measurementOf(e)).digest();
  return pcr;
}

/** The quote's pcrDigest for a selection of one PCR: the hash of its value. */
export function pcrDigestOf(events: readonly MeasurementEvent[]): Buffer {
  return createHash('sha256').update(replayPcr(events)).digest();
}
