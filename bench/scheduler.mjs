#!/usr/bin/env node
/**
 * Placement speed of @cgn/scheduler (issue 16, item 10), on simulated miners (seeded, no I/O).
 *
 * For 1,000 and 10,000 miners (mixed tiers, regions, sizes, GPUs, prices, reputations; 60% with a
 * capability probe result) and 200 DServices of 50 accounts (weights 1..4, a third restricted to
 * data regions, some needing a GPU or the attested/dedicated tier):
 *
 *   fill     from an empty cluster, one place() call starts every DService's desired instances
 *            (about 40% of the pool's CPUs): `fillPlacementsPerSec` = instances / time.
 *   cycles   then, on that running cluster, 100 scheduling cycles after 20 unmeasured ones (JIT
 *            warm-up): 100 DServices each want one more instance and one place() call on the
 *            whole state decides them (validation, stops, shares, filtering, DRF); as many random
 *            instances then end, so the load stays the same. `placementsPerSec` = instances placed / time in place();
 *            `placementsPerCpuSec` the same over this process's CPU time.
 *   single   2,000 calls in which one DService wants one more instance: the latency of answering
 *            one new demand on a loaded cluster, the whole call. `p50Ms`, `p99Ms` (wall clock),
 *            `p99CpuMs` (this process's CPU time: unaffected by other processes on the machine,
 *            but it counts the garbage collector's threads), `singleCallsPerSec`.
 *
 * place() is stateless: every call reads the whole state, O(miners + instances), so one call per
 * instance costs that much each time, and a node should batch what changed since its last tick.
 * The machine's load average is recorded with the numbers: wall-clock times on a busy machine
 * are not the code's. Where Linux has /proc/thread-self/schedstat, each single call's wall time is
 * split into the time this thread waited in the run queue (runnable, but another process had the
 * CPU) and the rest: `p99RunQueueWaitMs` and `p99WallLessWaitMs` say which of the two makes the tail.
 *
 * Merges `placementsPerSec`, `p99Ms` and `placement` (the rest) into bench/results.json under
 * "scheduler"; other keys, there and at the top, are kept.
 * Targets at 1,000 miners: >= 5,000 placements/s, p99 <= 2 ms (kube-scheduler: ~800-900 pods/s at
 * 500 nodes).
 *
 * Run: npx tsc -b packages/scheduler && node bench/scheduler.mjs
 * BENCH_SCHED_CALLS (default 2000), BENCH_SCHED_CYCLES (default 100), BENCH_SCHED_SEED (default 1) change it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { place } from '../packages/scheduler/dist/index.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CALLS = Number(process.env.BENCH_SCHED_CALLS ?? 2000);
const CYCLES = Number(process.env.BENCH_SCHED_CYCLES ?? 100);
const WARMUP_CYCLES = 20;
const BURST = 100;
const SEED = Number(process.env.BENCH_SCHED_SEED ?? 1);
const SIZES = (process.env.BENCH_SCHED_SIZES ?? "1000,10000").split(",").map(Number);
const DSERVICES = 200;
const ACCOUNTS = 50;

function mulberry32(a) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REGIONS = ['eu-west', 'eu-north', 'eu-central', 'us-east', 'us-west', 'ap-south'];

function simulate(n, rnd) {
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const miners = [];
  for (let i = 0; i < n; i++) {
    const t = rnd();
    const tier = t < 0.7 ? 'open' : t < 0.9 ? 'attested' : 'dedicated';
    const cpus = pick([2, 4, 4, 8, 8, 16, 32]);
    const claimed = { cpus, memoryMb: cpus * pick([1024, 2048, 4096]), diskMb: pick([20_000, 100_000, 500_000]), gpus: rnd() < 0.1 ? 1 : 0, bandwidthMbps: pick([50, 100, 1000]) };
    const measured = rnd() < 0.6 ? { ...claimed, cpus: Math.max(1, claimed.cpus - (rnd() < 0.2 ? 1 : 0)) } : undefined;
    const records = rnd() < 0.2 ? 0 : Math.floor(rnd() * 10_000);
    miners.push({
      id: `miner-${String(i).padStart(6, '0')}`,
      tier,
      region: pick(REGIONS),
      status: rnd() < 0.97 ? 'online' : 'draining',
      claimed,
      ...(measured ? { measured } : {}),
      priceFloor: 5 + Math.floor(rnd() * 20),
      reputation: { records, success: 0.9 + rnd() * 0.1, latency: rnd(), uptime: 0.8 + rnd() * 0.2, verificationsPassed: Math.floor(rnd() * 50), verificationsFailed: rnd() < 0.05 ? 1 : 0 },
    });
  }
  const totalCpus = miners.reduce((s, m) => s + m.claimed.cpus, 0);
  const accounts = Array.from({ length: ACCOUNTS }, (_, i) => ({ account: `acct-${i}`, weight: 1 + Math.floor(rnd() * 4) }));
  const demands = [];
  for (let i = 0; i < DSERVICES; i++) {
    const t = rnd();
    const tier = t < 0.8 ? 'open' : t < 0.93 ? 'attested' : 'dedicated';
    const cpus = pick([1, 1, 2, 4]);
    const region = rnd() < 0.33 ? [pick(['eu', 'us', 'ap-south'])] : undefined;
    demands.push({
      name: `dservice-${i}`,
      version: '1.0.0',
      account: accounts[i % ACCOUNTS].account,
      requirements: {
        resources: { cpus, memoryMb: cpus * pick([256, 512, 1024]), diskMb: pick([100, 1000]), gpus: rnd() < 0.05 ? 1 : 0, bandwidthMbps: 10 },
        tier,
        ...(region ? { regions: region } : {}),
      },
      minInstances: pick([0, 0, 1, 2]),
      maxInstances: 10_000,
      // About 40% of the pool's CPUs wanted over all DServices.
      desiredInstances: Math.max(1, Math.round(((0.4 * totalCpus) / DSERVICES / cpus) * (0.5 + rnd()))),
      queueDepth: 0,
      queueWaitMs: 0,
    });
  }
  return { miners, accounts, demands };
}

const clock = { now: () => 1_000_000 };
let nextId = 0;
const toInstance = (s) => ({ id: `inst-${String(nextId++).padStart(8, '0')}`, dservice: s.dservice, version: s.version, tier: s.tier, account: s.account, minerId: s.minerId, resources: s.resources, state: 'ready', since: 0 });

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const results = { placementsPerSec: {}, placementsPerCpuSec: {}, p99Ms: {}, p50Ms: {}, p99CpuMs: {}, singleCallsPerSec: {}, fillPlacementsPerSec: {}, instancesRunning: {} };
const cpuMs = (u) => (u.user + u.system) / 1000;
// This thread's run-queue wait so far, in ms (field 2 of schedstat, ns); undefined off Linux.
const SCHEDSTAT = '/proc/thread-self/schedstat';
const hasSchedstat = existsSync(SCHEDSTAT);
const runQueueWaitMs = () => Number(readFileSync(SCHEDSTAT, 'utf8').split(' ')[1]) / 1e6;
if (hasSchedstat) Object.assign(results, { p99RunQueueWaitMs: {}, p99WallLessWaitMs: {}, p50WallLessWaitMs: {}, callsThatWaited: {} });
for (const n of SIZES) {
  const rnd = mulberry32(SEED * 7919 + n);
  const { miners, accounts, demands } = simulate(n, rnd);
  // Warm up the JIT.
  for (let i = 0; i < 3; i++) place({ miners, instances: [], accounts }, demands, clock);

  // Fill: every DService's desired instances from an empty cluster, in one call.
  const t0 = performance.now();
  const fill = place({ miners, instances: [], accounts }, demands, clock);
  const fillMs = performance.now() - t0;
  let instances = fill.decisions.filter((d) => d.kind === 'start').map(toInstance);
  results.fillPlacementsPerSec[n] = Math.round(instances.length / (fillMs / 1000));
  const countOf = () => {
    const c = new Map();
    for (const i of instances) c.set(i.dservice, (c.get(i.dservice) ?? 0) + 1);
    return c;
  };
  // From here on each DService stays at its count unless it is asked to grow.
  const steadyOf = () => {
    const c = countOf();
    return demands.map((d) => ({ ...d, minInstances: Math.min(d.minInstances, c.get(d.name) ?? 0), desiredInstances: c.get(d.name) ?? 0 }));
  };

  // Cycles: 100 DServices each want one more instance, one place() call; then as many random
  // instances end (scale-downs elsewhere), so the cluster stays as loaded.
  let steady = steadyOf();
  let cyclePlaced = 0;
  let cycleMs = 0;
  let cycleCpuMs = 0;
  for (let c = -WARMUP_CYCLES; c < CYCLES; c++) {
    if (c === 0) {
      cyclePlaced = 0;
      cycleMs = 0;
      cycleCpuMs = 0;
    }
    const grown = steady.slice();
    for (let j = 0; j < BURST; j++) {
      const k = Math.floor(rnd() * grown.length);
      grown[k] = { ...grown[k], desiredInstances: grown[k].desiredInstances + 1 };
    }
    const c0 = process.cpuUsage();
    const s = performance.now();
    const plan = place({ miners, instances, accounts }, grown, clock);
    cycleMs += performance.now() - s;
    cycleCpuMs += cpuMs(process.cpuUsage(c0));
    const started = plan.decisions.filter((d) => d.kind === 'start');
    cyclePlaced += started.length;
    instances = instances.concat(started.map(toInstance));
    for (let j = 0; j < started.length; j++) instances.splice(Math.floor(rnd() * instances.length), 1);
    steady = steadyOf();
  }
  results.placementsPerSec[n] = Math.round(cyclePlaced / (cycleMs / 1000));
  results.placementsPerCpuSec[n] = Math.round(cyclePlaced / (cycleCpuMs / 1000));

  // Single: one DService wants one more instance; the whole call's latency.
  const slot = new Map(steady.map((d, j) => [d.name, j]));
  const wall = [];
  const cpu = [];
  const waited = [];
  const lessWait = [];
  let placed = 0;
  const tAll = performance.now();
  for (let c = 0; c < CALLS; c++) {
    const k = Math.floor(rnd() * steady.length);
    const grown = steady.slice();
    grown[k] = { ...steady[k], desiredInstances: steady[k].desiredInstances + 1 };
    const w0 = hasSchedstat ? runQueueWaitMs() : 0;
    const c0 = process.cpuUsage();
    const s = performance.now();
    const plan = place({ miners, instances, accounts }, grown, clock);
    const ms = performance.now() - s;
    wall.push(ms);
    cpu.push(cpuMs(process.cpuUsage(c0)));
    if (hasSchedstat) {
      const w = runQueueWaitMs() - w0;
      waited.push(w);
      lessWait.push(Math.max(0, ms - w));
    }
    for (const d of plan.decisions) {
      if (d.kind !== 'start') continue;
      placed++;
      steady[k] = grown[k];
      // One random instance ends (a scale-down decided elsewhere), so the load stays the same.
      const [gone] = instances.splice(Math.floor(rnd() * instances.length), 1);
      const j = slot.get(gone.dservice);
      const left = steady[j].desiredInstances - 1;
      steady[j] = { ...steady[j], desiredInstances: left, minInstances: Math.min(steady[j].minInstances, left) };
      instances.push(toInstance(d));
    }
  }
  const allMs = performance.now() - tAll;
  wall.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  results.singleCallsPerSec[n] = Math.round(CALLS / (allMs / 1000));
  results.p99Ms[n] = Number(quantile(wall, 0.99).toFixed(3));
  results.p50Ms[n] = Number(quantile(wall, 0.5).toFixed(3));
  results.p99CpuMs[n] = Number(quantile(cpu, 0.99).toFixed(3));
  results.instancesRunning[n] = instances.length;
  let waitNote = '';
  if (hasSchedstat) {
    waited.sort((a, b) => a - b);
    lessWait.sort((a, b) => a - b);
    results.p99RunQueueWaitMs[n] = Number(quantile(waited, 0.99).toFixed(3));
    results.p99WallLessWaitMs[n] = Number(quantile(lessWait, 0.99).toFixed(3));
    results.p50WallLessWaitMs[n] = Number(quantile(lessWait, 0.5).toFixed(3));
    results.callsThatWaited[n] = Number((waited.filter((w) => w > 0).length / CALLS).toFixed(3));
    waitNote = `; run-queue wait p99 ${results.p99RunQueueWaitMs[n]} ms (${(100 * results.callsThatWaited[n]).toFixed(1)}% of calls waited), wall less wait p50 ${results.p50WallLessWaitMs[n]} / p99 ${results.p99WallLessWaitMs[n]} ms`;
  }
  console.log(
    `${n} miners, ${instances.length} instances: fill ${results.fillPlacementsPerSec[n]}/s; cycles of ${BURST}: ${results.placementsPerSec[n]} placements/s, ${results.placementsPerCpuSec[n]} per CPU-second (${cyclePlaced} placed); ` +
      `single calls (${placed} of ${CALLS} placed): p50 ${results.p50Ms[n]} ms, p99 ${results.p99Ms[n]} ms (CPU p99 ${results.p99CpuMs[n]} ms), ${results.singleCallsPerSec[n]} calls/s${waitNote}`,
  );
}

const file = join(ROOT, 'bench/results.json');
const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
const { placementsPerSec, p99Ms, ...detail } = results;
// Merged into "scheduler", whose other keys (e.g. bench/scheduler-flood.mjs's) are kept.
previous.scheduler = {
  ...previous.scheduler,
  placementsPerSec,
  p99Ms,
  placement: {
    ...detail,
    scenario: { miners: SIZES, dservices: DSERVICES, accounts: ACCOUNTS, cycles: CYCLES, burst: BURST, singleCalls: CALLS, seed: SEED, node: process.version },
    // The machine's load while it ran (1, 5, 15 min) and its CPUs: wall-clock numbers depend on them.
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
    cpus: os.cpus().length,
    definitions: {
      placementsPerSec: `instances placed per second of place() in scheduling cycles of ${BURST} wanted instances on the loaded cluster`,
      p99Ms: 'p99 wall-clock latency of one place() call that places one instance on the loaded cluster',
      placementsPerCpuSec: 'placementsPerSec with the process CPU time instead of the wall clock (what the code costs on a shared machine)',
      p99CpuMs: 'p99Ms in process CPU time (counts the garbage collector threads too)',
      p99RunQueueWaitMs: 'p99 of the time the calling thread spent runnable but waiting for a CPU during one single call (/proc/thread-self/schedstat): the machine, not the code',
      p99WallLessWaitMs: 'p99 of one single call\'s wall time less its run-queue wait: what p99Ms would be on an otherwise idle machine',
      callsThatWaited: 'fraction of single calls during which the thread waited in the run queue at all',
    },
    targets: { placementsPerSec: { 1000: '>= 5000' }, p99Ms: { 1000: '<= 2' } },
    at: new Date().toISOString(),
  },
};
writeFileSync(file, `${JSON.stringify(previous, null, 2)}\n`);
console.log(`wrote "scheduler" to ${file}`);
