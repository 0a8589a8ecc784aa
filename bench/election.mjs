#!/usr/bin/env node
/**
 * Validator election gas: starts an embedded anvil, deploys the CGN contracts, registers N
 * candidates (stake + register), and measures setServiceLevel (first write and a change) and
 * electEpoch for N = 8, 32 and 128 candidates with 4 and 21 seats. electEpoch reads every
 * candidate's stake and ban status and draws seats one by one, so its gas grows with
 * candidates x seats; MAX_CANDIDATES (256) keeps it under a block's gas limit. Merges the numbers
 * into bench/results.json under "election" (other keys are kept).
 *
 * Run: npx tsc -b packages/chain && node bench/election.mjs
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keccak256, toHex } from 'viem';
import { generatePrivateKey } from 'viem/accounts';
import { asAccount, rpcCall, startLocalChain, validatorElectionAbi } from '../packages/chain/dist/index.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const T = 10n ** 18n;

async function main() {
  const chain = await startLocalChain({ validatorCount: 4 });
  try {
    const op = chain.contracts;
    const setCount = async (n) => {
      const w = op.clients.wallet;
      const hash = await w.writeContract({ address: chain.addresses.election, abi: validatorElectionAbi, functionName: 'setValidatorCount', args: [n] });
      await op.clients.public.waitForTransactionReceipt({ hash });
    };
    const cands = [];
    const rows = [];
    let firstLevel = 0n;
    let changeLevel = 0n;
    let epoch = 1n;
    for (const n of [8, 32, 128]) {
      while (cands.length < n) {
        const c = await asAccount(chain, generatePrivateKey());
        await rpcCall(chain.rpcUrl, 'anvil_setBalance', [c.me, toHex(10n ** 20n)]);
        const stake = BigInt(1 + (cands.length % 50)) * T;
        await op.mint(c.me, stake);
        await c.stake(stake);
        await c.registerCandidate();
        const first = await op.setServiceLevel(c.me, 5000);
        firstLevel = first.gasUsed;
        changeLevel = (await op.setServiceLevel(c.me, 5000 + (cands.length % 5000))).gasUsed;
        cands.push(c);
      }
      for (const seats of [4, 21]) {
        await setCount(seats);
        const tx = await op.electEpoch(epoch, keccak256(toHex(`bench epoch ${epoch}`)));
        rows.push({ candidates: n, seats, electEpochGas: Number(tx.gasUsed) });
        epoch++;
      }
    }
    const result = {
      gas: { setServiceLevelFirst: Number(firstLevel), setServiceLevelChange: Number(changeLevel) },
      electEpoch: rows,
      evm: 'anvil (cancun bytecode, solc optimizer 200 runs)',
      at: new Date().toISOString(),
    };
    console.table([{ op: 'setServiceLevel (first)', gas: result.gas.setServiceLevelFirst }, { op: 'setServiceLevel (change)', gas: result.gas.setServiceLevelChange }]);
    console.table(rows);
    const file = join(ROOT, 'bench/results.json');
    const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
    previous.election = result;
    writeFileSync(file, `${JSON.stringify(previous, null, 2)}\n`);
    console.log(`wrote "election" to ${file}`);
  } finally {
    await chain.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
