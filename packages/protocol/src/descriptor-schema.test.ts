/**
 * dservice.schema.json and parseDescriptor agree: every example the schema accepts the parser
 * accepts, every one it refuses the parser refuses, naming the same field. Examples: the shipped
 * DServices and every single-field change of a base descriptor over a table of
 * good and bad values.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { CgnError } from './errors.js';
import { DSERVICE_SCHEMA_FILE, dserviceSchema, parseDescriptor } from './descriptor.js';

const ROOT = join(import.meta.dirname, '../../..');
const ajv = new Ajv({ allErrors: false, strict: true });
const validate = ajv.compile(dserviceSchema());

/** The field the schema's first error is about, in the parser's notation ("resources.cpus"). */
function schemaField(): string {
  const e = validate.errors![0]!;
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const extra = e.params['additionalProperty'] ?? e.params['missingProperty'];
  return [path, extra].filter((x) => x !== undefined && x !== '').join('.') || '(root)';
}

function parserVerdict(v: unknown): { ok: true } | { ok: false; field: string; message: string } {
  try {
    parseDescriptor(v);
    return { ok: true };
  } catch (err) {
    expect(err).toBeInstanceOf(CgnError);
    return { ok: false, field: String((err as CgnError).details?.['field']), message: (err as Error).message };
  }
}

function agree(v: unknown): void {
  const schemaOk = validate(v);
  const parsed = parserVerdict(v);
  expect({ value: v, ok: parsed.ok }).toEqual({ value: v, ok: schemaOk });
  if (!parsed.ok && !schemaOk) expect({ value: v, field: parsed.field }).toEqual({ value: v, field: schemaField() });
}

const BASE = { name: 'thumbs', version: '1.0.0', entry: 'dist/server.js' };

/** Good and bad values for each field (undefined = leave it out). */
const VALUES: Record<string, unknown[]> = {
  $schema: ['./node_modules/@cgn/protocol/dservice.schema.json', 3],
  name: ['a', 'thumb-nails2', 'x'.repeat(63), 'x'.repeat(64), 'Thumbs', '1abc', 'a_b', '', 7, undefined],
  version: ['1', '1.0.0-rc.1', '', 1, null, undefined],
  entry: ['server.mjs', 'dist/server.js', '', '../x.js', 'a/../b.js', 5, undefined],
  developer: ['acc_123', '', 1, true],
  deterministic: [true, false, 'yes', 0, null],
  resources: [{}, { cpus: 2, memoryMb: 64 }, { pids: 16 }, { diskMb: 0, gpus: 2 }, { gpus: -1 }, { diskMb: 1.5 }, { cpus: 0 }, { cpus: 1.5 }, { memoryMb: '64' }, { memoryMB: 64 }, { gpu: 1 }, [], 'big', null],
  maxBodyBytes: [1, 26214400, 0, -1, 2.5, '1', null],
  concurrency: [1, 64, 0, 1.1, false],
  timeouts: [{}, { requestMs: 1000 }, { requestMs: 0 }, { request: 10 }, [], 5],
  verification: [{}, { floor: 0.05 }, { floor: 0, decay: 1 }, { floor: 1.5 }, { decay: -0.1 }, { floor: '0.1' }, { seed: 1 }, [], null],
  price: [{ perRequestMicros: 1 }],
  prices: [
    {}, { perRequestMicros: 1 }, { perRequestMicros: 0, perCpuSecondMicros: 1000, perMbMicros: 10 }, { perRequestMicros: 1e12 }, { perRequestMicros: 1e12 + 1 },
    { perRequestMicros: -1 }, { perMbMicros: 1.5 }, { perCpuSecondMicros: '5' }, { perRequest: 1 }, { tiers: {} }, { tiers: { open: { perRequestMicros: 5 } } },
    { tiers: { attested: {}, dedicated: { perMbMicros: 2 } } }, { tiers: { gold: {} } }, { tiers: { open: { perRequestMicros: 'x' } } }, { tiers: { open: { tiers: {} } } },
    { tiers: { open: [] } }, { tiers: [] }, [], 5, null,
  ],
  timeout: [1000],
  instances: [{}, { min: 0 }, { min: 1, max: 4 }, { max: 1000 }, { max: 0 }, { min: -1 }, { min: 1.5 }, { max: '2' }, { max: 1001 }, { maximum: 3 }, [], null],
};

describe('dservice.schema.json agrees with parseDescriptor', () => {
  it('is a valid draft-07 schema, where the exports say', () => {
    expect(DSERVICE_SCHEMA_FILE).toBe(join(ROOT, 'packages/protocol/dservice.schema.json'));
    expect(ajv.validateSchema(dserviceSchema())).toBe(true);
  });

  it('on the shipped DServices', () => {
    for (const d of ['echo', 'mediagen']) {
      const v = JSON.parse(readFileSync(join(ROOT, 'dservices', d, 'dservice.json'), 'utf8')) as unknown;
      expect(validate(v)).toBe(true);
      agree(v);
    }
  });

  it('on every single-field change of a base descriptor', () => {
    let n = 0;
    for (const [field, values] of Object.entries(VALUES)) {
      for (const value of values) {
        const v: Record<string, unknown> = { ...BASE };
        if (value === undefined) delete v[field];
        else v[field] = value;
        agree(v);
        n++;
      }
    }
    for (const root of [null, [], 'x', 1]) agree(root);
    expect(n).toBeGreaterThan(60);
  });

  it('names the misspelt field and the one meant', () => {
    expect(() => parseDescriptor({ ...BASE, resources: { memoryMB: 64 } })).toThrow('dservice.json: resources.memoryMB is not a field of dservice.json: did you mean memoryMb?');
    expect(() => parseDescriptor({ ...BASE, timeout: 5 })).toThrow(/timeout is not a field of dservice.json \(known: \$schema, name, version/);
  });
});
