#!/usr/bin/env node
/**
 * Crash-test child (see crash.test.ts): appends microtransactions through the built @cgn/ledger
 * as fast as it can, from many concurrent producers, and prints each work id on stdout only
 * after its record() resolved — that line is the promise "this work is billed". It runs until
 * it is killed. Now and then it records an acknowledged work id again, which must not create a
 * second row.
 *
 * Usage: node crash-writer.mjs <ledger.sqlite> <normal|full> [producers]
 */
import { openLedger } from '@cgn/ledger';

const [path, durability = 'normal', producersArg = '64'] = process.argv.slice(2);
if (path === undefined) {
  console.error('usage: crash-writer.mjs <ledger.sqlite> <normal|full> [producers]');
  process.exit(2);
}
// Never outlive a test that lost track of us.
setTimeout(() => process.exit(3), 120_000).unref();

const { writer } = openLedger({ path, durability });
writer.start();
const boot = `${process.pid.toString(36)}_${Date.now().toString(36)}`;
let n = 0;
const acked = [];

function next() {
  const i = n++;
  return {
    workId: `w_${boot}_${i.toString(36)}`, account: `acct_${i % 13}`, endUser: i % 4 === 0 ? null : `u_${i % 101}`,
    dservice: 'echo', tier: 'open', miner: 'ab'.repeat(32), node: i % 3 === 0 ? 'node-b' : 'node-a',
    receivedAt: Date.now(), queueUs: i % 700, execUs: 500 + (i % 5000), cpuUs: 400 + (i % 4000),
    bytesIn: 100 + (i % 1000), bytesOut: 200 + (i % 2000), status: 200, resultHash: 'ef'.repeat(32), attempts: 1,
    // priced: the store fixes the cycle, tokens and split inside the same transaction
    pricing: { priceMicros: BigInt(100 + (i % 900)), split: { miner: 7000, developer: 2000, operator: 900, charity: 100 }, developer: 'dev', operator: 'op', charity: 'charity' },
  };
}

async function producer(p) {
  for (let k = 0; ; k++) {
    if (acked.length > 0 && k % 50 === p % 50) {
      // A retry of work already billed: must be ignored, not billed twice.
      const again = acked[(k * 7919) % acked.length];
      await writer.record({ ...again, status: 599 });
      continue;
    }
    const tx = next();
    await writer.record(tx);
    acked.push(tx);
    process.stdout.write(`${tx.workId}\n`); // synchronous on a pipe (Linux): out before the next record
  }
}

process.stdout.write('ready\n');
await Promise.all(Array.from({ length: Number(producersArg) }, (_, p) => producer(p)));
