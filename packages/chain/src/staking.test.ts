import { keccak256, toBytes, type Address, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANVIL_KEYS, rpcCall } from './anvil.js';
import { revertReason, type CgnContracts } from './contracts.js';
import { asAccount, startLocalChain, type LocalChain } from './local.js';

const T = 10n ** 18n;
const DELAY = 3600;

async function reverts(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'expected a revert').not.toBeNull();
  return revertReason(err);
}

let chain: LocalChain;
let op: CgnContracts;
let minerA: CgnContracts;
let minerB: CgnContracts;
let slasher: CgnContracts;
let treasury: Address;

beforeAll(async () => {
  chain = await startLocalChain({ unbondingDelaySeconds: DELAY, minOpenTierStake: 10n * T, treasury: '0x000000000000000000000000000000000000dEaD' });
  treasury = '0x000000000000000000000000000000000000dEaD';
  op = chain.contracts;
  [minerA, minerB, slasher] = (await Promise.all([1, 2, 3].map((i) => asAccount(chain, ANVIL_KEYS[i]!)))) as [CgnContracts, CgnContracts, CgnContracts];
  for (const m of [minerA, minerB]) await op.mint(m.me, 1_000n * T);
});

afterAll(async () => {
  await chain?.stop();
});

const evidence = (s: string): Hex => keccak256(toBytes(s));

describe('staking', () => {
  it('stakes to join the open tier', async () => {
    expect(await op.isOpenTierEligible(minerA.me)).toBe(false);
    await minerA.stake(5n * T);
    expect(await op.isOpenTierEligible(minerA.me)).toBe(false);
    await minerA.stake(15n * T);
    expect(await op.isOpenTierEligible(minerA.me)).toBe(true);
    expect((await op.balances(minerA.me)).stake).toBe(20n * T);
  });

  it('unbonds over a delay and refuses withdrawal during unbonding', async () => {
    await minerA.requestUnbond(20n * T);
    const b = await op.balances(minerA.me);
    expect(b).toMatchObject({ stake: 0n, unbonding: 20n * T, openTierEligible: false });
    expect(b.unbondingReleaseAt).toBeGreaterThan(0n);
    expect(await reverts(minerA.withdrawUnbonded())).toBe('StillUnbonding');
    expect(await reverts(minerA.requestUnbond(1n))).toBe('InsufficientStake');
    await rpcCall(chain.rpcUrl, 'evm_increaseTime', [DELAY - 60]);
    await rpcCall(chain.rpcUrl, 'evm_mine');
    expect(await reverts(minerA.withdrawUnbonded())).toBe('StillUnbonding');
    await rpcCall(chain.rpcUrl, 'evm_increaseTime', [120]);
    await rpcCall(chain.rpcUrl, 'evm_mine');
    const before = await op.tokenBalance(minerA.me);
    await minerA.withdrawUnbonded();
    expect(await op.tokenBalance(minerA.me)).toBe(before + 20n * T);
    expect(await reverts(minerA.withdrawUnbonded())).toBe('NothingUnbonding');
    const kinds = (await op.history(minerA.me)).map((e) => e.kind);
    expect(kinds).toEqual(['stake', 'stake', 'unbond-request', 'unbonded']);
  });

  it('refuses a slash without the SLASHER role', async () => {
    await minerB.stake(50n * T);
    expect(await reverts(slasher.slash(minerB.me, evidence('e1')))).toBe('AccessControlUnauthorizedAccount');
    expect((await op.balances(minerB.me)).stake).toBe(50n * T);
  });

  it('slashes the whole stake, unbonding included, with the evidence hash, and bans from the open tier', async () => {
    const { ROLES } = await import('./deploy.js');
    const { stakingAbi } = await import('./generated/index.js');
    const w = op.clients.wallet!;
    const hash = await w.writeContract({ address: op.addresses.staking, abi: stakingAbi, functionName: 'grantRole', args: [ROLES.slasher, slasher.me] });
    await op.clients.public.waitForTransactionReceipt({ hash });

    await minerB.requestUnbond(20n * T);
    const tBefore = await op.tokenBalance(treasury);
    const tx = await slasher.slash(minerB.me, evidence('mismatch work-1 confirmed by miner-3'));
    expect(tx.gasUsed).toBeGreaterThan(0n);
    expect(await op.tokenBalance(treasury)).toBe(tBefore + 50n * T);
    expect(await op.balances(minerB.me)).toMatchObject({ stake: 0n, unbonding: 0n, banned: true, openTierEligible: false });
    const h = await op.history(minerB.me);
    expect(h.at(-1)).toMatchObject({ kind: 'slash', amount: 50n * T, evidenceHash: evidence('mismatch work-1 confirmed by miner-3') });
    expect(await reverts(slasher.slash(minerB.me, evidence('mismatch work-1 confirmed by miner-3')))).toBe('EvidenceUsed');
    expect(await reverts(minerB.stake(10n * T))).toBe('BannedStaker');
  });
});
