/**
 * THE PLACEMENT SCORE (the DCCN seed's "prioritize" step): among the miners that pass the filter,
 * an instance goes to the one with the highest
 *
 *   score = wPrice * priceScore + wReputation * reputationScore          (defaults 0.4 and 0.6)
 *
 *   priceScore      = cheapest / floor        the cheapest eligible miner's price floor over this
 *                                             miner's (1 for the cheapest; 1 when the floor is 0)
 *   reputationScore = s * ((1 - wl - wu - wv) + wl * l + wu * u + wv * v)
 *       s = success ratio, l = latency vs. peers (both as in the ledger's service level,
 *           packages/ledger/src/reputation.ts), u = uptime,
 *       v = (passed + 1) / (passed + failed + 2)  open-tier verification outcomes, Laplace-smoothed
 *       defaults wl = 0.2, wu = 0.3, wv = 0.2
 *   A miner with no records gets NEUTRAL_REPUTATION (0.5): below a proven miner, above a failing one,
 *   so newcomers get work without outranking miners that earned their place.
 *
 * As in the ledger, the success ratio multiplies instead of adding: a miner whose every result
 * failed scores 0 whatever its speed. Both scores are in 0..1, so the weights say directly how much
 * a cheaper miner may trade against a better one. Ties (and the spreading of a DService's
 * instances over distinct miners) are settled in place.ts, not here.
 */
import { CgnError } from '@cgn/protocol';
import type { MinerView, ReputationInputs } from './types.js';

export interface ScoreWeights {
  /** Weight of the price score (default 0.4); price + reputation must be > 0. */
  price: number;
  /** Weight of the reputation score (default 0.6). */
  reputation: number;
  /** Within reputation: latency (default 0.2), uptime (0.3), verification (0.2); sum <= 1. */
  latency: number;
  uptime: number;
  verification: number;
}

export const DEFAULT_SCORE_WEIGHTS: Readonly<ScoreWeights> = Object.freeze({ price: 0.4, reputation: 0.6, latency: 0.2, uptime: 0.3, verification: 0.2 });

export const NEUTRAL_REPUTATION = 0.5;

export function checkScoreWeights(w: ScoreWeights): void {
  const unit = (x: number) => Number.isFinite(x) && x >= 0 && x <= 1;
  for (const k of ['price', 'reputation', 'latency', 'uptime', 'verification'] as const) {
    if (!unit(w[k])) throw new CgnError('bad_request', `score weight ${k} must be in 0..1 (got ${w[k]})`);
  }
  if (w.price + w.reputation <= 0) throw new CgnError('bad_request', 'score weights price and reputation cannot both be 0');
  if (w.latency + w.uptime + w.verification > 1) {
    throw new CgnError('bad_request', `score weights latency + uptime + verification must be at most 1 (got ${w.latency + w.uptime + w.verification})`);
  }
}

const clamp01 = (x: number) => (x > 1 ? 1 : x > 0 ? x : 0);

export function reputationScore(r: ReputationInputs | undefined, w: ScoreWeights = DEFAULT_SCORE_WEIGHTS): number {
  if (r === undefined || r.records <= 0) return NEUTRAL_REPUTATION;
  const passed = Math.max(0, r.verificationsPassed);
  const failed = Math.max(0, r.verificationsFailed);
  const v = (passed + 1) / (passed + failed + 2);
  const base = 1 - w.latency - w.uptime - w.verification;
  return clamp01(clamp01(r.success) * (base + w.latency * clamp01(r.latency) + w.uptime * clamp01(r.uptime) + w.verification * v));
}

/** `cheapest` is the lowest price floor among the eligible miners. */
export function priceScore(floor: number, cheapest: number): number {
  if (floor <= 0) return 1;
  return clamp01(Math.max(0, cheapest) / floor);
}

export function score(m: MinerView, cheapest: number, w: ScoreWeights = DEFAULT_SCORE_WEIGHTS): number {
  return w.price * priceScore(m.priceFloor, cheapest) + w.reputation * reputationScore(m.reputation, w);
}
