/** The election contract's weighted draw, in TypeScript, for tests that check a drawn set. */
import { encodeAbiParameters, keccak256, type Address, type Hex } from 'viem';
import type { CgnContracts } from '../contracts.js';
import { validatorElectionAbi } from '../generated/index.js';

/** Weighted sampling without replacement, each draw from keccak256(abi.encode(seed, epoch, draw)). */
export function referenceDraw(pool: { a: Address; w: bigint }[], k: number, epoch: bigint, seed: Hex): Address[] {
  const weights = pool.map((p) => p.w);
  let total = weights.reduce((s, w) => s + w, 0n);
  const out: Address[] = [];
  for (let d = 0; d < Math.min(k, pool.filter((p) => p.w > 0n).length); d++) {
    const r = BigInt(keccak256(encodeAbiParameters([{ type: 'bytes32' }, { type: 'uint64' }, { type: 'uint256' }], [seed, epoch, BigInt(d)]))) % total;
    let acc = 0n;
    for (let i = 0; i < pool.length; i++) {
      const w = weights[i]!;
      if (w === 0n) continue;
      acc += w;
      if (r < acc) {
        out.push(pool[i]!.a);
        total -= w;
        weights[i] = 0n;
        break;
      }
    }
  }
  return out;
}

/** The candidates in contract order with their current weights (stake x service level). */
export async function weightedPool(c: CgnContracts, blockNumber?: bigint): Promise<{ a: Address; w: bigint }[]> {
  const e = { address: c.addresses.election, abi: validatorElectionAbi, ...(blockNumber !== undefined ? { blockNumber } : {}) } as const;
  const pool = await c.clients.public.readContract({ ...e, functionName: 'candidates' });
  return Promise.all(pool.map(async (a) => ({ a, w: await c.clients.public.readContract({ ...e, functionName: 'weightOf', args: [a] }) })));
}
