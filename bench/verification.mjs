#!/usr/bin/env node
/**
 * Open-tier verification, simulated: the real broker and verification code with virtual time
 * (`simulateVerification` in packages/node/src/broker/simulate-verification.ts: seeded, no
 * sockets). 1,000 miners, 5% of them cheating at rates of 1%, 10% and 100% of their results,
 * 1,000,000 requests, adaptive sampling at the node's defaults (floor 0.05, decay 0.8), and full
 * duplication (floor 1) for comparison. Merges the numbers into bench/results.json under
 * "verification" (other keys are kept).
 *
 * Run: npx tsc -b packages/node && node bench/verification.mjs
 * BENCH_VERIFY_REQUESTS (default 1000000), BENCH_VERIFY_SEED (default 1) change it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simulateVerification } from '../packages/node/dist/broker/simulate-verification.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const requests = Number(process.env.BENCH_VERIFY_REQUESTS ?? 1_000_000);
const seed = Number(process.env.BENCH_VERIFY_SEED ?? 1);
const base = { seed, miners: 1000, cheaterShare: 0.05, cheatRates: [0.01, 0.1, 1], requests };

const pick = (r) => ({
  catchRate: r.catchRate, catchRateByRate: r.catchRateByRate, extraExecutionShare: r.extraExecutionShare, honestPenalized: r.honestPenalized,
  wrongAnswersServedPerMillion: r.wrongAnswersServedPerMillion, requestsToCatchP50: r.requestsToCatchP50, requestsToCatchP99: r.requestsToCatchP99,
  answered: r.answered, failed: r.failed, cheaters: r.cheaters, wallSeconds: Math.round(r.wallSeconds),
});

console.log(`verification: ${requests} requests, 1000 miners (50 cheating at 1%, 10%, 100%), seed ${seed}`);
const adaptive = simulateVerification({ ...base, floor: 0.05, decay: 0.8 });
console.log('adaptive (floor 0.05, decay 0.8):', JSON.stringify(pick(adaptive)));
const full = simulateVerification({ ...base, requests: Math.min(requests, 200_000), floor: 1, decay: 0.8 });
console.log('full duplication (floor 1):', JSON.stringify(pick(full)));
const file = join(ROOT, 'bench/results.json');
const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
previous.verification = {
  ...pick(adaptive),
  settings: { floor: 0.05, decay: 0.8 },
  scenario: { miners: 1000, cheaters: '5% (rates 1%, 10%, 100%)', requests, seed },
  fullDuplication: { ...pick(full), requests: Math.min(requests, 200_000) },
  targets: { catchRate: '>= 0.99', extraExecutionShare: '<= 0.10', honestPenalized: 0 },
  at: new Date().toISOString(),
};
writeFileSync(file, `${JSON.stringify(previous, null, 2)}\n`);
console.log(`wrote "verification" to ${file}`);
