import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCentral, call, TEST_ADMIN, type TestCentral } from './testing.js';
import { setupDevNetwork } from './dev-setup.js';

describe('setupDevNetwork', () => {
  let c: TestCentral;
  beforeAll(async () => {
    c = await startTestCentral();
  });
  afterAll(async () => c?.stop());

  const opts = () => ({
    centralUrl: c.url,
    admin: { ...TEST_ADMIN },
    nodes: [{ id: 'node-local-1', urls: { work: 'http://127.0.0.1:8080/v1/d/', miner: 'ws://127.0.0.1:8081', status: 'http://127.0.0.1:8080/v1/status', central: 'wss://127.0.0.1:7771' } }],
    dservices: [{ descriptor: { name: 'echo', version: '0.1.0', entry: 'dist/server.js' }, digest: 'a'.repeat(64) }],
  });

  it('creates the demo account, key, node and approved DServices, and is idempotent', async () => {
    const first = await setupDevNetwork(opts());
    expect(first.demo.apiKey).toMatch(/^cgn_/);
    expect(first.dservices).toEqual(['echo@0.1.0']);
    const sel = await call(c.url, first.demo.apiKey, 'POST', '/v1/select', { dservices: ['echo'] });
    expect(sel.status).toBe(200);
    expect(sel.body.nodes.map((n: { id: string }) => n.id)).toEqual([]); // the node routes nothing yet (no status)

    const again = await setupDevNetwork({ ...opts(), demo: { ownerPassword: first.demo.ownerPassword, reuseKey: first.demo.apiKey } });
    expect(again.demo.apiKey).toBe(first.demo.apiKey);
    expect(again.demo.accountId).toBe(first.demo.accountId);
    await expect(setupDevNetwork(opts())).rejects.toThrow(/owner's password/);
    await expect(setupDevNetwork({ ...opts(), dservices: [{ descriptor: { name: 'echo', version: '0.1.0' }, digest: 'b'.repeat(64) }], demo: { ownerPassword: first.demo.ownerPassword } }))
      .rejects.toThrow(/another digest/);
  });
});
