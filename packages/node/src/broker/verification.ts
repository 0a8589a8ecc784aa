/**
 * Adaptive sampled verification for the `open` tier: how likely a unit is to be checked on a
 * second miner, per miner.
 *
 * A miner's verification probability starts at 1 when it is new (the node has checked none of
 * its results) and falls with every verified-clean result: `p <- max(floor, p * decay)`. Any
 * mismatch it is part of resets it to 1. Proven cheaters are banned anyway; the reset matters for
 * a miner outvoted in a three-way split. So new miners are always checked and proven ones rarely
 * (BOINC's adaptive replication runs at 5-10% overall), which keeps the extra executions small.
 *
 * Only deterministic DServices are checked (the same request must give the same bytes); the
 * descriptor says which. Per DService, `floor` and `decay` may be set in its descriptor
 * (`verification: { floor, decay }`); `floor: 1` is full duplication, for a DService that must
 * never serve an unchecked answer. Plain logic with injected randomness.
 */

export interface VerificationSettings {
  /** Lowest probability a proven miner's results are checked with, 0..1. */
  floor: number;
  /** Factor the probability falls by with each verified-clean result, 0..1. */
  decay: number;
}

export const VERIFICATION_DEFAULTS: VerificationSettings = { floor: 0.05, decay: 0.8 };

export function verificationSettingsProblem(s: Partial<VerificationSettings>): string | null {
  if (s.floor !== undefined && !(typeof s.floor === 'number' && s.floor >= 0 && s.floor <= 1)) return 'floor must be a number from 0 to 1';
  if (s.decay !== undefined && !(typeof s.decay === 'number' && s.decay >= 0 && s.decay <= 1)) return 'decay must be a number from 0 to 1';
  return null;
}

export class VerificationPolicy {
  /** Per miner: the probability before the DService's floor (1 for a miner never checked). */
  private readonly p = new Map<string, number>();
  /** Verified-clean results per miner (for status). */
  private readonly clean = new Map<string, number>();

  constructor(private readonly random: () => number = Math.random) {}

  /** The probability a unit of a DService with `settings` on `minerId` is checked. */
  probability(minerId: string | null, settings: VerificationSettings): number {
    const p = minerId === null ? 1 : (this.p.get(minerId) ?? 1);
    return Math.max(settings.floor, p);
  }

  /** Draws whether this unit is checked. */
  shouldCheck(minerId: string | null, settings: VerificationSettings): boolean {
    const p = this.probability(minerId, settings);
    return p >= 1 || (p > 0 && this.random() < p);
  }

  /** The miner's result was checked and agreed. */
  verifiedClean(minerId: string, settings: VerificationSettings): void {
    this.p.set(minerId, Math.max(settings.floor, (this.p.get(minerId) ?? 1) * settings.decay));
    this.clean.set(minerId, (this.clean.get(minerId) ?? 0) + 1);
  }

  /** The miner was part of a mismatch: checked every time again. */
  mismatch(minerId: string): void {
    this.p.set(minerId, 1);
    this.clean.set(minerId, 0);
  }

  /** A miner left for good (banned): forget it. */
  forget(minerId: string): void {
    this.p.delete(minerId);
    this.clean.delete(minerId);
  }

  cleanRun(minerId: string): number {
    return this.clean.get(minerId) ?? 0;
  }
}
