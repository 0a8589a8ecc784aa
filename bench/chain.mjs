#!/usr/bin/env node
/**
 * Chain gas report: starts an embedded anvil, deploys the CGN contracts and measures the gas of an
 * anchor (a 1,000,000-record cycle has ceil(1e6 / 4096) = 245 batch roots at the ledger's default
 * batch size), a claim, a 5-cycle claim, a claim relayed for a beneficiary without gas (claimFor,
 * claimManyFor), a deposit and a slash, then the on-chain cost per
 * microtransaction of a 1,000,000-record cycle. Prints a table and merges the numbers into
 * bench/results.json under "chain" (other keys are kept).
 *
 * Run: npx tsc -b packages/chain && node bench/chain.mjs
 * Env: BENCH_CHAIN_BENEFICIARIES (payout-tree size, default 1024), BENCH_GAS_PRICE_GWEI (default 1).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { ANVIL_KEYS, anchorClosedCycle, asAccount, startLocalChain } from '../packages/chain/dist/index.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const RECORDS = 1_000_000;
const BATCH_SIZE = 4096;
const BENEFICIARIES = Number(process.env.BENCH_CHAIN_BENEFICIARIES ?? 1024);
const GAS_PRICE_GWEI = Number(process.env.BENCH_GAS_PRICE_GWEI ?? 1);
const T = 10n ** 18n;
const hex32 = () => `0x${randomBytes(32).toString('hex')}`;
const randomAddress = () => `0x${randomBytes(20).toString('hex')}`;

async function main() {
  const chain = await startLocalChain({ unbondingDelaySeconds: 60 });
  try {
    const op = chain.contracts;
    const claimers = await Promise.all([1, 2, 3].map((i) => asAccount(chain, ANVIL_KEYS[i])));
    const relayer = await asAccount(chain, ANVIL_KEYS[6]);
    // beneficiaries without ETH, paid through relayed claims (claimFor, claimManyFor)
    const gasless = [randomAddress(), randomAddress()];
    const payer = await asAccount(chain, ANVIL_KEYS[4]);
    const staker = await asAccount(chain, ANVIL_KEYS[5]);
    await op.mint(payer.me, 1_000_000n * T);
    await op.mint(staker.me, 100n * T);

    // deposits: the first one of an account (fresh storage) and a later one
    const firstDeposit = await payer.deposit(100_000n * T);
    const laterDeposit = await payer.deposit(100_000n * T);

    // a payout tree the size of a cycle's beneficiaries, with our claimers in it
    const leaves = [...claimers.map((c) => [c.me, (7n * T).toString()]), ...gasless.map((a) => [a, (7n * T).toString()])];
    while (leaves.length < BENEFICIARIES) leaves.push([randomAddress(), '1000']);
    const tree = StandardMerkleTree.of(leaves, ['address', 'uint256']);
    const total = leaves.reduce((s, [, v]) => s + BigInt(v), 0n);
    const proofOf = (i) => tree.getProof(i);
    const batches = Math.ceil(RECORDS / BATCH_SIZE);

    const anchors = [];
    for (let id = 1; id <= 6; id++) {
      const out = await anchorClosedCycle(op, { cycleId: id, payoutRoot: tree.root, batchRoots: Array.from({ length: batches }, hex32), total, debits: [{ address: payer.me, amount: total }] });
      anchors.push(out.tx.gasUsed);
    }
    const small = await anchorClosedCycle(op, { cycleId: 100, payoutRoot: tree.root, batchRoots: [hex32()], total, debits: [{ address: payer.me, amount: total }] });

    const claim = await claimers[0].claim({ cycleId: 1, amount: 7n * T, proof: proofOf(0) });
    const many = await claimers[1].claimMany([1, 2, 3, 4, 5].map((id) => ({ cycleId: id, amount: 7n * T, proof: proofOf(1) })));
    const claimFor = await relayer.claimFor(gasless[0], [{ cycleId: 1, amount: 7n * T, proof: proofOf(3) }]);
    const claimManyFor = await relayer.claimFor(gasless[1], [1, 2, 3, 4, 5].map((id) => ({ cycleId: id, amount: 7n * T, proof: proofOf(4) })));

    await staker.stake(50n * T);
    const slash = await op.slash(staker.me, hex32());

    const anchorGas = Number(anchors[anchors.length - 1]);
    const claimGas = Number(claim.gasUsed);
    const gweiToEth = (gas) => (gas * GAS_PRICE_GWEI) / 1e9;
    const result = {
      gas: {
        anchor: anchorGas,
        anchorBatchRoots: batches,
        anchorOneBatchRoot: Number(small.tx.gasUsed),
        claim: claimGas,
        claimProofLength: proofOf(0).length,
        claimMany5: Number(many.gasUsed),
        claimMany5PerCycle: Math.round(Number(many.gasUsed) / 5),
        claimFor: Number(claimFor.gasUsed),
        claimManyFor5: Number(claimManyFor.gasUsed),
        depositFirst: Number(firstDeposit.gasUsed),
        deposit: Number(laterDeposit.gasUsed),
        approve: Number(firstDeposit.approve?.gasUsed ?? 0n),
        slash: Number(slash.gasUsed),
      },
      cycle: {
        records: RECORDS,
        batchSize: BATCH_SIZE,
        beneficiaries: BENEFICIARIES,
        anchorGasPerRecord: anchorGas / RECORDS,
        anchorAndClaimsGasPerRecord: (anchorGas + BENEFICIARIES * claimGas) / RECORDS,
        gasPriceGwei: GAS_PRICE_GWEI,
        anchorCostEth: gweiToEth(anchorGas),
        costPerRecordEth: gweiToEth(anchorGas) / RECORDS,
        costPerRecordWithClaimsEth: gweiToEth(anchorGas + BENEFICIARIES * claimGas) / RECORDS,
      },
      evm: 'anvil (cancun bytecode, solc optimizer 200 runs)',
      at: new Date().toISOString(),
    };
    console.table(
      Object.entries(result.gas)
        .filter(([k]) => !/Length|BatchRoots/.test(k))
        .map(([op, gas]) => ({ op, gas })),
    );
    console.log(
      `cycle of ${RECORDS.toLocaleString('en')} records (${batches} batch roots, ${BENEFICIARIES} beneficiaries): ` +
        `anchor ${anchorGas} gas = ${result.cycle.anchorGasPerRecord} gas/record; ` +
        `with every beneficiary claiming: ${result.cycle.anchorAndClaimsGasPerRecord.toFixed(4)} gas/record ` +
        `(${result.cycle.costPerRecordWithClaimsEth.toExponential(3)} ETH/record at ${GAS_PRICE_GWEI} gwei)`,
    );
    const file = join(ROOT, 'bench/results.json');
    const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
    previous.chain = result;
    writeFileSync(file, `${JSON.stringify(previous, null, 2)}\n`);
    console.log(`wrote "chain" to ${file}`);
  } finally {
    await chain.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
