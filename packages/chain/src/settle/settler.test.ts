import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SqliteLedgerStore, type Microtransaction } from '@cgn/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANVIL_KEYS, rpcCall } from '../anvil.js';
import { connect } from '../clients.js';
import { CgnContracts } from '../contracts.js';
import { settlementAbi } from '../generated/index.js';
import { asAccount, startLocalChain, type LocalChain } from '../local.js';
import { JsonFileWatcherStore, MemoryWatcherStore } from '../watcher.js';
import { claimableFromLedger } from './claims.js';
import { Settler } from './settler.js';

const T = 10n ** 18n;
let chain: LocalChain;
let payer: CgnContracts;
let miner: CgnContracts;
let dev: CgnContracts;
let dir: string;
let store: SqliteLedgerStore;

/** The ledger's database behind the store's back, to simulate a crash between a transaction and its ledger mark. */
const rawDb = () => (store as unknown as { db: { prepare(s: string): { run(...a: unknown[]): unknown } } }).db;
const mine = (n: number) => rpcCall(chain.rpcUrl, 'anvil_mine', [`0x${n.toString(16)}`]);

function record(i: number, account: string): Microtransaction {
  return {
    workId: `w_settle_${i}`, account, endUser: null, dservice: 'echo', tier: 'open', miner: 'm1', node: 'node-a',
    receivedAt: 1_790_000_000_000 + i, queueUs: 1, execUs: 1000, cpuUs: 900, bytesIn: 10, bytesOut: 10, status: 200, resultHash: null, attempts: 1,
    pricing: { priceMicros: 1_000_003n, split: { miner: 7000, developer: 2000, operator: 900, charity: 100 }, developer: 'dev_1', operator: 'op_1', charity: 'charity_1' },
  };
}

beforeAll(async () => {
  chain = await startLocalChain({});
  [payer, miner, dev] = (await Promise.all([1, 2, 3].map((i) => asAccount(chain, ANVIL_KEYS[i]!)))) as [CgnContracts, CgnContracts, CgnContracts];
  await chain.contracts.mint(payer.me, 1_000n * T);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-settler-'));
  store = new SqliteLedgerStore({ path: path.join(dir, 'ledger.sqlite') });
  // Every beneficiary paid to a real key: the miner and developer claim, the operator (deployer) and charity (key 4) too.
  store.registerAddress('miner', 'm1', miner.me);
  store.registerAddress('developer', 'dev_1', dev.me);
  store.registerAddress('operator', 'op_1', chain.operator);
  store.registerAddress('charity', 'charity_1', (await asAccount(chain, ANVIL_KEYS[4]!)).me);
  store.linkAddress('acme', payer.me);
});

afterAll(async () => {
  store?.close();
  await chain?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const settler = (over: Partial<ConstructorParameters<typeof Settler>[0]> = {}) =>
  new Settler({ store, contracts: chain.contracts, watcherStore: new JsonFileWatcherStore(path.join(dir, 'cursor.json')), confirmations: 2, ...over });

describe('settler', () => {
  it('credits a deposit once it is final, and never twice: not after a restart, not with a lost cursor', async () => {
    await payer.deposit(100n * T);
    const s1 = settler();
    expect((await s1.tick()).deposits).toBe(0); // not final yet
    expect(store.balance('acme').deposited).toBe(0n);
    await mine(2);
    expect((await s1.tick()).deposits).toBe(1);
    expect(store.balance('acme').deposited).toBe(100n * T);
    // restart on the same cursor file: nothing new
    expect((await settler().tick()).deposits).toBe(0);
    // the cursor is lost (fresh watcher store): the event is read again, the ledger refuses to credit it twice
    expect((await settler({ watcherStore: new MemoryWatcherStore() }).tick()).deposits).toBe(1);
    expect(store.balance('acme').deposited).toBe(100n * T);
    expect(await payer.escrowOf(payer.me)).toBe(100n * T);
  });

  it('closes a cycle, anchors it once even when the chain was down, and lets every beneficiary claim', async () => {
    store.appendBatch([record(1, 'acme'), record(2, 'acme'), record(3, 'acme')]);
    // the chain is down: the cycle closes (ledger only) and stays pending
    const down = new CgnContracts(await connect({ rpcUrl: 'http://127.0.0.1:9', privateKey: ANVIL_KEYS[0], chainId: chain.contracts.addresses.chainId }), chain.contracts.addresses);
    const r1 = await settler({ contracts: down, anchor: { attempts: 1 } }).tick({ close: true });
    expect(r1.closed).toMatchObject({ id: 1, records: 3 });
    expect(r1.anchored).toEqual([]);
    expect(r1.errors.map((e) => e.step)).toEqual(['deposits', 'anchor']);
    expect(store.anchors()).toEqual([]);
    // the chain is back: anchored once; later ticks do nothing more
    const r2 = await settler().tick();
    expect(r2.errors).toEqual([]);
    expect(r2.anchored.map((a) => [a.cycleId, a.status])).toEqual([[1n, 'anchored']]);
    expect(store.anchors().map((a) => a.cycle)).toEqual([1]);
    expect((await settler().tick()).anchored).toEqual([]);
    // the ledger mark is lost (a crash right after the transaction): found on chain with the same root, marked, not re-sent
    rawDb().prepare('DELETE FROM cycle_anchors WHERE cycle = 1').run();
    expect((await settler().tick()).anchored.map((a) => [a.cycleId, a.status])).toEqual([[1n, 'already-anchored']]);
    const anchors = await chain.clients.public.getContractEvents({ address: chain.addresses.settlement, abi: settlementAbi, eventName: 'CycleAnchored', fromBlock: 0n });
    expect(anchors.map((l) => l.args.cycleId)).toEqual([1n]);
    expect((await chain.contracts.cycleOf(1))?.total).toBe(store.cycleSummary(1)!.tokens);

    const total = store.cycleSummary(1)!.tokens;
    const before = await Promise.all([miner, dev].map((c) => c.tokenBalance(c.me)));
    for (const c of [miner, dev]) {
      const claims = await claimableFromLedger(store, c, c.me);
      expect(claims).toHaveLength(1);
      await c.claim(claims[0]!);
      expect(await claimableFromLedger(store, c, c.me)).toEqual([]);
    }
    const credits = store.credits(1);
    const owed = (addr: string) => credits.filter((c) => c.address === addr.toLowerCase()).reduce((a, c) => a + c.tokens, 0n);
    expect((await miner.tokenBalance(miner.me)) - before[0]!).toBe(owed(miner.me));
    expect((await dev.tokenBalance(dev.me)) - before[1]!).toBe(owed(dev.me));
    expect(credits.reduce((a, c) => a + c.tokens, 0n)).toBe(total);
  });

  it('posts a withdrawal for the next anchored cycle exactly once; the address withdraws it', async () => {
    const w = store.requestWithdrawal('acme', payer.me, 40n * T);
    expect(store.balance('acme').deposited).toBe(60n * T);
    // cycle 1 is the latest anchored cycle: the grant goes out for it
    const r = await settler().tick();
    expect(r.granted).toMatchObject([{ address: payer.me, cycle: 1, amount: 40n * T }]);
    expect(r.granted[0]!.tx).not.toBeNull();
    expect(store.withdrawals({ pending: true })).toEqual([]);
    expect(await payer.withdrawableOf(payer.me)).toBe(40n * T);
    // a second request waits for the next anchored cycle (one grant per address and cycle)
    const w2 = store.requestWithdrawal('acme', payer.me, 1n * T);
    expect((await settler().tick()).granted).toEqual([]);
    expect(store.withdrawals({ pending: true }).map((x) => [x.id, x.cycle])).toEqual([[w2.id, null]]);
    store.appendBatch([record(4, 'acme')]);
    const r3 = await settler().tick({ close: true });
    expect(r3.anchored.map((a) => a.cycleId)).toEqual([2n]);
    expect(r3.granted).toMatchObject([{ cycle: 2, amount: 1n * T }]);
    const b = await payer.tokenBalance(payer.me);
    await payer.withdraw(41n * T);
    expect((await payer.tokenBalance(payer.me)) - b).toBe(41n * T);
    expect(store.withdrawals().map((x) => [x.id, x.postedAt !== null])).toEqual([
      [w.id, true],
      [w2.id, true],
    ]);
  });

  it('a grant that landed before a crash is found on chain and not paid again', async () => {
    const w = store.requestWithdrawal('acme', payer.me, 2n * T);
    store.appendBatch([record(5, 'acme')]);
    await settler().tick({ close: true }); // anchors cycle 3 and grants for it
    // simulate the crash: the ledger never heard that the grant was confirmed
    rawDb().prepare('UPDATE withdrawals SET posted_at = NULL, tx = NULL WHERE id = ?').run(w.id);
    const allowance = await payer.withdrawableOf(payer.me);
    const r = await settler().tick();
    expect(r.granted).toMatchObject([{ cycle: 3, amount: 2n * T, tx: null }]);
    expect(await payer.withdrawableOf(payer.me)).toBe(allowance);
  });

  it('a transaction the contract refuses is held, not retried every pass, until an operator says go', async () => {
    const logs: string[] = [];
    const s = settler({ log: (_level, msg) => logs.push(msg) });
    // A cycle that pays out far more than the account's escrow holds: it is not anchored
    // (Overdrawn). The ledger believes the account can pay: credited off chain, not in the escrow.
    store.setRate({ num: 1000n, den: 1n });
    store.credit('acme', 1_000n * T, 'off-chain credit');
    store.appendBatch([{ ...record(6, 'acme'), pricing: { ...record(6, 'acme').pricing!, priceMicros: T } }]);
    const first = await s.tick({ close: true });
    expect(first.errors.map((e) => e.step)).toEqual(['anchor']);
    expect(first.held).toMatchObject([{ step: 'anchor', reason: 'Overdrawn' }]);
    expect(first.held[0]!.message).toMatch(/acme owes \d+ but its addresses hold \d+ free in escrow/);
    expect(logs.filter((l) => l.includes('anchor is on hold'))).toHaveLength(1);
    // Not tried again: no new error, no new attempt.
    const again = await s.tick();
    expect(again.errors).toEqual([]);
    expect(again.held.map((h) => h.step)).toEqual(['anchor']);
    expect(logs.filter((l) => l.includes('anchor'))).toHaveLength(1);
    // The operator funds the escrow, then says go: the cycle is anchored.
    await chain.contracts.mint(payer.me, 1_000n * T);
    await payer.deposit(1_000n * T);
    expect(s.retryHeld().map((h) => h.step)).toEqual(['anchor']);
    const after = await s.tick();
    expect(after.held).toEqual([]);
    expect(after.anchored.length).toBe(1);
  });

  it('does not close a cycle while an account has spent more than it deposited, and says why once', async () => {
    const logs: string[] = [];
    const s = settler({ log: (_level, msg) => logs.push(msg) });
    store.setRate({ num: 1n, den: 1n });
    store.appendBatch([{ ...record(7, 'overdrawn'), pricing: { ...record(7, 'overdrawn').pricing!, priceMicros: 5n * T } }]);
    const open = store.currentCycle().id;
    const r = await s.tick({ close: true });
    expect(r.closed).toBeNull();
    expect(r.errors.map((e) => e.step)).toEqual(['close']);
    expect(String(r.errors[0]!.error)).toMatch(/overdrawn \(spent 5000000000000000000, deposited 0\)/);
    await s.tick({ close: true });
    expect(logs.filter((l) => l.startsWith('the cycle stays open'))).toHaveLength(1);
    expect(store.currentCycle().id).toBe(open);
    store.credit('overdrawn', 5n * T, 'funded');
    expect((await s.tick({ close: true })).closed?.id).toBe(open);
  });

  it("pays a cycle out of the escrow of the accounts that spent in it, never out of another account's", async () => {
    const settlement = chain.addresses.settlement;
    // The account of the previous test was funded off chain only: its cycle waits for escrow.
    const late = await asAccount(chain, ANVIL_KEYS[6]!);
    await chain.contracts.mint(late.me, 5n * T);
    store.linkAddress('overdrawn', late.me);
    await late.deposit(5n * T);
    const poor = await asAccount(chain, ANVIL_KEYS[5]!);
    await chain.contracts.mint(poor.me, 10n * T);
    store.linkAddress('poor', poor.me);
    await poor.deposit(1n * T);
    await mine(2);
    const s = settler();
    expect((await s.tick()).held).toEqual([]);
    expect(await chain.contracts.escrowOf(late.me)).toBe(0n); // the waiting cycle was paid by its spender
    // The ledger believes 'poor' can pay 5 (1 on chain + 10 credited off chain); the rich payer's
    // escrow would cover it, but it is not poor's.
    store.credit('poor', 10n * T, 'off-chain credit');
    store.appendBatch([{ ...record(8, 'poor'), pricing: { ...record(8, 'poor').pricing!, priceMicros: 5n * T } }]);
    const rich = await chain.contracts.escrowOf(payer.me);
    const held = await chain.contracts.tokenBalance(settlement);
    const r = await s.tick({ close: true });
    expect(r.closed?.records).toBe(1);
    expect(r.held).toMatchObject([{ step: 'anchor', reason: 'Overdrawn' }]);
    expect(r.held[0]!.message).toMatch(/poor owes 5000000000000000000 but its addresses hold 1000000000000000000/);
    expect(await chain.contracts.escrowOf(payer.me)).toBe(rich);
    expect(await chain.contracts.escrowOf(poor.me)).toBe(1n * T);
    expect(await chain.contracts.tokenBalance(settlement)).toBe(held);
    // poor deposits what it owes; the operator says go: the cycle is paid from poor's escrow alone
    await poor.deposit(4n * T);
    await mine(2);
    s.retryHeld();
    const after = await s.tick();
    expect(after.held).toEqual([]);
    expect(after.anchored.map((a) => a.status)).toEqual(['anchored']);
    expect(await chain.contracts.escrowOf(poor.me)).toBe(0n);
    expect(await chain.contracts.escrowOf(payer.me)).toBe(rich);
  });
});
