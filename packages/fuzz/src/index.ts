/**
 * @cgn/fuzz — seeded fuzzing of a real CGN network (`npm run fuzz`; a short run is in `npm test`).
 */
export { runFuzz, kindOf, type FuzzOptions, type FuzzReport, type FuzzFailure, type CaseKind } from './run.js';
export { Rng } from './rng.js';
