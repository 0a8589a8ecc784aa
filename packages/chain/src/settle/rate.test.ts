/** `cgn settle --rate-file/--rate-url/--rate`: each new cycle's token rate from a rate source, recorded on the cycle. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqliteLedgerStore, type Microtransaction } from '@cgn/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANVIL_KEYS } from '../anvil.js';
import { addressesToJson } from '../deploy.js';
import { startLocalChain, type LocalChain } from '../local.js';
import { runSettleFromArgs } from './cli.js';
import { rateFromFlags } from './rate-flags.js';
import { captureCli } from '../test-fixtures/capture-cli.js';

let chain: LocalChain;
let dir: string;
let contractsFile: string;

const run = (args: string[]) => captureCli(runSettleFromArgs, args);

const record = (i: number): Microtransaction => ({
  workId: `w_rate_${i}`, account: 'acme', endUser: null, dservice: 'echo', tier: 'open', miner: 'm1', node: 'node-a',
  receivedAt: 1_790_000_000_000 + i, queueUs: 1, execUs: 1000, cpuUs: 900, bytesIn: 10, bytesOut: 10, status: 200, resultHash: null, attempts: 1,
  pricing: { priceMicros: 1_000n, split: { miner: 7000, developer: 2000, operator: 900, charity: 100 }, developer: 'dev_1', operator: 'op_1', charity: 'charity_1' },
});

beforeAll(async () => {
  chain = await startLocalChain({});
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-settle-rate-'));
  contractsFile = path.join(dir, 'contracts.json');
  fs.writeFileSync(contractsFile, addressesToJson(chain.addresses));
});

afterAll(async () => {
  await chain?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('cgn settle rate source', () => {
  const ledger = () => path.join(dir, 'ledger.sqlite');
  const base = () => ['--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[0], '--ledger', ledger(), '--cursor', path.join(dir, 'cursor.json'), '--no-relay'];

  it('takes the next cycle rate from --rate-file when it closes a cycle, and the cycle records it with its source and time', async () => {
    const store = new SqliteLedgerStore({ path: ledger() });
    store.credit('acme', 10n ** 9n, 'prepaid');
    store.appendBatch([record(1)]);
    store.close();
    const rateFile = path.join(dir, 'rate.json');
    fs.writeFileSync(rateFile, JSON.stringify({ cgnBaseUnitsPerMicroUsd: '3/2' }));
    const before = Date.now();
    const r = await run([...base(), '--once', '--close-now', '--rate-file', rateFile]);
    expect(JSON.parse(r.out), r.err).toMatchObject({ closed: { cycle: 1, records: 1 } });
    const after = new SqliteLedgerStore({ path: ledger() });
    try {
      const open = after.currentCycle();
      expect(open).toMatchObject({ id: 2, rate: { num: 3n, den: 2n }, rateSource: `file:${rateFile}` });
      expect(open.rateFetchedAt).toBeGreaterThanOrEqual(before);
      expect(open.rateFetchedAt).toBeLessThanOrEqual(Date.now());
      // Records of the new cycle are charged at that rate.
      after.appendBatch([record(2)]);
      expect(after.getRow(record(2).workId)?.billing?.charge?.tokens).toBe(1_500n);
    } finally {
      after.close();
    }
  });

  it('--rate overrides a source (recorded as manual); bad or conflicting flags are usage errors', async () => {
    const over = rateFromFlags({ rate: '7/3', rateFile: 'ignored.json' }, () => 5);
    expect(await over!()).toEqual({ rate: { num: 7n, den: 3n }, source: 'manual', fetchedAt: 5 });
    expect(rateFromFlags({})).toBeUndefined();
    expect((await run([...base(), '--once', '--rate-file', 'a.json', '--rate-url', 'https://x'])).err).toMatch(/one rate source/);
    expect((await run([...base(), '--once', '--rate', '1/0'])).code).toBe(2);
    expect((await run([...base(), '--once', '--rate-url', 'ftp://x'])).err).toMatch(/http\(s\) URL/);
    expect((await run(['--help'])).out).toMatch(/--rate-file FILE/);
  });

  it('a rate source that cannot be read leaves the cycle open, saying why', async () => {
    const store = new SqliteLedgerStore({ path: ledger() });
    store.appendBatch([record(3)]);
    store.close();
    const r = await run([...base(), '--once', '--close-now', '--rate-file', path.join(dir, 'missing.json')]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toMatchObject({ closed: null });
    expect(r.out).toMatch(/cannot read the rate file/);
    const after = new SqliteLedgerStore({ path: ledger() });
    expect(after.currentCycle().id).toBe(2);
    after.close();
  });
});
