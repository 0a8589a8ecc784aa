import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import type { Address, Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorArgs, anchorClosedCycle, AnchorConflictError, AnchorRefusedError, anchorPending, type ClosedCycle } from './anchor.js';
import { ANVIL_KEYS, rpcCall } from './anvil.js';
import { revertReason, type CgnContracts } from './contracts.js';
import { asAccount, startLocalChain, type LocalChain } from './local.js';

const T = 10n ** 18n;

async function reverts(p: Promise<unknown>): Promise<string | undefined> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'expected a revert').not.toBeNull();
  return revertReason(err);
}

function payoutTree(entries: [Address, bigint][]) {
  const tree = StandardMerkleTree.of(
    entries.map(([a, v]) => [a, v.toString()]),
    ['address', 'uint256'],
  );
  const proofOf = (a: Address): Hex[] => {
    for (const [i, v] of tree.entries()) if ((v[0] as string).toLowerCase() === a.toLowerCase()) return tree.getProof(i) as Hex[];
    throw new Error(`${a} not in tree`);
  };
  return { root: tree.root as Hex, proofOf };
}

let chain: LocalChain;
let op: CgnContracts;
let payer: CgnContracts;
let miner: CgnContracts;
let dev: CgnContracts;
let charity: CgnContracts;
let stranger: CgnContracts;

beforeAll(async () => {
  chain = await startLocalChain({});
  op = chain.contracts;
  [payer, miner, dev, charity, stranger] = await Promise.all([1, 2, 3, 4, 5].map((i) => asAccount(chain, ANVIL_KEYS[i]!))) as [
    CgnContracts,
    CgnContracts,
    CgnContracts,
    CgnContracts,
    CgnContracts,
  ];
  await op.mint(payer.me, 100_000n * T);
  await op.mint(stranger.me, 1_000n * T);
});

afterAll(async () => {
  await chain?.stop();
});

describe('embedded chain', () => {
  it('runs anvil whose dev accounts are the well-known keys', async () => {
    const accounts = (await rpcCall(chain.rpcUrl, 'eth_accounts')) as string[];
    expect(accounts.slice(0, 6).map((a) => a.toLowerCase())).toEqual([op, payer, miner, dev, charity, stranger].map((c) => c.me.toLowerCase()));
  });
});

describe('escrow deposits', () => {
  it('deposits tokens into escrow and records the deposit', async () => {
    const before = await payer.tokenBalance(payer.me);
    const tx = await payer.deposit(10_000n * T);
    expect(tx.approve).not.toBeNull();
    expect(await payer.escrowOf(payer.me)).toBe(10_000n * T);
    expect(await payer.tokenBalance(payer.me)).toBe(before - 10_000n * T);
    const h = await payer.history(payer.me);
    expect(h.map((e) => [e.kind, e.amount])).toEqual([['deposit', 10_000n * T]]);
  });

  it('deposits for another account', async () => {
    await payer.deposit(5n * T, stranger.me);
    expect(await op.escrowOf(stranger.me)).toBe(5n * T);
  });

  it('refuses a zero deposit', async () => {
    expect(await reverts(payer.deposit(0n))).toBe('ZeroAmount');
  });
});

describe('cycle anchoring and claims', () => {
  let tree1: ReturnType<typeof payoutTree>;
  const amounts = { miner: 600n * T + 7n, dev: 300n * T, charity: 100n * T - 7n };
  const total = amounts.miner + amounts.dev + amounts.charity;
  let cycle1: ClosedCycle;

  beforeAll(() => {
    tree1 = payoutTree([
      [miner.me, amounts.miner],
      [dev.me, amounts.dev],
      [charity.me, amounts.charity],
    ]);
    cycle1 = { cycleId: 1, payoutRoot: tree1.root, batchRoots: ['ab'.repeat(32), `0x${'cd'.repeat(32)}`], total, debits: [{ address: payer.me, amount: total }] };
  });

  it('refuses anchoring without the ANCHOR role', async () => {
    expect(await reverts(stranger.anchorCycle(1, tree1.root, [], total, [payer.me], [total]))).toBe('AccessControlUnauthorizedAccount');
  });

  it('refuses anchoring more than the payer holds', async () => {
    const err = await anchorClosedCycle(op, { ...cycle1, cycleId: 99, total: 1_000_000n * T, debits: [{ address: payer.me, amount: 1_000_000n * T }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnchorRefusedError);
    expect((err as AnchorRefusedError).reason).toBe('Overdrawn');
    expect(await op.cycleOf(99)).toBeNull();
  });

  it("refuses paying one account's debt out of another's escrow", async () => {
    // stranger holds 5 in escrow and owes 50; payer holds 10,000. The pooled escrow would cover
    // it; the contract looks at the payer named for each debit.
    expect(await reverts(op.anchorCycle(98, tree1.root, [], 50n * T, [stranger.me], [50n * T]))).toBe('Overdrawn');
    // Debits that do not add up to the total, a payer twice, or out of order: refused.
    expect(await reverts(op.anchorCycle(98, tree1.root, [], 50n * T, [payer.me], [49n * T]))).toBe('DebitsMismatch');
    const [lo, hi] = [payer.me, stranger.me].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)) as [Address, Address];
    expect(await reverts(op.anchorCycle(98, tree1.root, [], 2n, [hi, lo], [1n, 1n]))).toBe('PayersNotSorted');
    expect(await reverts(op.anchorCycle(98, tree1.root, [], 2n, [lo, lo], [1n, 1n]))).toBe('PayersNotSorted');
    expect(() => anchorArgs({ ...cycle1, debits: [{ address: payer.me, amount: 1n }] })).toThrow(/add up to the cycle total/);
    expect(await op.escrowOf(stranger.me)).toBe(5n * T);
    expect(await op.cycleOf(98)).toBeNull();
  });

  it('anchors a cycle once, in one transaction, debiting its payer, and is idempotent on retry', async () => {
    const escrow = await op.escrowOf(payer.me);
    const first = await anchorClosedCycle(op, cycle1);
    expect(first.status).toBe('anchored');
    expect(await op.escrowOf(payer.me)).toBe(escrow - total);
    const c = await op.cycleOf(1);
    expect(c).toMatchObject({ payoutRoot: tree1.root, total, claimed: 0n, batchCount: 2 });
    const again = await anchorClosedCycle(op, cycle1);
    expect(again.status).toBe('already-anchored');
    expect(await reverts(op.anchorCycle(1, tree1.root, [], total, [payer.me], [total]))).toBe('AlreadyAnchored');
    expect(await op.escrowOf(payer.me)).toBe(escrow - total);
    await expect(anchorClosedCycle(op, { ...cycle1, total: total - 1n, debits: [{ address: payer.me, amount: total - 1n }] })).rejects.toBeInstanceOf(AnchorConflictError);
  });

  it('lets each beneficiary claim its amount with its proof', async () => {
    const b = await miner.tokenBalance(miner.me);
    const tx = await miner.claim({ cycleId: 1, amount: amounts.miner, proof: tree1.proofOf(miner.me) });
    expect(tx.gasUsed).toBeGreaterThan(0n);
    expect(await miner.tokenBalance(miner.me)).toBe(b + amounts.miner);
    expect(await op.isClaimed(1, miner.me)).toBe(true);
    expect(await op.isClaimed(1, dev.me)).toBe(false);
    const h = await miner.history(miner.me);
    expect(h.filter((e) => e.kind === 'claim')).toMatchObject([{ cycleId: 1n, amount: amounts.miner }]);
  });

  it('refuses a double claim', async () => {
    expect(await reverts(miner.claim({ cycleId: 1, amount: amounts.miner, proof: tree1.proofOf(miner.me) }))).toBe('AlreadyClaimed');
  });

  it('refuses a wrong proof', async () => {
    expect(await reverts(dev.claim({ cycleId: 1, amount: amounts.dev, proof: tree1.proofOf(charity.me) }))).toBe('InvalidProof');
    expect(await reverts(dev.claim({ cycleId: 1, amount: amounts.dev, proof: [] }))).toBe('InvalidProof');
  });

  it('refuses a claim by someone else', async () => {
    expect(await reverts(stranger.claim({ cycleId: 1, amount: amounts.dev, proof: tree1.proofOf(dev.me) }))).toBe('InvalidProof');
    expect(await op.isClaimed(1, dev.me)).toBe(false);
  });

  it('refuses an over-claim (and an under-claim: the amount is exact)', async () => {
    expect(await reverts(dev.claim({ cycleId: 1, amount: amounts.dev + 1n, proof: tree1.proofOf(dev.me) }))).toBe('InvalidProof');
    expect(await reverts(dev.claim({ cycleId: 1, amount: amounts.dev - 1n, proof: tree1.proofOf(dev.me) }))).toBe('InvalidProof');
  });

  it('refuses claims on a cycle that is not anchored', async () => {
    expect(await reverts(dev.claim({ cycleId: 42, amount: amounts.dev, proof: tree1.proofOf(dev.me) }))).toBe('NotAnchored');
  });

  it('pays the remaining beneficiaries exactly the tree total', async () => {
    await dev.claim({ cycleId: 1, amount: amounts.dev, proof: tree1.proofOf(dev.me) });
    await charity.claim({ cycleId: 1, amount: amounts.charity, proof: tree1.proofOf(charity.me) });
    const c = await op.cycleOf(1);
    expect(c?.claimed).toBe(total);
  });

  it('claims several cycles in one transaction', async () => {
    const cycles: ClosedCycle[] = [];
    const trees: ReturnType<typeof payoutTree>[] = [];
    for (let id = 2; id <= 4; id++) {
      const t = payoutTree([
        [miner.me, BigInt(id) * T],
        [dev.me, 1n],
        [stranger.me, 2n],
      ]);
      trees.push(t);
      cycles.push({ cycleId: id, payoutRoot: t.root, batchRoots: [], total: BigInt(id) * T + 3n, debits: [{ address: payer.me, amount: BigInt(id) * T + 3n }] });
    }
    const res = await anchorPending(op, [...cycles].reverse());
    expect(res.failed).toBeUndefined();
    expect(res.done.map((d) => [d.cycleId, d.status])).toEqual([
      [2n, 'anchored'],
      [3n, 'anchored'],
      [4n, 'anchored'],
    ]);
    const claims = cycles.map((c, i) => ({ cycleId: c.cycleId, amount: BigInt(c.cycleId) * T, proof: trees[i]!.proofOf(miner.me) }));
    const b = await miner.tokenBalance(miner.me);
    await miner.claimMany(claims);
    expect(await miner.tokenBalance(miner.me)).toBe(b + 9n * T);
    for (const c of cycles) expect(await op.isClaimed(c.cycleId, miner.me)).toBe(true);
    expect(await reverts(miner.claimMany(claims.slice(1)))).toBe('AlreadyClaimed');
    // one bad entry refuses the whole batch
    const devClaims = claims.map((c, i) => ({ ...c, amount: 1n, proof: trees[i]!.proofOf(dev.me) }));
    expect(await reverts(dev.claimMany([...devClaims.slice(0, 2), { ...devClaims[2]!, amount: 2n }]))).toBe('InvalidProof');
    expect(await op.isClaimed(2, dev.me)).toBe(false);
    await dev.claimMany(devClaims);
    expect(await op.isClaimed(4, dev.me)).toBe(true);
  });

  it('anchors a cycle where nothing is owed', async () => {
    const r = await anchorClosedCycle(op, { cycleId: 5, payoutRoot: null, batchRoots: ['11'.repeat(32)], total: 0n, debits: [] });
    expect(r.status).toBe('anchored');
    expect(await op.cycleOf(5)).toMatchObject({ total: 0n, batchCount: 1 });
  });
});

describe('withdrawing unused escrow', () => {
  it('refuses a withdrawal before the operator posts the unused balance', async () => {
    expect(await reverts(payer.withdraw(1n))).toBe('ExceedsWithdrawable');
  });

  it('refuses posting for a cycle that is not closed, beyond the escrow, or by someone else', async () => {
    expect(await reverts(op.setWithdrawable(payer.me, 77, 1n))).toBe('NotAnchored');
    expect(await reverts(op.setWithdrawable(payer.me, 1, 10_001n * T))).toBe('ExceedsEscrow');
    expect(await reverts(stranger.setWithdrawable(stranger.me, 1, 1n))).toBe('AccessControlUnauthorizedAccount');
  });

  it('withdraws up to the posted unused balance after a cycle closes', async () => {
    // the payouts of cycles 1-4 left the payer's escrow when they were anchored: what is left is
    // all the operator may promise back, and it is then no longer there to pay a cycle
    const escrow = await op.escrowOf(payer.me);
    expect(escrow).toBe(10_000n * T - (1_000n * T) - (9n * T + 9n));
    expect(await reverts(op.setWithdrawable(payer.me, 4, escrow + 1n))).toBe('ExceedsEscrow');
    await op.setWithdrawable(payer.me, 4, escrow - 5n * T);
    expect(await reverts(op.anchorCycle(97, `0x${'77'.repeat(32)}`, [], 5n * T + 1n, [payer.me], [5n * T + 1n]))).toBe('Overdrawn');
    const b = await payer.tokenBalance(payer.me);
    await payer.withdraw(1_000n * T);
    expect(await payer.tokenBalance(payer.me)).toBe(b + 1_000n * T);
    expect(await payer.escrowOf(payer.me)).toBe(escrow - 1_000n * T);
    expect(await reverts(payer.withdraw(escrow))).toBe('ExceedsWithdrawable');
    expect(await reverts(op.setWithdrawable(payer.me, 3, 1n))).toBe('StaleCycle');
    const h = await payer.history(payer.me);
    expect(h.map((e) => e.kind)).toEqual(['deposit', 'withdrawal']);
  });

  it('grants withdrawals additively, once per account and anchored cycle', async () => {
    const escrow = await op.escrowOf(payer.me);
    const before = await op.withdrawableOf(payer.me);
    expect(await op.withdrawableCycleOf(payer.me)).toBe(4n);
    expect(await reverts(op.grantWithdrawable(payer.me, 4, 1n))).toBe('StaleCycle');
    expect(await reverts(op.grantWithdrawable(payer.me, 77, 1n))).toBe('NotAnchored');
    expect(await reverts(op.grantWithdrawable(payer.me, 5, escrow - before + 1n))).toBe('ExceedsEscrow');
    expect(await reverts(stranger.grantWithdrawable(stranger.me, 5, 1n))).toBe('AccessControlUnauthorizedAccount');
    const tx = await op.grantWithdrawable(payer.me, 5, 3n * T);
    expect(tx.gasUsed).toBeGreaterThan(0n);
    expect(await op.withdrawableOf(payer.me)).toBe(before + 3n * T);
    expect(await reverts(op.grantWithdrawable(payer.me, 5, 3n * T))).toBe('StaleCycle'); // a replay pays nothing
    await payer.withdraw(before + 3n * T);
    expect(await op.withdrawableOf(payer.me)).toBe(0n);
  });
});

describe('solvency', () => {
  it('holds every account’s escrow plus every unclaimed payout, after all of the above', async () => {
    const { settlementAbi } = await import('./generated/index.js');
    const read = (functionName: 'totalEscrow' | 'outstandingPayouts' | 'outstandingWithdrawable') =>
      op.clients.public.readContract({ address: op.addresses.settlement, abi: settlementAbi, functionName });
    const [escrow, payouts, promised] = await Promise.all([read('totalEscrow'), read('outstandingPayouts'), read('outstandingWithdrawable')]);
    const held = await op.tokenBalance(op.addresses.settlement);
    expect(held).toBe(escrow + payouts);
    expect(escrow).toBe((await Promise.all([payer, stranger].map((c) => op.escrowOf(c.me)))).reduce((a, b) => a + b, 0n));
    expect(promised).toBeLessThanOrEqual(escrow);
  });
});
