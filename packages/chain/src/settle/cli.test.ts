import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqliteLedgerStore } from '@cgn/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANVIL_KEYS } from '../anvil.js';
import { addressesToJson } from '../deploy.js';
import { startLocalChain, type LocalChain } from '../local.js';
import { runSettleFromArgs } from './cli.js';
import { captureCli } from '../test-fixtures/capture-cli.js';

let chain: LocalChain;
let dir: string;
let contractsFile: string;

const run = (args: string[]) => captureCli(runSettleFromArgs, args);

beforeAll(async () => {
  chain = await startLocalChain({});
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-settle-cli-'));
  contractsFile = path.join(dir, 'contracts.json');
  fs.writeFileSync(contractsFile, addressesToJson(chain.addresses));
  new SqliteLedgerStore({ path: path.join(dir, 'ledger.sqlite') }).close(); // an empty ledger
});

afterAll(async () => {
  await chain?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('cgn settle relay flags', () => {
  const base = () => ['--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[0], '--ledger', path.join(dir, 'ledger.sqlite'), '--cursor', path.join(dir, 'cursor.json')];

  it('takes a relay fee up to the contract cap and refuses more, or a fee with --no-relay', async () => {
    const high = await run([...base(), '--relay-fee-bps', '101', '--once']);
    expect(high.code).toBe(2);
    expect(high.err).toMatch(/--relay-fee-bps must be a whole number from 0 to 100/);
    expect((await run([...base(), '--no-relay', '--relay-fee-bps', '5', '--once'])).code).toBe(2);
    expect((await run(['--help'])).out).toMatch(/--no-relay/);
  });

  it('reports relayed claims in a --once pass', async () => {
    const r = await run([...base(), '--relay-fee-bps', '10', '--once']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ relayed: [], errors: [], held: [] });
    const off = await run([...base(), '--no-relay', '--once']);
    expect(JSON.parse(off.out)).toMatchObject({ relayed: [] });
  });
});
