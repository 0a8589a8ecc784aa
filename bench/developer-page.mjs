#!/usr/bin/env node
/**
 * The account developer page's ledger reads, timed on a SQLite ledger of N records (20 DServices,
 * 2 of them the developer's) over CYCLES sealed cycles: the old shape (usage of every record of
 * every DService, earnings of every cycle, then kept to the last 50 cycles) against the bounded one
 * (each of the developer's DServices from the first of the last 50 cycles on, a range of the
 * record order; earnings of those cycles only). Build first (npx tsc -b packages/ledger).
 * Run: N=300000 CYCLES=600 node bench/developer-page.mjs
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLedger, SqliteLedgerStore, beneficiaryEarnings, sealedCycles } from '@cgn/ledger';
const N = Number(process.env.N ?? 300_000), CYCLES = Number(process.env.CYCLES ?? 100);
const dir = mkdtempSync(join(tmpdir(), 'devpage-'));
const path = join(dir, 'l.sqlite');
const l = openLedger({ path });
l.writer.start();
l.store.setRate({ num: 3n, den: 1n });
const SPLIT = { miner: 7000, developer: 2000, operator: 900, charity: 100 };
const t0 = Date.now() - N * 10;
let pending = [];
for (let i = 0; i < N; i++) {
  const ds = `ds${i % 20}`;
  pending.push(l.writer.record({ workId: `w${i}`, account: `a${i % 50}`, endUser: null, dservice: ds, tier: 'open', miner: 'ab'.repeat(32), node: 'n', receivedAt: t0 + i * 10,
    queueUs: 1, execUs: 1000, cpuUs: 900, bytesIn: 100, bytesOut: 100, status: 200, resultHash: null, attempts: 1,
    pricing: { priceMicros: 100n, split: SPLIT, developer: i % 20 < 2 ? 'dev-1' : `dev-${i % 20}`, operator: 'op', charity: 'ch' } }));
  if (pending.length >= 4096) { await Promise.all(pending); pending = []; }
  if ((i + 1) % Math.floor(N / CYCLES) === 0) { await Promise.all(pending); pending = []; l.store.closeCycle({ at: t0 + i * 10 + 5 }); }
}
await Promise.all(pending);
await l.writer.stop();
l.store.close();
const store = new SqliteLedgerStore({ path, readonly: true });
const names = new Set(['ds0', 'ds1']);
const MAX = 50;
async function oldWay() {
  const cycles = (await sealedCycles(store)).slice(-MAX);
  const ids = new Set(cycles.map((c) => c.id));
  const e = (await beneficiaryEarnings(store, 'developer', 'dev-1')).filter((x) => ids.has(x.cycle));
  const lines = await store.usageOverTime('cycle', 'dservice', {});
  return [e.length, lines.filter((x) => names.has(x.key)).length];
}
async function newWay() {
  const cycles = (await sealedCycles(store)).slice(-MAX);
  const e = await beneficiaryEarnings(store, 'developer', 'dev-1', cycles);
  const lines = [];
  for (const n of names) lines.push(...(await store.usageOverTime('cycle', 'dservice', { dservice: n, fromCycle: cycles[0].id })));
  const closed = new Set(cycles.map((c) => String(c.id)));
  return [e.length, lines.filter((x) => closed.has(x.bucket)).length];
}
const parts = async () => {
  const t = (x) => performance.now() - x;
  let a = performance.now(); const cycles = (await sealedCycles(store)).slice(-MAX); const tc = t(a);
  a = performance.now(); await beneficiaryEarnings(store, 'developer', 'dev-1', cycles); const te = t(a);
  a = performance.now(); await store.usageOverTime('cycle', 'dservice', { dservice: 'ds0', fromCycle: cycles[0].id }); const tu = t(a);
  a = performance.now(); await store.usageOverTime('cycle', 'dservice', {}); const tall = t(a);
  console.log(`sealedCycles ${tc.toFixed(0)} ms, earnings(50) ${te.toFixed(0)} ms, usage one name ${tu.toFixed(0)} ms, usage all ${tall.toFixed(0)} ms`);
};
await parts();
const time = async (f) => { const t = performance.now(); const r = await f(); return [performance.now() - t, r]; };
for (let rep = 0; rep < 3; rep++) {
  const [a, ra] = await time(oldWay);
  const [b, rb] = process.env.OLD_ONLY ? [NaN, null] : await time(newWay);
  console.log(`records ${N}, cycles ${CYCLES}: old ${a.toFixed(0)} ms ${JSON.stringify(ra)}, new ${b.toFixed(0)} ms ${JSON.stringify(rb)}, ratio ${(a / b).toFixed(1)}`);
}
store.close();
rmSync(dir, { recursive: true, force: true });
