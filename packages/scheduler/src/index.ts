export * from './types.js';
export { ZERO, resources, add, fits, capacityOf, dominantShare } from './resources.js';
export { filter, refusalReasons, isEligible, regionAllowed, diagnose, type RefusalReason, type Refusal, type FilterResult, type Diagnosis, type FunnelStep } from './filter.js';
export { score, priceScore, reputationScore, checkScoreWeights, DEFAULT_SCORE_WEIGHTS, NEUTRAL_REPUTATION, type ScoreWeights } from './score.js';
export { drf, drfDivisible, ShareQueue, type DrfUser, type DrfAllocation } from './drf.js';
export { place, DEFAULT_COLD_START_TIMEOUT_MS, type PlaceOptions, type PlacementPlan, type Unplaced } from './place.js';
export { autoscale, scaleKey, fenceKey, partKey, fenceFor, DEFAULT_AUTOSCALE_POLICY, type AutoscalePolicy, type DServiceMetrics, type ScaleMemory, type AutoscaleMemory, type ScaleDecision, type ScaleReason, type AutoscaleResult } from './autoscale.js';
