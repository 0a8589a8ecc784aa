/**
 * Challenge nonces for joining miners, cut from one block of CSPRNG output per 256 connections:
 * a `randomBytes(32)` per connection was a syscall per join (a profile of 2,000 joins put it at a
 * sixth of the node's admission work after the signature check). Every nonce is still fresh,
 * unpredictable CSPRNG output used once; only the read is batched.
 */
import { randomBytes } from 'node:crypto';

export class NoncePool {
  private block: Buffer = Buffer.alloc(0);
  private offset = 0;

  constructor(
    readonly nonceBytes = 32,
    private readonly perBlock = 256,
  ) {}

  /** A fresh nonce (a view into the current block, never handed out twice). */
  next(): Buffer {
    if (this.offset + this.nonceBytes > this.block.length) {
      this.block = randomBytes(this.nonceBytes * this.perBlock);
      this.offset = 0;
    }
    const nonce = this.block.subarray(this.offset, this.offset + this.nonceBytes);
    this.offset += this.nonceBytes;
    return nonce;
  }
}
