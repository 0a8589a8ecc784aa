/**
 * The control app's chain figures, read from a real anvil chain with the deployed contracts:
 * tokens and stake of the payout address; and the reasons shown without a chain, without an
 * address, or with a chain that does not answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ANVIL_KEYS, addressesToJson, asAccount, startLocalChain, type LocalChain } from '@cgn/chain';
import { ChainEarnings, NO_CHAIN } from './earnings.js';

const T = 10n ** 18n;
let chain: LocalChain;
let dir: string;
let contractsFile: string;

beforeAll(async () => {
  chain = await startLocalChain({});
  dir = mkdtempSync(join(tmpdir(), 'cgn-earnings-'));
  contractsFile = join(dir, 'contracts.json');
  writeFileSync(contractsFile, addressesToJson(chain.addresses));
});

afterAll(async () => {
  await chain?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('chain figures for the control app', () => {
  it("reads the payout address's tokens and stake from the chain", async () => {
    const owner = await asAccount(chain, ANVIL_KEYS[5]!);
    await chain.contracts.mint(owner.me, 30n * T);
    await owner.stake(12n * T);
    const e = new ChainEarnings({ chain: { rpcUrl: chain.rpcUrl, contractsFile }, address: owner.me });
    expect(e.current()).toMatchObject({ known: false, reason: /reading the chain/ });
    const v = await e.refresh();
    expect(v).toMatchObject({ known: true, tokens: '18', stake: '12', banned: false, claimedTotal: '0', perCycle: [] });
  });

  it('says why there are no figures: no chain, no payout address, a chain that does not answer', async () => {
    expect(new ChainEarnings({ chain: null, address: '0x' + '1'.repeat(40) }).current()).toEqual({ known: false, reason: NO_CHAIN });
    expect(new ChainEarnings({ chain: { rpcUrl: chain.rpcUrl, contractsFile }, address: null }).current()).toMatchObject({ known: false, reason: /no payout address/ });
    const dead = new ChainEarnings({ chain: { rpcUrl: 'http://127.0.0.1:1/', contractsFile }, address: '0x' + '1'.repeat(40) });
    expect(await dead.refresh()).toMatchObject({ known: false, reason: /cannot read the chain at http:\/\/127\.0\.0\.1:1\// });
    const noFile = new ChainEarnings({ chain: { rpcUrl: chain.rpcUrl, contractsFile: join(dir, 'missing.json') }, address: '0x' + '1'.repeat(40) });
    expect(await noFile.refresh()).toMatchObject({ known: false, reason: /missing\.json/ });
  });
});
