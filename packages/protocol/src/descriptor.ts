/**
 * A DService descriptor: what a node needs to route to a DService and what a miner needs to
 * run it. Stored as `dservice.json` at the root of the DService package.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CgnError } from './errors.js';
import { parseDescriptorPrices, type DescriptorPrices } from './descriptor-prices.js';

export interface DServiceDescriptor {
  /** URL-safe name, the `{dservice}` in `/v1/d/{dservice}/...`. */
  name: string;
  version: string;
  /** Entry file, relative to the package root, run with node. */
  entry: string;
  /** Developer (account or address) that gets the developer share. */
  developer: string;
  /** Same input and parameters always give the same output bytes. */
  deterministic: boolean;
  /**
   * What one instance may use, enforced on miners with cgroups: CPUs' worth of time, memory, and
   * (optional; the miner's default otherwise) tasks, i.e. processes and threads, at once.
   */
  resources: { cpus: number; memoryMb: number; pids?: number; diskMb?: number; gpus?: number };
  /**
   * Largest request body the node accepts for this DService, and largest answer body: miners refuse
   * a larger answer of the DService, and the node one a miner sends anyway (502).
   */
  maxBodyBytes: number;
  /** Concurrent work units one instance of it takes. */
  concurrency: number;
  timeouts: {
    /** Default deadline of a work unit, from arrival at the node to the answer. */
    requestMs: number;
  };
  /**
   * How the open tier checks its results on a second miner (deterministic DServices only): the
   * lowest probability a proven miner is checked with (`floor`, 1 = every result) and how fast a
   * miner's probability falls with clean results (`decay`). Absent: the node's defaults.
   */
  verification?: { floor?: number; decay?: number };
  /** The developer's prices (µUSD), sent to central on registration; absent: none in the file. */
  prices?: DescriptorPrices;
  /** Instances the node's placement keeps (min 0: scales to zero when idle); absent: 0 to the node's default max. */
  instances?: { min?: number; max?: number };
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** The fields of dservice.json and of its objects (the JSON Schema, dservice.schema.json, lists the same). */
const FIELDS = {
  '': ['$schema', 'name', 'version', 'entry', 'developer', 'deterministic', 'resources', 'maxBodyBytes', 'concurrency', 'timeouts', 'verification', 'prices', 'instances'],
  resources: ['cpus', 'memoryMb', 'pids', 'diskMb', 'gpus'],
  timeouts: ['requestMs'],
  verification: ['floor', 'decay'],
  instances: ['min', 'max'],
} as const;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export const DESCRIPTOR_DEFAULTS = {
  developer: 'unknown',
  deterministic: false,
  resources: { cpus: 1, memoryMb: 256 },
  maxBodyBytes: 10 * 1024 * 1024,
  concurrency: 4,
  timeouts: { requestMs: 30_000 },
} as const;

/** Validates a parsed `dservice.json`, filling defaults; names the first wrong field. */
export function parseDescriptor(value: unknown, source = 'dservice.json'): DServiceDescriptor {
  const fail = (field: string, why: string): never => {
    throw new CgnError('bad_request', `${source}: ${field} ${why}`, { details: { field } });
  };
  if (!isObject(value)) return fail('(root)', 'must be a JSON object');
  const o = value;
  // A misspelt field would otherwise be ignored in silence and its default used.
  const known = (obj: Record<string, unknown>, where: keyof typeof FIELDS) => {
    const fields: readonly string[] = FIELDS[where];
    for (const k of Object.keys(obj)) {
      if (fields.includes(k) || obj[k] === undefined) continue;
      const near = fields.find((f) => f.toLowerCase() === k.toLowerCase());
      fail(where === '' ? k : `${where}.${k}`, `is not a field of dservice.json${near === undefined ? ` (known: ${fields.join(', ')})` : `: did you mean ${near}?`}`);
    }
  };
  known(o, '');
  if (o['$schema'] !== undefined && typeof o['$schema'] !== 'string') fail('$schema', 'must be a string');
  for (const k of ['resources', 'timeouts'] as const) {
    if (o[k] === undefined) continue;
    if (!isObject(o[k])) fail(k, `must be an object { ${FIELDS[k].join(', ')} }`);
    known(o[k] as Record<string, unknown>, k);
  }
  if (typeof o['name'] !== 'string' || !NAME.test(o['name'])) fail('name', 'must match ' + NAME.source);
  if (typeof o['version'] !== 'string' || o['version'].length === 0) fail('version', 'must be a non-empty string');
  if (typeof o['entry'] !== 'string' || o['entry'].length === 0 || o['entry'].includes('..')) fail('entry', 'must be a relative file path');
  const posInt = (v: unknown, field: string, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) return fail(field, 'must be a positive integer');
    return v;
  };
  const nonNegInt = (v: unknown, field: string): number =>
    typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : fail(field, 'must be a whole number, 0 or more');
  const res = (o['resources'] ?? {}) as Record<string, unknown>;
  const tmo = (o['timeouts'] ?? {}) as Record<string, unknown>;
  if (o['developer'] !== undefined && typeof o['developer'] !== 'string') fail('developer', 'must be a string');
  if (o['deterministic'] !== undefined && typeof o['deterministic'] !== 'boolean') fail('deterministic', 'must be true or false');
  let verification: { floor?: number; decay?: number } | undefined;
  if (o['verification'] !== undefined) {
    const v = o['verification'] as Record<string, unknown>;
    if (!isObject(v)) fail('verification', 'must be an object { floor, decay }');
    known(v, 'verification');
    verification = {};
    for (const k of ['floor', 'decay'] as const) {
      if (v[k] === undefined) continue;
      if (typeof v[k] !== 'number' || !(v[k] >= 0 && v[k] <= 1)) fail(`verification.${k}`, 'must be a number from 0 to 1');
      verification[k] = v[k] as number;
    }
  }
  let instances: { min?: number; max?: number } | undefined;
  if (o['instances'] !== undefined) {
    const v = o['instances'] as Record<string, unknown>;
    if (!isObject(v)) fail('instances', 'must be an object { min, max }');
    known(v, 'instances');
    instances = {};
    for (const k of ['min', 'max'] as const) {
      if (v[k] === undefined) continue;
      const x = v[k];
      if (typeof x !== 'number' || !Number.isInteger(x) || x < (k === 'min' ? 0 : 1) || x > 1000) fail(`instances.${k}`, `must be a whole number from ${k === 'min' ? 0 : 1} to 1000`);
      instances[k] = x as number;
    }
    if (instances.min !== undefined && instances.max !== undefined && instances.min > instances.max) fail('instances.min', `(${instances.min}) must not exceed instances.max (${instances.max})`);
  }
  const prices = o['prices'] === undefined ? undefined : parseDescriptorPrices(o['prices'], fail);
  return {
    ...(verification !== undefined ? { verification } : {}),
    ...(prices !== undefined ? { prices } : {}),
    ...(instances !== undefined ? { instances } : {}),
    name: o['name'] as string,
    version: o['version'] as string,
    entry: o['entry'] as string,
    developer: (o['developer'] as string | undefined) ?? DESCRIPTOR_DEFAULTS.developer,
    deterministic: (o['deterministic'] as boolean | undefined) ?? DESCRIPTOR_DEFAULTS.deterministic,
    resources: {
      cpus: posInt(res['cpus'], 'resources.cpus', DESCRIPTOR_DEFAULTS.resources.cpus),
      memoryMb: posInt(res['memoryMb'], 'resources.memoryMb', DESCRIPTOR_DEFAULTS.resources.memoryMb),
      ...(res['pids'] !== undefined ? { pids: posInt(res['pids'], 'resources.pids', 1) } : {}),
      ...(res['diskMb'] !== undefined ? { diskMb: nonNegInt(res['diskMb'], 'resources.diskMb') } : {}),
      ...(res['gpus'] !== undefined ? { gpus: nonNegInt(res['gpus'], 'resources.gpus') } : {}),
    },
    maxBodyBytes: posInt(o['maxBodyBytes'], 'maxBodyBytes', DESCRIPTOR_DEFAULTS.maxBodyBytes),
    concurrency: posInt(o['concurrency'], 'concurrency', DESCRIPTOR_DEFAULTS.concurrency),
    timeouts: { requestMs: posInt(tmo['requestMs'], 'timeouts.requestMs', DESCRIPTOR_DEFAULTS.timeouts.requestMs) },
  };
}

/** The JSON Schema of dservice.json, as a file (for editors: "$schema": "<this path>") and parsed. */
export const DSERVICE_SCHEMA_FILE = fileURLToPath(new URL('../dservice.schema.json', import.meta.url));

let schema: Record<string, unknown> | null = null;
export function dserviceSchema(): Record<string, unknown> {
  schema ??= JSON.parse(readFileSync(DSERVICE_SCHEMA_FILE, 'utf8')) as Record<string, unknown>;
  return schema;
}
