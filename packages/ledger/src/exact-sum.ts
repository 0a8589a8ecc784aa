/**
 * An exact running sum of token amounts that stays in doubles while it can: each amount below
 * 2^53 is added as a number, and the number part is moved into the bigint part just before it
 * would pass 2^53 - 1 (a double sum of two safe integers is exact up to there). A bigint
 * addition allocates; a million of them cost more than the whole read of a cycle, and one per
 * record was a good part of the writer's garbage.
 */
export class ExactSum {
  big = 0n;
  n = 0;

  /** Adds a safe integer >= 0. */
  add(x: number): void {
    const y = this.n + x;
    if (y > Number.MAX_SAFE_INTEGER) {
      this.big += BigInt(this.n);
      this.n = x;
    } else this.n = y;
  }

  addBig(x: bigint): void {
    if (x >= 0n && x <= MAX_SAFE) this.add(Number(x));
    else this.big += x;
  }

  get value(): bigint {
    return this.big + BigInt(this.n);
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
