import { keccak256, toHex, type Address, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANVIL_KEYS } from './anvil.js';
import { revertReason, type CgnContracts } from './contracts.js';
import { validatorElectionAbi } from './generated/index.js';
import { asAccount, startLocalChain, type LocalChain } from './local.js';
import { referenceDraw, weightedPool } from './test-fixtures/draw.js';

const T = 10n ** 18n;

let chain: LocalChain;
let op: CgnContracts;
let cands: CgnContracts[];
/** stake (tokens) and service level (bps) per candidate; the last one is banned. */
const setup: [bigint, number][] = [
  [10n, 10_000],
  [20n, 10_000],
  [40n, 10_000],
  [80n, 5_000],
  [500n, 0],
  [300n, 9_000],
];

beforeAll(async () => {
  chain = await startLocalChain({ validatorCount: 2, minCandidateStake: 5n * T });
  op = chain.contracts;
  cands = await Promise.all(setup.map((_, i) => asAccount(chain, ANVIL_KEYS[i + 1]!)));
  for (const [i, c] of cands.entries()) {
    const [stake, bps] = setup[i]!;
    await op.mint(c.me, stake * T);
    await c.stake(stake * T);
    await c.registerCandidate();
    await op.setServiceLevel(c.me, bps);
  }
  await op.slash(cands[5]!.me, keccak256(toHex('wrong work by the biggest candidate')));
});

afterAll(async () => {
  await chain?.stop();
});

async function dryElect(epoch: bigint, seed: Hex): Promise<readonly Address[]> {
  const { result } = await op.clients.public.simulateContract({
    address: op.addresses.election,
    abi: validatorElectionAbi,
    functionName: 'electEpoch',
    args: [epoch, seed],
    account: op.clients.account!,
  });
  return result;
}

describe('validator election', () => {
  it('refuses registration without enough stake, twice, or after a ban', async () => {
    expect(revertReason(await op.registerCandidate().catch((e: unknown) => e))).toBe('InsufficientStake');
    expect(revertReason(await cands[0]!.registerCandidate().catch((e: unknown) => e))).toBe('AlreadyCandidate');
    expect(revertReason(await cands[0]!.setServiceLevel(cands[0]!.me, 1).catch((e: unknown) => e))).toBe('AccessControlUnauthorizedAccount');
    expect(revertReason(await op.setServiceLevel(cands[0]!.me, 10_001).catch((e: unknown) => e))).toBe('InvalidServiceLevel');
  });

  it('draws the set of an epoch deterministically from the seed, once', async () => {
    const seed = keccak256(toHex('epoch 1 beacon'));
    const dry = await dryElect(1n, seed);
    await op.electEpoch(1, seed);
    const set = await op.validatorsOf(1);
    expect(set).toEqual(dry);
    expect(set).toHaveLength(2);
    const weighted = await weightedPool(op);
    expect(referenceDraw(weighted, 2, 1n, seed)).toEqual([...set]);
    expect(revertReason(await op.electEpoch(1, seed).catch((e: unknown) => e))).toBe('AlreadyElected');
    const proposer = await op.clients.public.readContract({ address: op.addresses.election, abi: validatorElectionAbi, functionName: 'proposerOf', args: [1n, 7n] });
    expect(set).toContain(proposer);
  });

  it('never elects a candidate with service level 0 or a banned one, and favours weight in aggregate', async () => {
    const counts = new Map<string, number>();
    const N = 300;
    for (let i = 0; i < N; i++) {
      const seed = keccak256(toHex(`seed-${i}`));
      for (const a of await dryElect(BigInt(1000 + i), seed)) counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    const n = (i: number) => counts.get(cands[i]!.me) ?? 0;
    expect(n(4)).toBe(0); // service level 0
    expect(n(5)).toBe(0); // banned (slashed)
    // weights 10, 20, 40, 40 (80 x 0.5): heavier gets elected at least as often
    expect(n(0)).toBeLessThanOrEqual(n(1));
    expect(n(1)).toBeLessThanOrEqual(n(2));
    expect(n(1)).toBeLessThanOrEqual(n(3));
    expect(n(0)).toBeGreaterThan(0);
    expect(n(0) + n(1) + n(2) + n(3)).toBe(2 * N);
  });
});
