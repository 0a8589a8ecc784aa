#!/usr/bin/env node
/**
 * The broker's region fence (issue 16, account data regions): what a unit costs to assign and
 * complete (submit + result, µs of this process's CPU time: the machine is shared) over 1,000 miners of 4 slots, in one run against baselines:
 *
 *   noRegions     miners advertise no region, no account is fenced (the broker before regions)
 *   unfenced      miners in eu (1%) or us, the account anywhere (the region index is kept up)
 *   fenced1pct    the account limited to eu: 10 of 1,000 miners may take its work
 *   fenced50pct   the account limited to eu: half the miners
 *   behindStuck   an unfenced unit submitted behind 1,000 queued units of an account fenced to a
 *                 region whose only miner is busy (the new unit is tried on the free miners at
 *                 once rather than queued behind work that cannot go there)
 *
 * Reported as ratios to `noRegions` measured in the same repetition (3 repetitions: the machine
 * is shared). Prints JSON; writes nothing. Run after `npx tsc -b`.
 */
import { Broker } from '../packages/node/dist/broker/broker.js';
import { frame } from '../packages/protocol/dist/index.js';

const N = 1000;
const UNITS = 100_000;
const ad = (region) => frame({ t: 'advertise', tier: 'open', slots: 4, dservices: [{ name: 'echo', version: '1', digest: 'd' }], resources: { cpus: 1, memoryMb: 1 }, ...(region ? { region } : {}) });
const res = (id) => frame({ t: 'result', id, status: 200, headers: [], body: new Uint8Array(1), metering: { execUs: 1, cpuUs: 1 }, resultHash: new Uint8Array(32) });
const req = (id, account) => ({ id, account, dservice: 'echo', tier: 'open', method: 'POST', path: '/', headers: [], body: new Uint8Array(0), timeoutMs: 60_000 });

function broker(fences) {
  const sent = [];
  const b = new Broker({
    now: () => performance.now(), send: (m, f) => f.t === 'work' && sent.push(m), closeMiner: () => {},
    setTimer: () => 0, clearTimer: () => {}, regionsOf: (a) => fences.get(a) ?? null,
  }, { maxQueueDepth: 100_000, maxQueueAgeMs: 600_000 });
  return { b, sent };
}

/** µs per submit + result, every unit run at once (the pool is never full). */
function flow(share, fenced) {
  const { b, sent } = broker(new Map(fenced ? [['acme', new Set(['eu'])]] : []));
  for (let i = 0; i < N; i++) b.addMiner(`m${i}`, ad(share === 0 ? undefined : i < N * share ? 'eu' : 'us'));
  const t0 = process.cpuUsage();
  for (let i = 0; i < UNITS; i++) {
    const id = `w${i}`;
    b.submit(req(id, 'acme'), () => {});
    const m = sent[sent.length - 1];
    if (fenced && Number(m.slice(1)) >= N * share) throw new Error(`unit ${id} ran on ${m}, outside its fence`);
    b.onResult(m, res(id));
  }
  const cpu = process.cpuUsage(t0);
  return (cpu.user + cpu.system) / UNITS;
}

/** µs per submit + result of unfenced work behind 1,000 queued units that only a busy miner may take. */
function behindStuck() {
  const { b, sent } = broker(new Map([['acme', new Set(['ap'])]]));
  b.addMiner('ap', frame({ ...ad('ap'), slots: 1 }));
  for (let i = 0; i < N; i++) b.addMiner(`m${i}`, ad('us'));
  for (let i = 0; i <= 1000; i++) b.submit(req(`f${i}`, 'acme'), () => {}); // one runs on ap, 1,000 wait
  const t0 = process.cpuUsage();
  for (let i = 0; i < UNITS; i++) {
    const id = `w${i}`;
    b.submit(req(id, 'beta'), () => {});
    const m = sent[sent.length - 1];
    if (m === 'ap') throw new Error('the busy fenced miner got other work');
    b.onResult(m, res(id));
  }
  const cpu = process.cpuUsage(t0);
  return (cpu.user + cpu.system) / UNITS;
}

flow(0, false); flow(0.01, true); behindStuck(); // JIT warm-up
const reps = [];
for (let r = 0; r < 3; r++) {
  const noRegions = flow(0, false);
  const row = { noRegions, unfenced: flow(0.01, false), fenced1pct: flow(0.01, true), fenced50pct: flow(0.5, true), behindStuck: behindStuck() };
  reps.push(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, { us: Math.round(v * 100) / 100, ratio: Math.round((v / noRegions) * 100) / 100 }])));
}
console.log(JSON.stringify({ miners: N, units: UNITS, repetitions: reps }, null, 2));
