import { createPublicClient, createWalletClient, custom, http, keccak256, toHex, type Address, type EIP1193RequestFn } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANVIL_KEYS, rpcCall } from './anvil.js';
import type { CgnPublicClient, CgnWalletClient, ChainClients } from './clients.js';
import { CgnContracts } from './contracts.js';
import { EpochScheduler, epochSeed, MissingRoleError, type EpochOutcome, type EpochSchedulerOptions } from './epochs.js';
import { validatorElectionAbi } from './generated/index.js';
import { asAccount, startLocalChain, type LocalChain } from './local.js';
import { referenceDraw, weightedPool } from './test-fixtures/draw.js';
import { validatorSetOf } from './validator-set.js';

const T = 10n ** 18n;
const EPOCH_BLOCKS = 20n;

let chain: LocalChain;
let op: CgnContracts;
let cands: CgnContracts[];
let origin: bigint;
/** What the "ledger" says, by candidate index; a missing index has no service. */
let levels: Map<number, number>;
const stakes = [10n, 40n, 100n, 200n, 5n];

const source = () => new Map([...levels].map(([i, bps]) => [cands[i]!.me.toLowerCase(), bps]));
const opts = (over: Partial<EpochSchedulerOptions> = {}): EpochSchedulerOptions => ({
  contracts: op,
  clock: { unit: 'blocks', length: EPOCH_BLOCKS, origin },
  serviceLevels: source,
  backoffMs: 10,
  ...over,
});
const block = () => op.clients.public.getBlockNumber({ cacheTime: 0 });
/** Mines up to the first block of `epoch`. */
async function toEpoch(epoch: bigint): Promise<void> {
  const target = origin + (epoch - 1n) * EPOCH_BLOCKS;
  const now = await block();
  if (target > now) await rpcCall(chain.rpcUrl, 'anvil_mine', [toHex(target - now)]);
}
const levelOf = (a: Address) => op.clients.public.readContract({ address: op.addresses.election, abi: validatorElectionAbi, functionName: 'serviceLevelOf', args: [a] });
const sorted = (xs: readonly Address[]) => [...xs].sort();

beforeAll(async () => {
  chain = await startLocalChain({ validatorCount: 2, minCandidateStake: 5n * T });
  op = chain.contracts;
  cands = await Promise.all(stakes.map((_, i) => asAccount(chain, ANVIL_KEYS[i + 1]!)));
  for (const [i, c] of cands.entries()) {
    await op.mint(c.me, stakes[i]! * T);
    await c.stake(stakes[i]! * T);
    await c.registerCandidate();
  }
  // The biggest staker cheated: slashed and banned; the ledger still likes it.
  await op.slash(cands[3]!.me, keccak256(toHex('mismatched redundant result')));
  origin = await block();
});

afterAll(async () => {
  await chain?.stop();
});

describe('epoch scheduler', () => {
  it('pushes the service levels, elects by stake x level from a block-hash seed, and the set is readable', async () => {
    // weights: c0 10 x 10000, c1 40 x 5000, c2 no service, c3 banned, c4 5 x 1 (almost nothing)
    levels = new Map([[0, 10_000], [1, 5000], [3, 10_000], [4, 1]]);
    const s = new EpochScheduler(opts());
    expect(await s.currentEpoch()).toBe(1n);
    const out = await s.runOnce();
    if (out.status !== 'elected') throw new Error(`expected an election, got ${out.status}`);
    expect(out.epoch).toBe(1n);
    expect(out.levels.map((l) => [l.candidate, l.from, l.to])).toEqual([
      [cands[0]!.me, 0, 10_000],
      [cands[1]!.me, 0, 5000],
      [cands[4]!.me, 0, 1],
    ]);
    expect(await levelOf(cands[3]!.me)).toBe(0); // banned: never written up
    const originBlock = await op.clients.public.getBlock({ blockNumber: origin });
    expect(out.seed).toBe(epochSeed(originBlock.hash, 1n));
    expect(out.seedBlock).toBe(origin);
    // The heavy pair wins (c4's chance to be drawn is ~3e-5), exactly as the contract's draw says.
    expect(sorted(out.validators)).toEqual(sorted([cands[0]!.me, cands[1]!.me]));
    expect(referenceDraw(await weightedPool(op), 2, 1n, out.seed)).toEqual([...out.validators]);
    expect(await op.validatorsOf(1)).toEqual(out.validators);

    const set = await validatorSetOf(op.clients.public, op.addresses.election, 1n);
    expect(set).toMatchObject({ epoch: 1n, elected: true, seed: out.seed, validators: out.validators });
    for (let round = 0n; round < 8n; round++) {
      const onChain = await op.clients.public.readContract({ address: op.addresses.election, abi: validatorElectionAbi, functionName: 'proposerOf', args: [1n, round] });
      expect(set.proposer(round)).toBe(onChain);
    }
    expect((await validatorSetOf(op.clients.public, op.addresses.election)).epoch).toBe(1n); // latest
    expect(await validatorSetOf(op.clients.public, op.addresses.election, 99n)).toMatchObject({ elected: false, validators: [] });
    console.info(`gas: setServiceLevel ${out.levels.map((l) => l.gasUsed).join(', ')}; electEpoch (5 candidates, 2 drawn) ${out.electGas}`);
  });

  it('is idempotent: a restarted scheduler sends nothing for an elected epoch, and finishes one cut short after the levels', async () => {
    const before = await block();
    const again = await new EpochScheduler(opts()).runOnce();
    expect(again).toEqual({ status: 'already-elected', epoch: 1n, validators: await op.validatorsOf(1) });
    expect(await block()).toBe(before);

    // Epoch 2: the ledger changed its mind (c1 stopped serving, c4 serves well).
    await toEpoch(2n);
    levels = new Map([[0, 9000], [4, 10_000]]);
    const crashed = new EpochScheduler(opts());
    const pushed = await crashed.pushServiceLevels(2n); // ... and the process dies here
    expect(pushed.map((l) => [l.candidate, l.to])).toEqual([[cands[0]!.me, 9000], [cands[1]!.me, 0], [cands[4]!.me, 10_000]]);
    const restarted = await new EpochScheduler(opts()).runOnce();
    if (restarted.status !== 'elected') throw new Error(`expected an election, got ${restarted.status}`);
    expect(restarted.levels).toEqual([]); // already on chain: not written twice
    expect(sorted(restarted.validators)).toEqual(sorted([cands[0]!.me, cands[4]!.me])); // the only two with weight
  });

  it('lets only one of two racing electors elect an epoch', async () => {
    await toEpoch(3n);
    const outs = await Promise.all([new EpochScheduler(opts()).runOnce(), new EpochScheduler(opts()).runOnce()]);
    expect(outs.map((o) => o.status).sort()).toEqual(['already-elected', 'elected']);
    expect(outs[0]!.epoch).toBe(3n);
    const elected = outs.find((o) => o.status === 'elected') as Extract<EpochOutcome, { status: 'elected' }>;
    expect(await op.validatorsOf(3)).toEqual(elected.validators);
  });

  it('retries through lost RPC answers without writing twice', async () => {
    // Every third request reaches anvil but its answer is lost (as when a connection drops).
    const inner = http(chain.rpcUrl)({ chain: op.clients.chain, retryCount: 0 });
    let n = 0;
    let lost = 0;
    let lostTx = 0;
    const flaky: EIP1193RequestFn = async (args) => {
      const result = await inner.request(args as never);
      if (++n % 3 === 0) {
        lost++;
        if (args.method === 'eth_sendRawTransaction') lostTx++;
        throw new Error(`connection reset (lost answer to ${args.method})`);
      }
      return result as never;
    };
    const transport = custom({ request: flaky }, { retryCount: 0 });
    const account = privateKeyToAccount(ANVIL_KEYS[0]);
    const clients: ChainClients = {
      rpcUrl: chain.rpcUrl,
      chain: op.clients.chain,
      public: createPublicClient({ chain: op.clients.chain, transport, pollingInterval: 50 }) as CgnPublicClient,
      wallet: createWalletClient({ account, chain: op.clients.chain, transport, pollingInterval: 50 }) as CgnWalletClient,
      account,
    };
    await toEpoch(4n);
    levels = new Map([[0, 4000], [1, 3000], [4, 2000]]);
    const retries: string[] = [];
    const s = new EpochScheduler(opts({ contracts: new CgnContracts(clients, op.addresses), attempts: 8, onRetry: (_e, _a, step) => void retries.push(step) }));
    const out = await s.runOnce();
    expect(lost).toBeGreaterThan(0);
    expect(lostTx).toBeGreaterThan(0); // a transaction landed but its sender never heard
    expect(retries.length).toBeGreaterThan(0);
    expect(['elected', 'already-elected']).toContain(out.status); // a lost answer to electEpoch reads back as already elected
    expect(out.epoch).toBe(4n);
    expect(await op.validatorsOf(4)).toHaveLength(2);
    for (const [i, bps] of levels) expect(await levelOf(cands[i]!.me)).toBe(bps);
    // One ServiceLevelSet per change, one EpochElected: nothing written twice.
    const logs = await op.clients.public.getContractEvents({ address: op.addresses.election, abi: validatorElectionAbi, fromBlock: origin + 3n * EPOCH_BLOCKS, eventName: 'ServiceLevelSet' });
    expect(logs).toHaveLength(3);
    const elections = await op.clients.public.getContractEvents({ address: op.addresses.election, abi: validatorElectionAbi, fromBlock: origin + 3n * EPOCH_BLOCKS, eventName: 'EpochElected' });
    expect(elections.map((e) => e.args.epoch)).toEqual([4n]);
  });

  it('counts epochs in seconds of the host clock when asked, seeding from the newest block', async () => {
    levels = new Map([[0, 10_000], [1, 10_000]]);
    const origin = Math.floor(Date.now() / 1000) - 995; // 99.5 epochs of 10 s ago
    const s = new EpochScheduler(opts({ clock: { unit: 'seconds', length: 10, origin } }));
    expect(await s.currentEpoch()).toBe(100n);
    const head = await op.clients.public.getBlock({ blockTag: 'latest' });
    const out = await s.runOnce();
    if (out.status !== 'elected') throw new Error(`expected an election, got ${out.status}`);
    expect(out.epoch).toBe(100n);
    expect(out.seedBlock).toBeGreaterThanOrEqual(head.number);
    const seedBlock = await op.clients.public.getBlock({ blockNumber: out.seedBlock });
    expect(out.seed).toBe(epochSeed(seedBlock.hash, 100n));
    expect(() => new EpochScheduler(opts({ clock: { unit: 'seconds', length: 0 } }))).toThrow(/epoch length must be positive/);
  });

  it('refuses to start without the oracle and elector roles, naming the fix', async () => {
    const s = new EpochScheduler(opts({ contracts: cands[0]! }));
    await toEpoch(5n);
    const err = await s.runOnce().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingRoleError);
    expect((err as Error).message).toMatch(/lacks ORACLE_ROLE .*grantRole/);
  });

  it('reports an epoch with no eligible candidate instead of failing, and the loop elects each new epoch once', async () => {
    levels = new Map();
    const out = await new EpochScheduler(opts()).runOnce();
    expect(out.status).toBe('no-candidates');
    expect(out.epoch).toBe(5n);

    levels = new Map([[0, 10_000], [1, 10_000]]);
    await toEpoch(6n);
    const seen: EpochOutcome[] = [];
    const errors: unknown[] = [];
    const s = new EpochScheduler(opts({ pollMs: 20, onEpoch: (o) => void seen.push(o), onError: (e) => void errors.push(e) }));
    s.start();
    const until = async (pred: () => boolean) => {
      const deadline = Date.now() + 20_000;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(() => seen.length >= 1);
    await toEpoch(7n);
    await until(() => seen.length >= 2);
    await s.stop();
    expect(errors).toEqual([]);
    expect(seen.map((o) => [o.status, o.epoch])).toEqual([['elected', 6n], ['elected', 7n]]);
  });
});
