/**
 * The record Merkle trees that seal a closed cycle's records into batches (sha256, Node's crypto,
 * fast enough for a million records):
 *
 *     leaf   = the record's chain hash (sha256 of its canonical encoding, see chain.ts)
 *     parent = sha256(0x01 || left || right)
 *
 * A level with an odd count promotes its last node unchanged. A batch's root is the tree of its
 * records (in append order); the cycle's `recordsRoot` is the same tree over the batch roots.
 * A proof is the list of siblings from the leaf up, each prefixed `L:` (sibling on the left) or
 * `R:` (on the right), in lowercase hex.
 *
 * (The payout tree is different: OpenZeppelin's StandardMerkleTree, keccak, for on-chain claims.)
 */
import * as crypto from 'node:crypto';

const hashBuf: (data: Buffer) => Buffer =
  typeof crypto.hash === 'function' ? (d) => crypto.hash('sha256', d, 'buffer') : (d) => crypto.createHash('sha256').update(d).digest();

const scratch = Buffer.alloc(65);
scratch[0] = 1;

export function merkleParent(left: Uint8Array, right: Uint8Array): Buffer {
  scratch.set(left, 1);
  scratch.set(right, 33);
  return hashBuf(scratch);
}

/** All levels, leaves first, root level last. */
function levels(leaves: readonly Uint8Array[]): Uint8Array[][] {
  if (leaves.length === 0) throw new RangeError('a Merkle tree needs at least one leaf');
  const out: Uint8Array[][] = [leaves.slice()];
  let level: readonly Uint8Array[] = leaves;
  while (level.length > 1) {
    const next: Uint8Array[] = new Array(Math.ceil(level.length / 2));
    for (let i = 0, j = 0; i < level.length; i += 2, j++) {
      const r = level[i + 1];
      next[j] = r === undefined ? level[i]! : merkleParent(level[i]!, r);
    }
    out.push(next);
    level = next;
  }
  return out;
}

export function merkleRoot(leaves: readonly Uint8Array[]): Buffer {
  const all = levels(leaves);
  return Buffer.from(all[all.length - 1]![0]!);
}

/**
 * `merkleRoot` of the first `count` 32-byte leaves packed in `buf`, built level by level in
 * place (each parent overwrites a node already consumed): no array or Buffer per node. `buf` is
 * overwritten.
 */
export function merkleRootInPlace(buf: Buffer, count: number): Buffer {
  return rootInPlace(buf, count, hashBuf, scratch);
}

/**
 * The body of `merkleRootInPlace`, with no free variables but globals (`hash` is sha256,
 * `s` a 65-byte buffer starting 0x01), so a worker thread can run its very source (tree-hasher.ts).
 */
export function rootInPlace(buf: Buffer, count: number, hash: (data: Buffer) => Buffer, s: Buffer): Buffer {
  if (count < 1) throw new RangeError('a Merkle tree needs at least one leaf');
  if (buf.length < count * 32) throw new RangeError(`${count} leaves need ${count * 32} bytes, not ${buf.length}`);
  let n = count;
  while (n > 1) {
    let j = 0;
    for (let i = 0; i + 1 < n; i += 2, j++) {
      buf.copy(s, 1, i * 32, i * 32 + 64);
      buf.set(hash(s), j * 32);
    }
    if (n % 2 === 1) {
      buf.copy(buf, j * 32, (n - 1) * 32, n * 32);
      j++;
    }
    n = j;
  }
  return Buffer.from(buf.subarray(0, 32));
}

export function merkleProof(leaves: readonly Uint8Array[], index: number): string[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError(`leaf ${index} is not in a tree of ${leaves.length}`);
  const proof: string[] = [];
  let i = index;
  for (const level of levels(leaves)) {
    if (level.length === 1) break;
    const sibling = i % 2 === 0 ? level[i + 1] : level[i - 1];
    if (sibling !== undefined) proof.push(`${i % 2 === 0 ? 'R' : 'L'}:${Buffer.from(sibling).toString('hex')}`);
    i = Math.floor(i / 2);
  }
  return proof;
}

/** The root a leaf and its proof lead to, or null when the proof is malformed. */
export function merkleRootFromProof(leaf: Uint8Array, proof: readonly string[]): Buffer | null {
  let node: Buffer = Buffer.from(leaf);
  for (const step of proof) {
    if (typeof step !== 'string' || !/^[LR]:[0-9a-f]{64}$/.test(step)) return null;
    const sibling = Buffer.from(step.slice(2), 'hex');
    node = step[0] === 'L' ? merkleParent(sibling, node) : merkleParent(node, sibling);
  }
  return node;
}
