import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import type { Address, Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorClosedCycle } from './anchor.js';
import { ANVIL_KEYS } from './anvil.js';
import { revertReason, type CgnContracts } from './contracts.js';
import { asAccount, startLocalChain, type LocalChain } from './local.js';
import { requireWallet } from './clients.js';
import { settlementAbi } from './generated/index.js';

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
  const tree = StandardMerkleTree.of(entries.map(([a, v]) => [a, v.toString()]), ['address', 'uint256']);
  const proofOf = (a: Address): Hex[] => {
    for (const [i, v] of tree.entries()) if ((v[0] as string).toLowerCase() === a.toLowerCase()) return tree.getProof(i) as Hex[];
    throw new Error(`${a} not in tree`);
  };
  return { root: tree.root as Hex, proofOf };
}

let chain: LocalChain;
let op: CgnContracts;
let relayer: CgnContracts;
/** A fresh address: no ETH, no tokens, no transaction ever sent. */
const poor = privateKeyToAccount(`0x${'5a'.repeat(32)}`).address;
const other = privateKeyToAccount(`0x${'6b'.repeat(32)}`).address;
const tree = payoutTree([
  [poor, 1_000n * T],
  [other, 333n],
]);
const gas: Record<string, bigint> = {};

beforeAll(async () => {
  chain = await startLocalChain({});
  op = chain.contracts;
  relayer = await asAccount(chain, ANVIL_KEYS[3]);
  await op.mint(op.me, 10_000n * T);
  await op.deposit(10_000n * T);
  for (const id of [1, 2, 3]) {
    await anchorClosedCycle(op, { cycleId: id, payoutRoot: tree.root, batchRoots: [], total: 1_000n * T + 333n, debits: [{ address: op.me, amount: 1_000n * T + 333n }] });
  }
});

afterAll(async () => {
  await chain?.stop();
});

describe('claims submitted on a beneficiary’s behalf', () => {
  it('pays the beneficiary, not the sender, and the beneficiary needs no ETH', async () => {
    expect(await op.ethBalance(poor)).toBe(0n);
    const before = await relayer.tokenBalance(relayer.me);
    const tx = await relayer.claimFor(poor, [{ cycleId: 1, amount: 1_000n * T, proof: tree.proofOf(poor) }]);
    gas.claimFor = tx.gasUsed;
    expect(await op.tokenBalance(poor)).toBe(1_000n * T);
    expect(await relayer.tokenBalance(relayer.me)).toBe(before);
    expect(await op.isClaimed(1, poor)).toBe(true);
    expect(await op.ethBalance(poor)).toBe(0n);
    // the history of the beneficiary shows the claim as its own
    expect((await op.history(poor)).filter((e) => e.kind === 'claim')).toMatchObject([{ cycleId: 1n, amount: 1_000n * T }]);
  });

  it('refuses a double claim, whoever sends it', async () => {
    expect(await reverts(relayer.claimFor(poor, [{ cycleId: 1, amount: 1_000n * T, proof: tree.proofOf(poor) }]))).toBe('AlreadyClaimed');
    expect(await reverts(op.claimFor(poor, [{ cycleId: 1, amount: 1_000n * T, proof: tree.proofOf(poor) }]))).toBe('AlreadyClaimed');
  });

  it('refuses a wrong proof, a wrong amount, a leaf of another address, and the zero address', async () => {
    expect(await reverts(relayer.claimFor(poor, [{ cycleId: 2, amount: 1_000n * T, proof: tree.proofOf(other) }]))).toBe('InvalidProof');
    expect(await reverts(relayer.claimFor(poor, [{ cycleId: 2, amount: 1_000n * T + 1n, proof: tree.proofOf(poor) }]))).toBe('InvalidProof');
    // other's leaf claimed as if it were poor's: the leaf is built from the beneficiary's address
    expect(await reverts(relayer.claimFor(poor, [{ cycleId: 2, amount: 333n, proof: tree.proofOf(other) }]))).toBe('InvalidProof');
    expect(await reverts(relayer.claimFor('0x0000000000000000000000000000000000000000', [{ cycleId: 2, amount: 333n, proof: tree.proofOf(other) }]))).toBe('ZeroAddress');
    expect(await reverts(relayer.claimFor(poor, [{ cycleId: 9, amount: 1_000n * T, proof: tree.proofOf(poor) }]))).toBe('NotAnchored');
    expect(await op.isClaimed(2, poor)).toBe(false);
  });

  it('takes a relayer fee up to the cap, and refuses more', async () => {
    expect(await op.maxRelayerFeeBps()).toBe(100);
    // A stranger may relay, never skim: a fee is only for the settlement operator (ANCHOR_ROLE).
    expect(await reverts(relayer.claimFor(poor, [{ cycleId: 2, amount: 1_000n * T, proof: tree.proofOf(poor) }], 1))).toBe('FeeNotAllowed');
    const role = await op.clients.public.readContract({ address: op.addresses.settlement, abi: settlementAbi, functionName: 'ANCHOR_ROLE' });
    const w = requireWallet(op.clients);
    await op.clients.public.waitForTransactionReceipt({ hash: await w.writeContract({ address: op.addresses.settlement, abi: settlementAbi, functionName: 'grantRole', args: [role, relayer.me] }) });
    expect(await reverts(relayer.claimFor(poor, [{ cycleId: 2, amount: 1_000n * T, proof: tree.proofOf(poor) }], 101))).toBe('FeeTooHigh');
    const [b, r] = [await op.tokenBalance(poor), await relayer.tokenBalance(relayer.me)];
    await relayer.claimFor(poor, [{ cycleId: 2, amount: 1_000n * T, proof: tree.proofOf(poor) }], 100);
    expect(await op.tokenBalance(poor)).toBe(b + 990n * T);
    expect(await relayer.tokenBalance(relayer.me)).toBe(r + 10n * T);
    // a fee rounds down: 333 base units at 1% is 3
    const r2 = await relayer.tokenBalance(relayer.me);
    await relayer.claimFor(other, [{ cycleId: 2, amount: 333n, proof: tree.proofOf(other) }], 100);
    expect(await op.tokenBalance(other)).toBe(330n);
    expect(await relayer.tokenBalance(relayer.me)).toBe(r2 + 3n);
  });

  it('claims several cycles of one beneficiary in one transaction (claimManyFor)', async () => {
    const b = await op.tokenBalance(other);
    const claims = [1, 3].map((id) => ({ cycleId: id, amount: 333n, proof: tree.proofOf(other) }));
    const tx = await relayer.claimFor(other, claims);
    gas.claimManyFor2 = tx.gasUsed;
    expect(await op.tokenBalance(other)).toBe(b + 666n);
    expect(await reverts(relayer.claimFor(other, claims))).toBe('AlreadyClaimed');
    expect(await reverts(relayer.claimFor(poor, []))).toBe('LengthMismatch');
  });

  it('costs about as much gas as a claim by the beneficiary itself', async () => {
    const self = await asAccount(chain, ANVIL_KEYS[4]);
    const t = payoutTree([
      [self.me, 5n * T],
      [poor, 5n * T],
    ]);
    await anchorClosedCycle(op, { cycleId: 10, payoutRoot: t.root, batchRoots: [], total: 10n * T, debits: [{ address: op.me, amount: 10n * T }] });
    gas.claim = (await self.claim({ cycleId: 10, amount: 5n * T, proof: t.proofOf(self.me) })).gasUsed;
    gas.claimForHolder = (await relayer.claimFor(poor, [{ cycleId: 10, amount: 5n * T, proof: t.proofOf(poor) }])).gasUsed;
    process.stderr.write(`gas: ${JSON.stringify(gas, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}\n`);
    // claim and the first claimFor both pay an address that held no tokens before (a new balance
    // slot); claimFor adds the beneficiary argument and the ClaimRelayed event
    expect(gas.claimFor!).toBeLessThan(gas.claim! + 10_000n);
    expect(gas.claimForHolder!).toBeLessThan(gas.claimFor!);
  });

  it('stays solvent', async () => {
    const c = await op.cycleOf(2);
    expect(c?.claimed).toBe(1_000n * T + 333n);
  });
});
