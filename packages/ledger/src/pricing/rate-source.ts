/**
 * Where a billing cycle's token rate comes from: a rate source, read when a cycle closes, whose
 * answer becomes the next cycle's rate and is recorded on it with the source and the time read.
 *
 * A rate source is a JSON document, in a file (`--rate-file FILE`) or at an http(s) URL
 * (`--rate-url URL`, fetched with GET):
 *
 *     { "cgnBaseUnitsPerMicroUsd": "20000000000000/1", "at": "2026-12-07T04:00:00Z" }
 *
 * `cgnBaseUnitsPerMicroUsd` is token base units per fiat micro-unit as "NUM/DEN" or "NUM" (whole
 * numbers in a string, DEN > 0; a JSON number is taken only when it is a safe integer). `at`,
 * optional, is when the publisher fixed the rate; the recorded time is when the ledger read it.
 */
import { readFile } from 'node:fs/promises';
import { tokenRateProblem, type TokenRate } from './price.js';

/** A rate and where and when it was read (recorded on the cycle it prices). */
export interface SourcedRate {
  rate: TokenRate;
  /** `file:/abs/path`, the URL, or `manual` (typed on the command line). */
  source: string;
  /** Epoch ms when the source was read. */
  fetchedAt: number;
}

export type RateSourceErrorCode = 'rate_source_unreadable' | 'rate_source_invalid';

export class RateSourceError extends Error {
  constructor(readonly code: RateSourceErrorCode, message: string) {
    super(message);
    this.name = 'RateSourceError';
  }
}

export type RateSourceSpec = { file: string } | { url: string };

const FIELD = 'cgnBaseUnitsPerMicroUsd';

/** Parses "NUM/DEN" or "NUM" (or a safe-integer JSON number) into a rate; null when it is not one. */
export function parseRateText(v: unknown): TokenRate | null {
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
  if (typeof s !== 'string') return null;
  const m = /^\s*(\d+)\s*(?:\/\s*(\d+)\s*)?$/.exec(s);
  if (m === null) return null;
  const rate = { num: BigInt(m[1]!), den: BigInt(m[2] ?? '1') };
  return tokenRateProblem(rate) === null ? rate : null;
}

/** The rate in a rate source's JSON document (`from` names the source in errors). */
export function parseRateDocument(text: string, from: string): TokenRate {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new RateSourceError('rate_source_invalid', `rate source ${from} is not JSON (${(err as Error).message}); it must be like {"${FIELD}": "20000000000000/1"}`);
  }
  const rate = parseRateText((doc as Record<string, unknown> | null)?.[FIELD]);
  if (rate === null) throw new RateSourceError('rate_source_invalid', `rate source ${from} has no valid "${FIELD}" (token base units per µUSD as "NUM/DEN" or "NUM", DEN > 0), e.g. {"${FIELD}": "20000000000000/1"}`);
  return rate;
}

export interface ReadRateOptions {
  now?: () => number;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/** Reads the rate from a file or URL now. */
export async function readRateSource(spec: RateSourceSpec, o: ReadRateOptions = {}): Promise<SourcedRate> {
  const now = o.now ?? Date.now;
  if ('file' in spec) {
    let text: string;
    try {
      text = await readFile(spec.file, 'utf8');
    } catch (err) {
      throw new RateSourceError('rate_source_unreadable', `cannot read the rate file ${spec.file} (${(err as Error).message}); write it as {"${FIELD}": "NUM/DEN"}`);
    }
    return { rate: parseRateDocument(text, spec.file), source: `file:${spec.file}`, fetchedAt: now() };
  }
  let res: Response;
  try {
    res = await (o.fetch ?? fetch)(spec.url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(o.timeoutMs ?? 10_000) });
  } catch (err) {
    throw new RateSourceError('rate_source_unreadable', `cannot fetch the rate from ${spec.url} (${(err as Error).message}); check the URL, or give the rate with --rate NUM/DEN`);
  }
  if (!res.ok) throw new RateSourceError('rate_source_unreadable', `the rate source ${spec.url} answered HTTP ${res.status}; it must answer 200 with {"${FIELD}": "NUM/DEN"}`);
  return { rate: parseRateDocument(await res.text(), spec.url), source: spec.url, fetchedAt: now() };
}
