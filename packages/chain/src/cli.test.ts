import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import type { Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorClosedCycle } from './anchor.js';
import { ANVIL_KEYS } from './anvil.js';
import { runWalletFromArgs } from './cli.js';
import { addressesToJson } from './deploy.js';
import { asAccount, startLocalChain, type LocalChain } from './local.js';
import { exportMinerKey, generateMinerKey, minerIdOf, stakeBindingMessage } from '@cgn/protocol';
import { recoverMessageAddress } from 'viem';
import { captureCli } from './test-fixtures/capture-cli.js';

let chain: LocalChain;
let dir: string;
let contractsFile: string;

const run = (args: string[]) => captureCli(runWalletFromArgs, args);

beforeAll(async () => {
  chain = await startLocalChain({ unbondingDelaySeconds: 60 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-wallet-'));
  contractsFile = path.join(dir, 'contracts.json');
  fs.writeFileSync(contractsFile, addressesToJson(chain.addresses));
  const user = await asAccount(chain, ANVIL_KEYS[1]);
  await chain.contracts.mint(user.me, 1000n * 10n ** 18n);
});

afterAll(async () => {
  await chain?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('cgn wallet', () => {
  it('prints help and refuses bad usage with exit code 2', async () => {
    expect((await run(['--help'])).code).toBe(0);
    expect((await run([])).code).toBe(2);
    expect((await run(['fly'])).code).toBe(2);
    expect((await run(['balance', '--bogus'])).code).toBe(2);
    const noKey = await run(['deposit', '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--amount', '1']);
    expect(noKey.code).toBe(2);
    expect(noKey.err).toMatch(/--key/);
    expect((await run(['deposit', '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[1], '--amount', '-1'])).code).toBe(2);
    expect((await run(['claim', '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[1], '--cycle', '1'])).code).toBe(2);
  });

  it('deposits, stakes, unbonds, claims and shows balance and history', async () => {
    const base = ['--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[1]];
    expect(await run(['deposit', ...base, '--amount', '12.5'])).toMatchObject({ code: 0 });
    expect(await run(['stake', ...base, '--amount', '20'])).toMatchObject({ code: 0 });
    expect(await run(['unbond', ...base, '--amount', '5'])).toMatchObject({ code: 0 });
    const early = await run(['unbond', ...base, '--withdraw']);
    expect(early.code).toBe(1);
    expect(early.err).toMatch(/StillUnbonding/);

    const me = (await asAccount(chain, ANVIL_KEYS[1])).me;
    const tree = StandardMerkleTree.of([[me, '1000'], [chain.operator, '5']], ['address', 'uint256']);
    await chain.contracts.mint(chain.operator, 2010n);
    await chain.contracts.deposit(2010n); // the operator's escrow pays both cycles
    for (const id of [1, 2]) await anchorClosedCycle(chain.contracts, { cycleId: id, payoutRoot: tree.root, batchRoots: [], total: 1005n, debits: [{ address: chain.operator, amount: 1005n }] });
    const proof = tree.getProof(0) as Hex[];
    expect(await run(['claim', ...base, '--cycle', '1', '--units', '1000', '--proof', proof.join(',')])).toMatchObject({ code: 0 });
    const again = await run(['claim', ...base, '--cycle', '1', '--units', '1000', '--proof', proof.join(',')]);
    expect(again).toMatchObject({ code: 1 });
    expect(again.err).toMatch(/AlreadyClaimed/);
    const file = path.join(dir, 'proofs.json');
    fs.writeFileSync(file, JSON.stringify([{ cycleId: 2, amount: '1000', proof }]));
    expect(await run(['claim', ...base, '--proofs', file])).toMatchObject({ code: 0 });

    const bal = await run(['balance', '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--address', me]);
    expect(bal.code).toBe(0);
    expect(bal.out).toMatch(/escrow\s+12\.5 CGN/);
    expect(bal.out).toMatch(/stake\s+15 CGN \(open tier\)/);
    const json = await run(['balance', '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--address', me, '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ escrow: '12500000000000000000', unbonding: '5000000000000000000' });
    const hist = await run(['history', ...base, '--json']);
    expect((JSON.parse(hist.out) as { history: { kind: string }[] }).history.map((e) => e.kind)).toEqual(['deposit', 'stake', 'unbond-request', 'claim', 'claim']);
  });

  it('stake-proof signs the binding of an address to a miner key, offline', async () => {
    const key = generateMinerKey();
    const keyFile = path.join(dir, 'miner.pem');
    fs.writeFileSync(keyFile, exportMinerKey(key));
    const r = await run(['stake-proof', '--key', ANVIL_KEYS[2], '--miner-key', keyFile, '--json']);
    expect(r.code).toBe(0);
    const p = JSON.parse(r.out) as { address: string; minerId: string; proof: Hex };
    expect(p.minerId).toBe(minerIdOf(key.publicKey));
    expect(p.address).toBe((await asAccount(chain, ANVIL_KEYS[2])).me);
    expect(await recoverMessageAddress({ message: stakeBindingMessage(p.minerId), signature: p.proof })).toBe(p.address);
    const text = await run(['stake-proof', '--key', ANVIL_KEYS[2], '--miner-id', p.minerId]);
    expect(text.out).toContain(`--payout-address ${p.address} --stake-proof ${p.proof}`);
    expect((await run(['stake-proof', '--miner-id', p.minerId])).code).toBe(2);
    expect((await run(['stake-proof', '--key', ANVIL_KEYS[2]])).code).toBe(2);
    expect((await run(['stake-proof', '--key', ANVIL_KEYS[2], '--miner-id', 'xyz'])).code).toBe(2);
  });
});
