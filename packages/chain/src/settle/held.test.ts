/**
 * Held earnings on chain: a miner with no address earns, its credit is held (anchored cycles pay
 * only the others, and take only that much from escrow); it registers an address, the next cycle
 * pays everything held, from the escrow of the account that spent it, and its claim raises its
 * token balance by exactly what the ledger says it earned. Empty cycles are not anchored unless
 * asked; a manual close request is honoured by the settler holding the ledger's closer lease.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqliteLedgerStore, payableTokens, type Microtransaction } from '@cgn/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANVIL_KEYS, rpcCall } from '../anvil.js';
import type { CgnContracts } from '../contracts.js';
import { asAccount, startLocalChain, type LocalChain } from '../local.js';
import { MemoryWatcherStore } from '../watcher.js';
import { claimableFromLedger } from './claims.js';
import { Settler } from './settler.js';

const T = 10n ** 18n;
let chain: LocalChain;
let payer: CgnContracts;
let miner: CgnContracts;
let dir: string;
let store: SqliteLedgerStore;
const MINER = 'c0'.repeat(32);

function record(i: number): Microtransaction {
  return {
    workId: `w_held_${i}`, account: 'acme', endUser: null, dservice: 'echo', tier: 'open', miner: MINER, node: 'node-a',
    receivedAt: 1_790_000_000_000 + i, queueUs: 1, execUs: 1000, cpuUs: 900, bytesIn: 10, bytesOut: 10, status: 200, resultHash: null, attempts: 1,
    pricing: { priceMicros: 1_000_003n, split: { miner: 7000, developer: 2000, operator: 900, charity: 100 }, developer: 'dev_1', operator: 'op_1', charity: 'charity_1' },
  };
}

beforeAll(async () => {
  chain = await startLocalChain({});
  [payer, miner] = (await Promise.all([1, 2].map((i) => asAccount(chain, ANVIL_KEYS[i]!)))) as [CgnContracts, CgnContracts];
  await chain.contracts.mint(payer.me, 100n * T);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-held-'));
  store = new SqliteLedgerStore({ path: path.join(dir, 'ledger.sqlite') });
  for (const [role, id] of [['developer', 'dev_1'], ['operator', 'op_1'], ['charity', 'charity_1']] as const) store.registerAddress(role, id, chain.operator);
  store.linkAddress('acme', payer.me);
  await payer.deposit(10n * T);
  await rpcCall(chain.rpcUrl, 'anvil_mine', ['0x3']);
});

afterAll(async () => {
  store?.close();
  await chain?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const settler = () => new Settler({ store, contracts: chain.contracts, watcherStore: new MemoryWatcherStore(), confirmations: 2, relay: false });

describe('held earnings on chain', () => {
  it('holds a miner without an address, anchors what the tree pays, then pays it all once it has an address', async () => {
    const s = settler();
    expect((await s.tick()).deposits).toBe(1);
    store.appendBatch([record(1), record(2)]);
    const one = await s.tick({ close: true });
    expect(one.errors).toEqual([]);
    const c1 = store.cycleSummary(1)!;
    expect(c1.held > 0n).toBe(true);
    expect((await chain.contracts.cycleOf(1))?.total).toBe(payableTokens(c1));
    expect(await chain.contracts.escrowOf(payer.me)).toBe(10n * T - payableTokens(c1)); // the held part stays in acme's escrow
    expect(await claimableFromLedger(store, miner, miner.me)).toEqual([]);

    // An empty cycle (closed by hand) is not anchored.
    store.closeCycle();
    expect(store.cycleSummary(2)!.records).toBe(0);
    await s.tick();
    expect(store.anchors().map((a) => a.cycle)).toEqual([1]);

    // The miner gives an address: the next cycle (no new records) pays everything held for it.
    store.registerAddress('miner', MINER, miner.me);
    const three = await s.tick({ close: true });
    expect(three.closed).toMatchObject({ id: 3, records: 0, released: c1.held });
    expect(store.anchors().map((a) => a.cycle)).toEqual([1, 3]);
    expect(await chain.contracts.escrowOf(payer.me)).toBe(10n * T - c1.tokens); // acme paid exactly what it spent, no more
    const before = await miner.tokenBalance(miner.me);
    const claims = await claimableFromLedger(store, miner, miner.me);
    expect(claims).toHaveLength(1);
    await miner.claim(claims[0]!);
    const earned = store.credits(1).filter((c) => c.role === 'miner').reduce((a, c) => a + c.tokens, 0n);
    expect((await miner.tokenBalance(miner.me)) - before).toBe(earned);
    await s.stop();
  });

  it('closes the open cycle when a manual close-cycle asks the settler holding the closer lease', async () => {
    const s = settler();
    await s.tick(); // takes the lease
    expect(store.cycleCloser()).toMatchObject({ holder: 'cgn settle', pid: process.pid });
    store.appendBatch([record(3)]);
    expect((await s.tick()).closed).toBeNull(); // not due (no --close-every)
    store.requestCycleClose();
    expect((await s.tick()).closed).toMatchObject({ id: 4, records: 1 });
    await s.stop();
    expect(store.cycleCloser()).toBeNull(); // released
  });
});
