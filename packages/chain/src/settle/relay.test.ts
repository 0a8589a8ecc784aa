/**
 * The settler's relay step on a real anvil: beneficiaries whose address holds no ETH get their
 * claims submitted for them after their cycle is anchored; those with gas are left to claim.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqliteLedgerStore, type Microtransaction } from '@cgn/ledger';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANVIL_KEYS } from '../anvil.js';
import { runWalletFromArgs } from '../cli.js';
import { addressesToJson } from '../deploy.js';
import type { CgnContracts } from '../contracts.js';
import { asAccount, startLocalChain, type LocalChain } from '../local.js';
import { MemoryWatcherStore } from '../watcher.js';
import { Settler } from './settler.js';

const T = 10n ** 18n;
let chain: LocalChain;
let payer: CgnContracts;
let dev: CgnContracts;
let dir: string;
let store: SqliteLedgerStore;
/** Fresh addresses: no ETH, no tokens. */
const minerAddr = privateKeyToAccount(`0x${'71'.repeat(32)}`).address;
const charityAddr = privateKeyToAccount(`0x${'72'.repeat(32)}`).address;

function record(i: number): Microtransaction {
  return {
    workId: `w_relay_${i}`, account: 'acme', endUser: null, dservice: 'echo', tier: 'open', miner: 'm1', node: 'node-a',
    receivedAt: 1_790_000_000_000 + i, queueUs: 1, execUs: 1000, cpuUs: 900, bytesIn: 10, bytesOut: 10, status: 200, resultHash: null, attempts: 1,
    pricing: { priceMicros: 1_000_003n, split: { miner: 7000, developer: 2000, operator: 900, charity: 100 }, developer: 'dev_1', operator: 'op_1', charity: 'charity_1' },
  };
}

const settler = (over: Partial<ConstructorParameters<typeof Settler>[0]> = {}) =>
  new Settler({ store, contracts: chain.contracts, watcherStore: new MemoryWatcherStore(), confirmations: 0, ...over });

/** What the ledger says `address` is owed in `cycle`. */
const owed = (cycle: number, address: string) => store.payouts(cycle).find((p) => p.address.toLowerCase() === address.toLowerCase())?.amount ?? 0n;

beforeAll(async () => {
  chain = await startLocalChain({});
  [payer, dev] = (await Promise.all([1, 3].map((i) => asAccount(chain, ANVIL_KEYS[i]!)))) as [CgnContracts, CgnContracts];
  await chain.contracts.mint(payer.me, 1_000n * T);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-relay-'));
  store = new SqliteLedgerStore({ path: path.join(dir, 'ledger.sqlite') });
  store.registerAddress('miner', 'm1', minerAddr);
  store.registerAddress('developer', 'dev_1', dev.me);
  store.registerAddress('operator', 'op_1', chain.operator);
  store.registerAddress('charity', 'charity_1', charityAddr);
  store.linkAddress('acme', payer.me);
  await payer.deposit(100n * T);
});

afterAll(async () => {
  store?.close();
  await chain?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('settler relay', () => {
  it('claims for beneficiaries without ETH right after anchoring; the ones with gas claim themselves', async () => {
    const logs: string[] = [];
    const s = settler({ log: (_l, msg) => logs.push(msg) });
    await s.tick(); // credits the deposit
    store.appendBatch([record(1), record(2)]);
    const r = await s.tick({ close: true });
    expect(r.errors).toEqual([]);
    expect(r.anchored.map((a) => a.status)).toEqual(['anchored']);
    expect(owed(1, minerAddr)).toBeGreaterThan(0n);
    expect(r.relayed.map((x) => x.address).sort()).toEqual([minerAddr, charityAddr].sort());
    expect(await chain.contracts.tokenBalance(minerAddr)).toBe(owed(1, minerAddr));
    expect(await chain.contracts.tokenBalance(charityAddr)).toBe(owed(1, charityAddr));
    expect(await chain.contracts.ethBalance(minerAddr)).toBe(0n);
    // the developer (with ETH) and the operator are left to claim for themselves
    expect(await chain.contracts.isClaimed(1, dev.me)).toBe(false);
    expect(await chain.contracts.isClaimed(1, chain.operator)).toBe(false);
    expect(logs.filter((l) => l.startsWith('claim relayed'))).toHaveLength(2);
    // idempotent: the next pass, and a restarted settler, send nothing
    expect((await s.tick()).relayed).toEqual([]);
    const fresh = await settler().tick();
    expect(fresh.relayed).toEqual([]);
    expect(fresh.errors).toEqual([]);
  });

  it('claims several cycles in one transaction, keeps the fee it is given, and can be turned off', async () => {
    store.appendBatch([record(3)]);
    const off = await settler({ relay: false }).tick({ close: true });
    expect(off.anchored.map((a) => a.cycleId)).toEqual([2n]);
    expect(off.relayed).toEqual([]);
    expect(await chain.contracts.isClaimed(2, minerAddr)).toBe(false);
    store.appendBatch([record(4)]);
    const before = await chain.contracts.tokenBalance(minerAddr);
    const relayerBefore = await chain.contracts.tokenBalance(chain.operator);
    const on = await settler({ relay: { feeBps: 100 } }).tick({ close: true });
    expect(on.errors).toEqual([]);
    const miner = on.relayed.find((x) => x.address === minerAddr)!;
    expect(miner.cycles).toEqual([2, 3]);
    const amount = owed(2, minerAddr) + owed(3, minerAddr);
    expect(miner.amount).toBe(amount);
    expect(miner.fee).toBe(amount / 100n);
    expect(await chain.contracts.tokenBalance(minerAddr)).toBe(before + amount - amount / 100n);
    const fees = on.relayed.reduce((a, x) => a + x.fee, 0n);
    expect(await chain.contracts.tokenBalance(chain.operator)).toBe(relayerBefore + fees);
  });

  it('a refused relay (a fee above the cap) is held like any refused step', async () => {
    store.appendBatch([record(5)]);
    const r = await settler({ relay: { feeBps: 500 } }).tick({ close: true });
    expect(r.anchored.map((a) => a.status)).toEqual(['anchored']);
    expect(r.held).toMatchObject([{ step: 'relay', reason: 'FeeTooHigh' }]);
    expect(await chain.contracts.isClaimed(4, minerAddr)).toBe(false);
    expect((await settler().tick()).relayed.map((x) => x.cycles)).toEqual([[4], [4]]);
  });

  it('anyone relays a claim by hand from the ledger: cgn wallet claim --for ADDRESS --ledger PATH', async () => {
    store.appendBatch([record(6)]);
    const r = await settler({ relay: false }).tick({ close: true });
    const cycle = Number(r.anchored[0]!.cycleId);
    const contractsFile = path.join(dir, 'contracts.json');
    fs.writeFileSync(contractsFile, addressesToJson(chain.addresses));
    const out: string[] = [];
    const err: string[] = [];
    const before = await chain.contracts.tokenBalance(minerAddr);
    const args = ['claim', '--for', minerAddr, '--ledger', path.join(dir, 'ledger.sqlite'), '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[5]];
    const code = await runWalletFromArgs(args, { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env: {} });
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(new RegExp(`claim: ok for ${minerAddr} \\(relayed: the tokens went to it\\) 1 cycle\\(s\\): cycle ${cycle} `));
    expect(await chain.contracts.tokenBalance(minerAddr)).toBe(before + owed(cycle, minerAddr));
    // nothing left: said plainly
    const again: string[] = [];
    expect(await runWalletFromArgs(args, { stdout: () => undefined, stderr: (t) => void again.push(t), env: {} })).toBe(1);
    expect(again.join('')).toMatch(/nothing to claim: 0x[0-9a-fA-F]{40} has no unclaimed payout/);
  });
});
