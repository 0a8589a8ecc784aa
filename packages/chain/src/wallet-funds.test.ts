/**
 * `cgn wallet new | faucet | transfer | claim --for` and the sentences its chain errors become, on
 * a real anvil (and a second one with another chain id, where the faucet must refuse).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import type { Address, Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorClosedCycle } from './anchor.js';
import { ANVIL_KEYS } from './anvil.js';
import { runWalletFromArgs } from './cli.js';
import { addressesToJson } from './deploy.js';
import { startLocalChain, type LocalChain } from './local.js';
import { captureCli } from './test-fixtures/capture-cli.js';

const T = 10n ** 18n;
let chain: LocalChain;
let foreign: LocalChain;
let dir: string;
let contractsFile: string;
let devJson: string;

const run = (args: string[], env: Record<string, string> = {}) => captureCli(runWalletFromArgs, args, env);

/** A new wallet made by the command itself: its address and key file. */
async function newWallet(name: string): Promise<{ address: Address; file: string; key: Hex }> {
  const file = path.join(dir, `${name}.key`);
  const r = await run(['new', '--out', file, '--json']);
  expect(r.code).toBe(0);
  const w = JSON.parse(r.out) as { address: Address; file: string };
  return { ...w, key: fs.readFileSync(file, 'utf8').trim() as Hex };
}

beforeAll(async () => {
  [chain, foreign] = await Promise.all([startLocalChain({}), startLocalChain({ anvil: { chainId: 4242 } })]);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-funds-'));
  contractsFile = path.join(dir, 'contracts.json');
  fs.writeFileSync(contractsFile, addressesToJson(chain.addresses));
  // what npm start writes, trimmed to what the wallet reads
  devJson = path.join(dir, 'dev.json');
  fs.writeFileSync(devJson, JSON.stringify({ chain: { rpcUrl: chain.rpcUrl, contractsFile, payees: { operator: { address: chain.operator, privateKey: ANVIL_KEYS[0] } } } }));
});

afterAll(async () => {
  await Promise.all([chain?.stop(), foreign?.stop()]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('cgn wallet new', () => {
  it('writes a new key to a 0600 file, prints its address, and never overwrites', async () => {
    const file = path.join(dir, 'sub', 'w.key');
    const r = await run(['new', '--out', file]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^address 0x[0-9a-fA-F]{40}\nkey {5}.*w\.key \(mode 0600/);
    expect(r.out).toContain('cgn wallet faucet --address 0x');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^0x[0-9a-f]{64}\n$/);
    const before = fs.readFileSync(file, 'utf8');
    const again = await run(['new', '--out', file]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/exists: a wallet file is never overwritten/);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
  });
});

describe('cgn wallet faucet', () => {
  it('gives CGN and gas ETH on the local chain, with everything read from dev.json', async () => {
    const w = await newWallet('faucet');
    const r = await run(['faucet', '--address', w.address, '--amount', '100'], { CGN_DEV_JSON: devJson });
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/got 100 CGN \(minted/);
    expect(r.out).toMatch(/got 1 ETH for gas/);
    expect(await chain.contracts.tokenBalance(w.address)).toBe(100n * T);
    expect(await chain.contracts.ethBalance(w.address)).toBe(T);
    const bal = await run(['balance', '--dev-json', devJson, '--address', w.address]);
    expect(bal.out).toMatch(/tokens\s+100 CGN/);
    expect(bal.out).toMatch(/eth \(gas\)\s+1 ETH/);
  });

  it('refuses on any other chain, saying why', async () => {
    const file = path.join(dir, 'foreign.json');
    fs.writeFileSync(file, addressesToJson(foreign.addresses));
    const r = await run(['faucet', '--rpc', foreign.rpcUrl, '--contracts', file, '--key', ANVIL_KEYS[0], '--address', chain.operator, '--amount', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the faucet works only on the local development chain \(chain id 31337.*this endpoint is chain 4242/);
    expect(await foreign.contracts.tokenBalance(chain.operator)).toBe(0n);
  });

  it("gives from the dev deployer even when the user's own CGN_WALLET_KEY is set", async () => {
    const w = await newWallet('faucet-env');
    const r = await run(['faucet', '--address', w.address, '--amount', '2', '--eth', '0'], { CGN_DEV_JSON: devJson, CGN_WALLET_KEY: w.key });
    expect(r.out).toMatch(/got 2 CGN \(minted/);
    expect(await chain.contracts.tokenBalance(w.address)).toBe(2n * T);
  });

  it('needs the deployer key and an address', async () => {
    const noDev = await run(['faucet', '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--address', chain.operator, '--amount', '1'], { CGN_DEV_JSON: path.join(dir, 'none.json') });
    expect(noDev.code).toBe(2);
    expect(noDev.err).toMatch(/the faucet signs with the dev deployer's key/);
    expect((await run(['faucet', '--amount', '1'], { CGN_DEV_JSON: devJson })).err).toMatch(/--address ADDRESS is required/);
    expect((await run(['faucet', '--address', 'acme', '--amount', '1'], { CGN_DEV_JSON: devJson })).code).toBe(2);
  });
});

describe('cgn wallet transfer', () => {
  it('sends CGN and ETH from a key file', async () => {
    const from = await newWallet('from');
    const to = await newWallet('to');
    expect((await run(['faucet', '--address', from.address, '--amount', '10'], { CGN_DEV_JSON: devJson })).code).toBe(0);
    const r = await run(['transfer', '--dev-json', devJson, '--key-file', from.file, '--to', to.address, '--amount', '2.5', '--eth', '0.1']);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/transfer: 2\.5 CGN to 0x/);
    expect(await chain.contracts.tokenBalance(to.address)).toBe(25n * T / 10n);
    expect(await chain.contracts.ethBalance(to.address)).toBe(T / 10n);
    expect((await run(['transfer', '--dev-json', devJson, '--key-file', from.file, '--amount', '1'])).code).toBe(2);
  });
});

describe('chain errors say what to do', () => {
  it('no ETH for gas names the address and the faucet, never the client text', async () => {
    const w = await newWallet('poor');
    const r = await run(['deposit', '--dev-json', devJson, '--key-file', w.file, '--amount', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`cgn wallet deposit: ${w.address} has no ETH for gas: run cgn wallet faucet --address ${w.address} --eth 1`);
    expect(r.err).not.toMatch(/total cost/);
  });

  it('no CGN for a deposit names what is held and needed, and the faucet', async () => {
    const w = await newWallet('nocgn');
    expect((await run(['faucet', '--address', w.address, '--eth', '1'], { CGN_DEV_JSON: devJson })).code).toBe(0);
    const r = await run(['deposit', '--dev-json', devJson, '--key-file', w.file, '--amount', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`cgn wallet deposit: ${w.address} holds 0 CGN, needs 1 CGN: run cgn wallet faucet --address ${w.address} --amount 1 (contract error ERC20InsufficientBalance)`);
    expect(r.err).not.toMatch(/signature/);
    const t = await run(['transfer', '--dev-json', devJson, '--key-file', w.file, '--to', chain.operator, '--amount', '3']);
    expect(t.err).toMatch(/holds 0 CGN, needs 3 CGN: run cgn wallet faucet --address 0x[0-9a-fA-F]{40} --amount 3/);
    const wd = await run(['withdraw', '--dev-json', devJson, '--key-file', w.file, '--amount', '1']);
    expect(wd.err).toMatch(/you may withdraw at most 0 CGN now, not 1 CGN: ask the ledger for the unused balance first/);
    const stake = await run(['unbond', '--dev-json', devJson, '--key-file', w.file, '--withdraw']);
    expect(stake.err).toMatch(/nothing is unbonding: request it first/);
    const na = await run(['claim', '--dev-json', devJson, '--key-file', w.file, '--cycle', '77', '--units', '5', '--proof', `0x${'00'.repeat(32)}`]);
    expect(na.err).toMatch(/cycle 77 is not anchored on chain yet/);
  });

  it('a contracts file of another chain says which and what to give', async () => {
    const r = await run(['balance', '--rpc', foreign.rpcUrl, '--contracts', contractsFile, '--address', chain.operator]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/is chain 4242, but the contracts file .* is for chain 31337: give the --contracts file that chain's deployment wrote/);
  });

  it('an unreachable chain says so', async () => {
    const r = await run(['balance', '--rpc', 'http://127.0.0.1:9', '--contracts', contractsFile, '--address', chain.operator]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot reach the chain at http:\/\/127\.0\.0\.1:9: is the network running \(npm start\)\?/);
  });
});

describe('cgn wallet claim --for', () => {
  it('relays a claim for an address without ETH: the tokens go to it, all of them (a stranger may not take a fee)', async () => {
    const poor = await newWallet('beneficiary');
    const tree = StandardMerkleTree.of([[poor.address, (10n * T).toString()], [chain.operator, '1']], ['address', 'uint256']);
    await chain.contracts.mint(chain.operator, 10n * T + 1n);
    await chain.contracts.deposit(10n * T + 1n);
    await anchorClosedCycle(chain.contracts, { cycleId: 1, payoutRoot: tree.root as Hex, batchRoots: [], total: 10n * T + 1n, debits: [{ address: chain.operator, amount: 10n * T + 1n }] });
    const proof = (tree.getProof(0) as Hex[]).join(',');
    // the beneficiary itself cannot: it has no gas, and is told who can
    const self = await run(['claim', '--dev-json', devJson, '--key-file', poor.file, '--cycle', '1', '--units', (10n * T).toString(), '--proof', proof]);
    expect(self.code).toBe(1);
    expect(self.err).toBe(`cgn wallet claim: ${poor.address} has no ETH for gas: run cgn wallet faucet --address ${poor.address} --eth 1; or let anyone claim for it without its gas: cgn wallet claim --for ${poor.address} (cgn settle does so by default)`);
    const relayer = await newWallet('relayer');
    expect((await run(['faucet', '--address', relayer.address, '--eth', '1'], { CGN_DEV_JSON: devJson })).code).toBe(0);
    const base = ['claim', '--dev-json', devJson, '--key-file', relayer.file, '--for', poor.address, '--cycle', '1', '--units', (10n * T).toString(), '--proof', proof];
    expect((await run([...base, '--fee-bps', '200'])).err).toMatch(/a relayer fee of 200 basis points is above the contract's cap of 100: give --fee-bps 100 or less/);
    // Only the settlement operator may keep a fee: a stranger relaying with one is refused.
    expect((await run([...base, '--fee-bps', '50'])).err).toMatch(/FeeNotAllowed/);
    const r = await run(base);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(new RegExp(`claim: ok for ${poor.address} \\(relayed: the tokens went to it`));
    expect(await chain.contracts.tokenBalance(poor.address)).toBe(10n * T);
    expect(await chain.contracts.tokenBalance(relayer.address)).toBe(0n);
    expect(await chain.contracts.ethBalance(poor.address)).toBe(0n);
    const again = await run(base);
    expect(again.err).toMatch(/cycle 1 was already claimed for 0x[0-9a-fA-F]{40} \(by it or by a relayer\)/);
  });
});
