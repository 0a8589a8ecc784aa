/**
 * What placement per fence costs (issue 16): in one process, CPU time, interleaved runs.
 *
 * 1. The broker's report of the work it holds: with 1,000 units held (one miner of one slot, so
 *    nearly all queued) from 20 accounts, none fenced (fencesWaiting answers null without a scan;
 *    the controller then reads queueOf and runningOf, the way before fences) against half of them
 *    fenced to eu (fencesWaiting scans the units held).
 * 2. A full placement round of the node's controller at 1,000 miners in four regions, with work
 *    for one DService anywhere only (one part) against work anywhere, fenced to eu and fenced to
 *    ap (three parts: three demands for place).
 *
 * Prints the medians of `--runs` (default 5) and their ratios. Not in `npm run bench`: it measures
 * an overhead, not a target. Usage: npx tsc -b && node bench/placement-fences.mjs [--runs N]
 */
import { Broker } from '../packages/node/dist/broker/broker.js';
import { PlacementController } from '../packages/node/dist/placement/controller.js';
import { resolvePlacementOptions } from '../packages/node/dist/placement/options.js';
import { frame, parseDescriptor } from '../packages/protocol/dist/index.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const cpuUs = (fn, n) => {
  const t = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / n;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function broker(fenced) {
  const eu = new Set(['eu']);
  const b = new Broker(
    { now: () => performance.now(), send: () => {}, closeMiner: () => {}, regionsOf: (a) => (fenced && a.startsWith('f') ? eu : null), setTimer: () => 0, clearTimer: () => {} },
    { maxQueueDepth: 100_000 },
  );
  b.addMiner('us', frame({ t: 'advertise', tier: 'open', slots: 1, dservices: [{ name: 'echo', version: '1', digest: 'd' }], resources: { cpus: 1, memoryMb: 1 }, region: 'us' }));
  for (let i = 0; i < 1000; i++) {
    b.submit({ id: `w${i}`, account: `${i % 2 ? 'f' : 'a'}${i % 10}`, dservice: 'echo', tier: 'open', method: 'POST', path: '/', headers: [], body: new Uint8Array(0), timeoutMs: 1e9 }, () => {});
  }
  return b;
}

function controller(fences) {
  const echo = parseDescriptor({ name: 'echo', version: '0.1.0', entry: 'server.js', developer: 'dev-1', resources: { cpus: 1, memoryMb: 64 }, concurrency: 4 });
  const regions = ['eu-west', 'us-east', 'ap-south', 'sa-east'];
  const miners = Array.from({ length: 1000 }, (_, i) => ({
    id: `m${String(i).padStart(5, '0')}`, tier: 'open', dservices: [], draining: false,
    advert: { tier: 'open', slots: 4, dservices: [], resources: { cpus: 4, memoryMb: 4096 }, region: regions[i % 4] },
  }));
  return new PlacementController(
    {
      clock: { now: () => Date.now() }, miners: () => miners, dservices: () => [echo],
      packages: { packageOf: () => ({ digest: 'a'.repeat(64), sizeBytes: 1, packagePath: '/p' }) },
      queueOf: () => ({ depth: 40, oldestMs: 10 }), inFlightOf: () => 0, send: () => {}, log: () => {}, defaultTier: 'open',
      timers: { setInterval: () => 0, clearInterval: () => {} },
      fencesWaiting: () => fences,
    },
    resolvePlacementOptions({ probe: false }),
  );
}

const unfencedBroker = broker(false);
const fencedBroker = broker(true);
const onePart = controller(null);
const threeParts = controller([
  { regions: null, queued: 20, running: 0, oldestMs: 10 },
  { regions: ['eu'], queued: 10, running: 0, oldestMs: 10 },
  { regions: ['ap'], queued: 10, running: 0, oldestMs: 10 },
]);
const r = { before: [], fenced: [], one: [], three: [] };
for (let k = 0; k < RUNS; k++) {
  r.before.push(cpuUs(() => (unfencedBroker.fencesWaiting('echo', 'open'), unfencedBroker.queueOf('echo', 'open'), unfencedBroker.runningOf('echo', 'open')), 2000));
  r.fenced.push(cpuUs(() => fencedBroker.fencesWaiting('echo', 'open'), 2000));
  r.one.push(cpuUs(() => onePart.tick(), 200));
  r.three.push(cpuUs(() => threeParts.tick(), 200));
}
const m = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)]));
console.log(`work held, 1,000 units: unfenced ${m.before.toFixed(1)} µs, half fenced ${m.fenced.toFixed(1)} µs per report (ratio ${(m.fenced / m.before).toFixed(2)})`);
console.log(`placement round, 1,000 miners: one part ${(m.one / 1000).toFixed(2)} ms, three parts ${(m.three / 1000).toFixed(2)} ms (ratio ${(m.three / m.one).toFixed(2)})`);
console.log(JSON.stringify({ runs: RUNS, loadavg: (await import('node:os')).loadavg().map((x) => Math.round(x * 10) / 10), medianCpuUs: m }));
