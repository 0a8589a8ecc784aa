/**
 * Registering a DService at central checks its descriptor fields by dservice.json's JSON Schema
 * (and central's bounds on top), answering which field is wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCentral, type TestCentral, type TestClient } from '../testing.js';

describe('POST /v1/dservices by the dservice.json schema', () => {
  let c: TestCentral;
  let owner: TestClient;
  beforeAll(async () => {
    c = await startTestCentral();
    await c.admin.call('POST', '/v1/accounts', { name: 'thumbs-co', kinds: ['developer'], owner: { login: 'thumbs-owner', password: 'Thumbs-Own3r-Pw!' } });
    owner = await c.login('thumbs-owner', 'Thumbs-Own3r-Pw!');
  });
  afterAll(async () => c?.stop());

  const digest = `sha256:${'e'.repeat(64)}`;
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ name: 'Thumbs', version: '1' }, /body\.name must match pattern/],
    [{ name: 'thumbs', version: '1', entry: 'a/../b.js' }, /body\.entry must NOT be valid/],
    [{ name: 'thumbs', version: '1', resources: { cpus: 0 } }, /body\.resources\.cpus must be >= 1/],
    [{ name: 'thumbs', version: '1', resources: { memoryMB: 64 } }, /body\.resources must NOT have additional properties \(memoryMB\)/],
    [{ name: 'thumbs', version: '1', concurrency: 1.5 }, /body\.concurrency must be integer/],
    [{ name: 'thumbs', version: '1', timeouts: { requestMs: '5s' } }, /body\.timeouts\.requestMs must be integer/],
    [{ name: 'thumbs', version: '1', deterministic: 'yes' }, /body\.deterministic must be boolean/],
  ];

  it('answers 400 naming the field for each wrong one', async () => {
    for (const [body, why] of cases) {
      const r = await owner.call('POST', '/v1/dservices', { ...body, digest });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.detail).toMatch(why);
    }
  });

  it('takes every resource the schema has, pids, disk and GPUs included', async () => {
    const r = await owner.call('POST', '/v1/dservices', { name: 'thumbs', version: '1.0.0', digest, resources: { cpus: 2, memoryMb: 128, pids: 64, diskMb: 10, gpus: 0 } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.resources).toMatchObject({ cpus: 2, memoryMb: 128, pids: 64, diskMb: 10, gpus: 0 });
  });
});
