#!/usr/bin/env node
/**
 * Ledger benchmark (issue 4 bars): sustained ingest of priced microtransactions through the
 * group-commit writer into SQLite and PostgreSQL, each against raw batched inserts of the same
 * rows into the same store (same schema and durability; no validation, pricing, split, hash chain
 * or promise per record), and closing a billing cycle of 1,000,000 records (totals, sealed
 * batches with Merkle roots, payout tree). Prints a table and merges a `ledger` section into
 * bench/results.json (other sections are kept).
 *
 * Build first (`npx tsc -b packages/ledger`, or `npm run bench` does it). Run: node bench/ledger.mjs
 * Env: LEDGER_BENCH_RECORDS (ingest records per run, default 200000), LEDGER_BENCH_CYCLE
 * (records in the closed cycle, default 1000000), LEDGER_BENCH_PG=0 to skip PostgreSQL,
 * LEDGER_BENCH_SECTIONS (default sqlite,postgres,close; add pgclose to close a cycle of
 * LEDGER_BENCH_CYCLE records on PostgreSQL too: its fill takes minutes). Sections run are
 * merged into the `ledger` section; each has its own figures.
 *
 * Durability measured: SQLite `normal` (WAL, synchronous=NORMAL: survives a killed process);
 * PostgreSQL `normal` (synchronous_commit=off) and `full` (synchronous_commit=on, fsync on).
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import * as os from 'node:os';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openLedger, openPostgresLedger, SqliteLedgerStore, PostgresLedgerStore, SQLITE_TUNING, findPostgresBin, startPostgresCluster } from '@cgn/ledger';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const N = Number(process.env.LEDGER_BENCH_RECORDS ?? 200_000);
const CYCLE = Number(process.env.LEDGER_BENCH_CYCLE ?? 1_000_000);
const WITH_PG = process.env.LEDGER_BENCH_PG !== '0';
const BATCH = 4096;
const SECTIONS = new Set((process.env.LEDGER_BENCH_SECTIONS ?? 'sqlite,postgres,close').split(','));

const dir = mkdtempSync(join(tmpdir(), 'cgn-ledger-bench-'));
let cluster;
process.on('exit', () => {
  cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));
let files = 0;
const freshPath = () => join(dir, `l${files++}.sqlite`);

const SPLIT = Object.freeze({ miner: 7000, developer: 2000, operator: 900, charity: 100 });
function makeRecords(n, tag) {
  const out = new Array(n);
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    out[i] = {
      workId: `w_${tag}_${i.toString(36)}`, account: `acct_${i % 97}`, endUser: i % 3 === 0 ? null : `user_${i % 1013}`,
      dservice: i % 5 === 0 ? 'mediagen' : 'echo', tier: 'open', miner: (i % 50).toString(16).padStart(2, '0').repeat(32), node: 'eu-west-1',
      receivedAt: t0 + i, queueUs: i % 500, execUs: 1000 + (i % 9000), cpuUs: 900 + (i % 8000), bytesIn: 50_000 + (i % 10_000), bytesOut: 20_000 + (i % 7000),
      status: 200, resultHash: 'f0'.repeat(32), attempts: 1,
      pricing: { priceMicros: BigInt(100 + (i % 997)), split: SPLIT, developer: i % 5 === 0 ? 'equilibrium' : 'echo-dev', operator: 'cgn-eu', charity: 'charity' },
    };
  }
  return out;
}

/** Saturated: every record in flight; the writer commits full batches back to back. */
async function writerRun(ledger, records) {
  const { writer } = ledger;
  writer.start();
  const cpu0 = process.cpuUsage();
  const t = performance.now();
  const all = new Array(records.length);
  for (let i = 0; i < records.length; i++) all[i] = writer.record(records[i]);
  await Promise.all(all);
  const s = (performance.now() - t) / 1000;
  const cpu = cpuSeconds(cpu0);
  const c = writer.counters;
  if (c.inserted !== records.length) throw new Error(`writer inserted ${c.inserted} of ${records.length}`);
  await writer.stop();
  return { rps: records.length / s, batches: c.batches, cpuRps: records.length / cpu };
}

const zero = Buffer.alloc(32);
/** CPU seconds (user + system, all threads) since `from`: on a shared, loaded machine a steadier measure than wall time. */
const cpuSeconds = (from) => {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1e6;
};
function rawRowValues(r) {
  return [r.workId, r.account, r.endUser, r.dservice, r.tier, r.miner, r.node, r.receivedAt, r.queueUs, r.execUs, r.cpuUs, r.bytesIn, r.bytesOut, r.status, r.resultHash, r.attempts];
}

/** SQLite: same rows (all columns, price included), same schema and pragmas, prepared INSERT, one transaction per batch. */
function sqliteRaw(records) {
  const path = freshPath();
  new SqliteLedgerStore({ path }).close();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // The writer's connection tuning too (page cache, checkpoint size), so only the per-record work differs.
  for (const p of SQLITE_TUNING) db.pragma(p);
  const ins = db.prepare(`INSERT OR IGNORE INTO microtransactions (work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us,
    bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash, cycle, price_micros, split_bps, developer, operator, charity, tokens, parts)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 2, ?, ?, 1, ?, '7000/2000/900/100', ?, ?, ?, ?, '1/1/1/1')`);
  const tx = db.transaction((rows) => {
    for (const r of rows) ins.run(...rawRowValues(r), zero, zero, '100', r.pricing.developer, r.pricing.operator, r.pricing.charity, '100');
  });
  const cpu0 = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < records.length; i += BATCH) tx.immediate(records.slice(i, i + BATCH));
  const s = (performance.now() - t) / 1000;
  const cpu = cpuSeconds(cpu0);
  db.close();
  return { rps: records.length / s, cpuRps: records.length / cpu };
}

/** PostgreSQL: same rows, same table, one multi-row INSERT ... unnest per batch, one transaction each, same synchronous_commit. */
async function pgRaw(url, schema, durability, records) {
  const store = await PostgresLedgerStore.open({ url, schema, durability });
  await store.close();
  const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { search_path: schema, synchronous_commit: durability === 'full' ? 'on' : 'off' } });
  const zeroHex = zero.toString('hex');
  const t = performance.now();
  let seq = 1;
  for (let i = 0; i < records.length; i += BATCH) {
    const rows = records.slice(i, i + BATCH);
    const col = (f) => rows.map(f);
    await sql.begin(async (tx) => {
      await tx`INSERT INTO microtransactions (seq, work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us,
          bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash, cycle, price_micros, split_bps, developer, operator, charity, tokens, parts)
        SELECT s, w, a, eu, ds, ti, mi, nd, ra, qu, ex, cu, bi, bo, st, rh, at, 2, decode(${zeroHex}, 'hex'), decode(${zeroHex}, 'hex'), 1, pm, '7000/2000/900/100', dv, op, ch, pm, '1/1/1/1'
        FROM unnest(${col(() => seq++)}::bigint[], ${col((r) => r.workId)}::text[], ${col((r) => r.account)}::text[], ${col((r) => r.endUser)}::text[],
          ${col((r) => r.dservice)}::text[], ${col((r) => r.tier)}::text[], ${col((r) => r.miner)}::text[], ${col((r) => r.node)}::text[],
          ${col((r) => r.receivedAt)}::bigint[], ${col((r) => r.queueUs)}::bigint[], ${col((r) => r.execUs)}::bigint[], ${col((r) => r.cpuUs)}::bigint[],
          ${col((r) => r.bytesIn)}::bigint[], ${col((r) => r.bytesOut)}::bigint[], ${col((r) => r.status)}::int[], ${col((r) => r.resultHash)}::text[],
          ${col((r) => r.attempts)}::int[], ${col((r) => r.pricing.priceMicros.toString())}::numeric[], ${col((r) => r.pricing.developer)}::text[],
          ${col((r) => r.pricing.operator)}::text[], ${col((r) => r.pricing.charity)}::text[])
          AS t(s, w, a, eu, ds, ti, mi, nd, ra, qu, ex, cu, bi, bo, st, rh, at, pm, dv, op, ch)
        ON CONFLICT (work_id) DO NOTHING`;
    });
  }
  const s = (performance.now() - t) / 1000;
  await sql.end();
  return { rps: records.length / s };
}

/** PostgreSQL: the same rows through COPY FROM STDIN (what the store uses), one transaction per batch. */
async function pgRawCopy(url, schema, durability, records) {
  const store = await PostgresLedgerStore.open({ url, schema, durability });
  await store.close();
  const sql = postgres(url, { max: 1, onnotice: () => {}, connection: { search_path: schema, synchronous_commit: durability === 'full' ? 'on' : 'off' } });
  const zeroHex = `\\\\x${zero.toString('hex')}`;
  const t = performance.now();
  let seq = 1;
  for (let i = 0; i < records.length; i += BATCH) {
    const rows = records.slice(i, i + BATCH);
    let text = '';
    for (const r of rows) {
      text += `${seq++}\t${r.workId}\t${r.account}\t${r.endUser ?? '\\N'}\t${r.dservice}\t${r.tier}\t${r.miner}\t${r.node}\t${r.receivedAt}\t${r.queueUs}\t${r.execUs}\t${r.cpuUs}\t` +
        `${r.bytesIn}\t${r.bytesOut}\t${r.status}\t${r.resultHash}\t${r.attempts}\t2\t${zeroHex}\t${zeroHex}\t1\t${r.pricing.priceMicros}\t7000/2000/900/100\t` +
        `${r.pricing.developer}\t${r.pricing.operator}\t${r.pricing.charity}\t${r.pricing.priceMicros}\t1/1/1/1\n`;
    }
    await sql.begin(async (tx) => {
      const w = await tx`COPY microtransactions (seq, work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us,
          bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash, cycle, price_micros, split_bps, developer, operator, charity, tokens, parts) FROM STDIN`.writable();
      await pipeline(Readable.from([text]), w);
    });
  }
  const s = (performance.now() - t) / 1000;
  await sql.end();
  return { rps: records.length / s };
}

const round = (x) => Math.round(x);
const ratio = (a, b) => Number((a / b).toFixed(3));
const results = { measuredAt: new Date().toISOString(), node: process.version, records: N, batchSize: BATCH, loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))) };

// ---- SQLite ingest (warm up, then best of 2, alternating writer and raw)
if (SECTIONS.has('sqlite')) {
  await writerRun(openLedger({ path: freshPath(), writer: { maxBatchSize: BATCH } }), makeRecords(20_000, 'warm'));
  sqliteRaw(makeRecords(20_000, 'warmraw'));
  let w = { rps: 0, cpuRps: 0 };
  let r = { rps: 0, cpuRps: 0 };
  for (let run = 0; run < 2; run++) {
    const wr = await writerRun(openLedger({ path: freshPath(), durability: 'normal', writer: { maxBatchSize: BATCH } }), makeRecords(N, `s${run}`));
    const rr = sqliteRaw(makeRecords(N, `sr${run}`));
    if (wr.rps > w.rps) w = { ...wr, cpuRps: Math.max(w.cpuRps, wr.cpuRps) };
    else w.cpuRps = Math.max(w.cpuRps, wr.cpuRps);
    if (rr.rps > r.rps) r = { ...rr, cpuRps: Math.max(r.cpuRps, rr.cpuRps) };
    else r.cpuRps = Math.max(r.cpuRps, rr.cpuRps);
  }
  results.sqlite = {
    durability: 'normal (WAL, synchronous=NORMAL)', writerRps: round(w.rps), rawRps: round(r.rps), ratio: ratio(w.rps, r.rps), bar: 100_000, meetsBar: w.rps >= 100_000,
    ratioBar: 0.8, meetsRatioBar: w.rps / r.rps >= 0.8, writerCpuRps: round(w.cpuRps), rawCpuRps: round(r.cpuRps), cpuRatio: ratio(w.cpuRps, r.cpuRps),
  };
  console.log(`SQLite ingest: writer ${round(w.rps)} rec/s, raw ${round(r.rps)} rec/s, ratio ${ratio(w.rps, r.rps)} (per CPU second: writer ${round(w.cpuRps)}, raw ${round(r.cpuRps)}, ratio ${ratio(w.cpuRps, r.cpuRps)})`);
}

// ---- PostgreSQL ingest
const pgAvailable = WITH_PG && findPostgresBin() !== null;
if (pgAvailable && (SECTIONS.has('postgres') || SECTIONS.has('pgclose'))) cluster = await startPostgresCluster({ fsync: true });
if (pgAvailable && SECTIONS.has('postgres')) {
  results.postgres = {};
  let k = 0;
  for (const durability of ['normal', 'full']) {
    const w0 = await openPostgresLedger({ url: cluster.url, schema: `bw${k}`, durability, writer: { maxBatchSize: BATCH } });
    await writerRun(w0, makeRecords(20_000, `pw${k}`));
    await pgRaw(cluster.url, `br${k}`, durability, makeRecords(20_000, `pr${k}`));
    k++;
    const wl = await openPostgresLedger({ url: cluster.url, schema: `bw${k}`, durability, writer: { maxBatchSize: BATCH } });
    const w = await writerRun(wl, makeRecords(N, `pw${k}`));
    const r = await pgRaw(cluster.url, `br${k}`, durability, makeRecords(N, `pr${k}`));
    const c = await pgRawCopy(cluster.url, `bc${k}`, durability, makeRecords(N, `pc${k}`));
    k++;
    results.postgres[durability] = {
      synchronousCommit: durability === 'full' ? 'on' : 'off', writerRps: round(w.rps),
      rawInsertRps: round(r.rps), rawCopyRps: round(c.rps), ratioToRawInsert: ratio(w.rps, r.rps), ratioToRawCopy: ratio(w.rps, c.rps),
      bar: 30_000, meetsBar: w.rps >= 30_000, ratioToRawCopyBar: 0.8, meetsRatioToRawCopyBar: w.rps / c.rps >= 0.8,
    };
    console.log(`PostgreSQL ingest (${durability}, synchronous_commit=${durability === 'full' ? 'on' : 'off'}): writer ${round(w.rps)} rec/s; raw multi-row INSERT ${round(r.rps)} rec/s (ratio ${ratio(w.rps, r.rps)}), raw COPY ${round(c.rps)} rec/s (ratio ${ratio(w.rps, c.rps)})`);
  }
} else if (SECTIONS.has('postgres')) {
  results.postgres = { skipped: WITH_PG ? 'PostgreSQL server binaries not installed' : 'LEDGER_BENCH_PG=0' };
  console.log(`PostgreSQL: skipped (${results.postgres.skipped})`);
}

// ---- Closing a cycle of CYCLE records (SQLite)
// The same filled file is closed twice (copies): batch trees on a worker thread (the store's
// default for a cycle this size) and on the reading thread. Besides wall and process CPU time
// (both threads), the reading thread's own CPU time and the time it sat runnable waiting for a
// core (/proc/thread-self/schedstat, Linux): on a loaded machine the wait is the machine's, not
// the close's, and wall minus it is what the close takes on free cores.
const SCHEDSTAT = '/proc/thread-self/schedstat';
const schedstat = () => {
  try {
    const [cpuNs, waitNs] = readFileSync(SCHEDSTAT, 'utf8').split(' ').map(Number);
    return { cpuMs: cpuNs / 1e6, waitMs: waitNs / 1e6 };
  } catch {
    return undefined;
  }
};
function closeOnce(path, treeWorkerFrom) {
  const store = new SqliteLedgerStore({ path, treeWorkerFrom });
  const s0 = schedstat();
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const s = store.closeCycle();
  const closeMs = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  const s1 = schedstat();
  const debits = store.debits(s.id).reduce((a, d) => a + d.tokens, 0n);
  const credits = store.credits(s.id).reduce((a, c) => a + c.tokens, 0n);
  if (debits !== credits || debits !== s.tokens) throw new Error('cycle does not balance');
  const out = {
    closeMs: round(closeMs), closeCpuMs: round((cpu.user + cpu.system) / 1000),
    ...(s0 && s1 ? { readerThreadCpuMs: round(s1.cpuMs - s0.cpuMs), readerRunQueueWaitMs: round(s1.waitMs - s0.waitMs), closeMsLessRunQueueWait: round(closeMs - (s1.waitMs - s0.waitMs)) } : {}),
    summary: s, accounts: store.debits(s.id).length, beneficiaries: store.credits(s.id).length, payouts: store.payouts(s.id).length,
  };
  store.close();
  return out;
}
if (SECTIONS.has('close')) {
  const path = freshPath();
  const store = new SqliteLedgerStore({ path });
  const t0 = performance.now();
  for (let i = 0; i < CYCLE; i += 100_000) store.appendBatch(makeRecords(Math.min(100_000, CYCLE - i), `c${i}`));
  const fillS = (performance.now() - t0) / 1000;
  store.close();
  const copy = freshPath();
  copyFileSync(path, copy);
  const w = closeOnce(path, 0);
  const h = closeOnce(copy, Infinity);
  if (w.summary.recordsRoot !== h.summary.recordsRoot || w.summary.tokens !== h.summary.tokens) throw new Error(`the two closes differ: ${w.summary.recordsRoot} ${w.summary.tokens} ${w.summary.records} vs ${h.summary.recordsRoot} ${h.summary.tokens} ${h.summary.records}`);
  const s = w.summary;
  const { summary: _w, ...worker } = w;
  const { summary: _h, accounts: _a, beneficiaries: _b, payouts: _p, ...inThread } = h;
  results.cycleClose = {
    store: 'sqlite', records: s.records, closeMs: worker.closeMs, closeCpuMs: worker.closeCpuMs, bar: 3_000, meetsBar: worker.closeMs < 3_000, loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))), batches: s.batches, batchSize: s.batchSize,
    treesOnWorker: worker, treesInThread: inThread,
    tokens: s.tokens.toString(), balanced: true, fillSeconds: Number(fillS.toFixed(1)),
  };
  const line = (x) => `${x.closeMs} ms wall, ${x.closeCpuMs} ms CPU` + (x.readerThreadCpuMs === undefined ? '' : ` (reading thread ${x.readerThreadCpuMs} ms CPU, ${x.readerRunQueueWaitMs} ms waiting for a core: wall less that wait ${x.closeMsLessRunQueueWait} ms)`);
  console.log(`Close cycle of ${s.records} records (${s.batches} batches, ${worker.payouts} payout leaves; debits == credits == ${s.tokens}):`);
  console.log(`  trees on a worker thread: ${line(worker)}`);
  console.log(`  trees on the reading thread: ${line(inThread)}`);
}

// ---- Closing a cycle of CYCLE records (PostgreSQL; opt-in). Wall time and this process's CPU
// time (the server's is not counted); trees on a worker thread (the default at this size).
if (SECTIONS.has('pgclose') && cluster !== undefined) {
  const store = await PostgresLedgerStore.open({ url: cluster.url, schema: 'close_bench', durability: 'normal' });
  const t0 = performance.now();
  for (let i = 0; i < CYCLE; i += 50_000) await store.appendBatch(makeRecords(Math.min(50_000, CYCLE - i), `pc${i}`));
  const fillS = (performance.now() - t0) / 1000;
  const s0 = schedstat();
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const s = await store.closeCycle();
  const closeMs = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  const s1 = schedstat();
  const debits = (await store.debits(s.id)).reduce((a, d) => a + d.tokens, 0n);
  if (debits !== s.tokens) throw new Error('PostgreSQL cycle does not balance');
  results.pgCycleClose = {
    measuredAt: new Date().toISOString(), store: 'postgres', records: s.records, closeMs: round(closeMs), clientCpuMs: round((cpu.user + cpu.system) / 1000), bar: 3_000, meetsBar: closeMs < 3_000,
    ...(s0 && s1 ? { readerThreadCpuMs: round(s1.cpuMs - s0.cpuMs), readerRunQueueWaitMs: round(s1.waitMs - s0.waitMs) } : {}),
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))), batches: s.batches, fillSeconds: Number(fillS.toFixed(1)),
  };
  console.log(`PostgreSQL close cycle of ${s.records} records: ${round(closeMs)} ms wall, ${results.pgCycleClose.clientCpuMs} ms CPU in this process (server not counted)` +
    (s0 && s1 ? `, reading thread ${results.pgCycleClose.readerThreadCpuMs} ms CPU, ${results.pgCycleClose.readerRunQueueWaitMs} ms waiting for a core` : ''));
  await store.close();
}

const file = join(ROOT, 'bench/results.json');
const all = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
// A run of some sections only keeps the last full run's time, load and sizes at the top.
if (!SECTIONS.has('sqlite')) for (const k of ['measuredAt', 'node', 'records', 'batchSize', 'loadAverageAtStart']) delete results[k];
all.ledger = { ...(all.ledger ?? {}), ...results };
writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
console.log(`ledger section written to ${file}`);
