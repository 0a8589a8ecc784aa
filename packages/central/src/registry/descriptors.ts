/**
 * Validation of DService descriptor submissions and node directory entries beyond what the
 * route's JSON Schema already checks (cross-field rules, defaults).
 */
import type { DServiceRecord, Price } from '../store/store.js';

export const DSERVICE_NAME_PATTERN = '^[a-z][a-z0-9-]{0,62}$';
export const VERSION_PATTERN = '^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$';
/** The package digest as miners compute and advertise it (sha256 hex); a `sha256:` prefix is accepted and dropped. */
export const DIGEST_PATTERN = '^(sha256:)?[0-9a-f]{64}$';
export const NODE_ID_PATTERN = '^[A-Za-z0-9._-]{1,64}$';
export const REGION_PATTERN = '^[a-z0-9-]{1,32}$';

export interface DServiceSubmission {
  name: string;
  version: string;
  digest: string;
  entry?: string;
  developer?: string;
  deterministic?: boolean;
  resources?: { cpus?: number; memoryMb?: number; diskMb?: number; gpus?: number };
  maxBodyBytes?: number;
  concurrency?: number;
  timeouts?: { requestMs?: number };
  price?: Partial<Price>;
}

export const DSERVICE_DEFAULTS = {
  entry: 'dist/server.js',
  deterministic: false,
  resources: { cpus: 1, memoryMb: 256, diskMb: 0, gpus: 0 },
  maxBodyBytes: 10 * 1024 * 1024,
  concurrency: 4,
  timeouts: { requestMs: 30_000 },
  price: { perRequestMicros: 0, perCpuSecondMicros: 0, perMbMicros: 0 },
} as const;

/** A pending DService record from a validated submission. */
export function dserviceRecord(s: DServiceSubmission, developer: string, by: string, now: number): DServiceRecord {
  return {
    name: s.name,
    version: s.version,
    digest: s.digest.replace(/^sha256:/, ''),
    entry: s.entry ?? DSERVICE_DEFAULTS.entry,
    developer,
    deterministic: s.deterministic ?? DSERVICE_DEFAULTS.deterministic,
    resources: { ...DSERVICE_DEFAULTS.resources, ...s.resources },
    maxBodyBytes: s.maxBodyBytes ?? DSERVICE_DEFAULTS.maxBodyBytes,
    concurrency: s.concurrency ?? DSERVICE_DEFAULTS.concurrency,
    timeouts: { ...DSERVICE_DEFAULTS.timeouts, ...s.timeouts },
    price: s.price === undefined ? null : { ...DSERVICE_DEFAULTS.price, ...s.price },
    state: 'pending',
    submittedAt: now,
    submittedBy: by,
    decidedAt: null,
    decidedBy: null,
  };
}

/** URLs of a node must be absolute http(s)/ws(s) URLs; the central link must be wss. */
export function nodeUrlProblems(urls: { work: string; miner: string; status: string; central: string }): string[] {
  const p: string[] = [];
  const check = (name: string, v: string, protocols: string[]) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      p.push(`urls.${name} is not a URL`);
      return;
    }
    if (!protocols.includes(u.protocol)) p.push(`urls.${name} must use ${protocols.join(' or ')}`);
  };
  check('work', urls.work, ['http:', 'https:']);
  check('status', urls.status, ['http:', 'https:']);
  check('miner', urls.miner, ['ws:', 'wss:']);
  check('central', urls.central, ['wss:']);
  return p;
}
