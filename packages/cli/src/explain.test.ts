/**
 * `cgn explain --account` sends a credential the node takes for that account: the one given, or
 * in a `cgn dev` directory each demo key in turn (the node answers 403 for the other account's).
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExplainFromArgs } from './explain.js';

const answer = { dservice: 'echo', tier: 'open', account: 'demo-2', runnable: true, reason: null, message: 'would run', needs: null, miners: { advertising: 1, byTier: { open: 1 }, eligible: 1, freeSlots: 1, largestMemoryMb: null }, queue: { depth: 0, accounts: 0, oldestMs: 0, accountDepth: 0 }, quota: null };

describe('cgn explain --account', () => {
  let server: Server;
  let base = '';
  const seen: (string | undefined)[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'cgn-explain-'));
  beforeAll(async () => {
    delete process.env['CGN_API_KEY'];
    delete process.env['CGN_METRICS_TOKEN'];
    // Plays the node: the account demo-2's key is key-2; the operator token is op.
    server = createServer((req, res) => {
      const auth = req.headers.authorization;
      seen.push(auth);
      const account = new URL(req.url!, 'http://x').searchParams.get('account');
      const problem = (status: number, detail: string) => {
        res.writeHead(status, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ code: status === 401 ? 'unauthorized' : 'forbidden', detail }));
      };
      if (account !== null && auth === undefined) return problem(401, 'needs a key');
      if (account !== null && auth !== 'Bearer key-2' && auth !== 'Bearer op') return problem(403, 'this API key belongs to another account');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });
  const run = async (...args: string[]) => {
    seen.length = 0;
    let out = '';
    const code = await runExplainFromArgs(args, { out: (s) => void (out += s), err: (s) => void (out += s) });
    return { code, out, sent: [...seen] };
  };

  it("tries the demo keys of dev.json in turn until the node takes one; without --account sends none", async () => {
    const devJson = join(dir, 'dev.json');
    writeFileSync(devJson, JSON.stringify({ statusUrl: `${base}/v1/status`, caFile: null, apiKeys: ['key-1', 'key-2'] }));
    expect(await run('--dev-json', devJson, '--dservice', 'echo', '--account', 'demo-2')).toMatchObject({ code: 0, sent: ['Bearer key-1', 'Bearer key-2'] });
    expect(await run('--dev-json', devJson, '--dservice', 'echo')).toMatchObject({ code: 0, sent: [undefined] });
  });

  it('sends the key or token given, and says what the node refused', async () => {
    expect(await run('--node', base, '--dservice', 'echo', '--account', 'demo-2', '--token', 'op')).toMatchObject({ code: 0, sent: ['Bearer op'] });
    const refused = await run('--node', base, '--dservice', 'echo', '--account', 'demo-2', '--api-key', 'key-1');
    expect(refused).toMatchObject({ code: 2, sent: ['Bearer key-1'] });
    expect(refused.out).toMatch(/the node answered 403: this API key belongs to another account/);
    const none = await run('--node', base, '--dservice', 'echo', '--account', 'demo-2', '--dev-json', join(dir, 'absent.json'));
    expect(none).toMatchObject({ code: 2, sent: [undefined] });
    expect(none.out).toMatch(/the node answered 401/);
  });
});
