#!/usr/bin/env node
/**
 * Ingest micro-benchmark (not a test): records/s through GroupCommitWriter (validation, copy,
 * canonical encoding + sha256 chain, promise per record, one transaction per batch) against raw
 * batched inserts of the same rows into the same SQLite schema (a plain prepared INSERT in a
 * transaction per batch, constant hash bytes, no chain, no promises).
 *
 * Build first: `npx tsc -b packages/ledger`. Then: `node packages/ledger/bench/ingest.mjs`
 * Env: BENCH_RECORDS (default 200000), BENCH_BATCH (default 4096), BENCH_DURABILITY (normal|full),
 * BENCH_PRODUCERS (default 256: concurrent awaiting producers for the latency run), BENCH_RUNS (default 3; best run counts).
 * Prints one JSON object: { writerRps, rawRps, ratio, ... }.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openLedger, SqliteLedgerStore } from '@cgn/ledger';

const N = Number(process.env.BENCH_RECORDS ?? 200_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 4096);
const DURABILITY = process.env.BENCH_DURABILITY ?? 'normal';
const PRODUCERS = Number(process.env.BENCH_PRODUCERS ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const dir = mkdtempSync(join(tmpdir(), 'cgn-ledger-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const freshPath = () => join(dir, `l${files++}.sqlite`);

function makeRecords(n, tag) {
  const miner = 'a1'.repeat(32);
  const out = new Array(n);
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    out[i] = {
      workId: `w_${tag}_${i.toString(36)}`, account: `acct_${i % 97}`, endUser: i % 3 === 0 ? null : `user_${i % 1013}`,
      dservice: 'mediagen', tier: 'open', miner, node: 'eu-west-1', receivedAt: t0 + i, queueUs: i % 500,
      execUs: 1000 + (i % 9000), cpuUs: 900 + (i % 8000), bytesIn: 50_000 + i, bytesOut: 20_000 + i, status: 200,
      resultHash: 'f0'.repeat(32), attempts: 1,
    };
  }
  return out;
}

/** Saturated: every record in flight at once; the writer commits full batches back to back. */
async function writerRun(records) {
  const { writer, store } = openLedger({ path: freshPath(), durability: DURABILITY, writer: { maxBatchSize: BATCH } });
  writer.start();
  const t = performance.now();
  const all = new Array(records.length);
  for (let i = 0; i < records.length; i++) all[i] = writer.record(records[i]);
  await Promise.all(all);
  const s = (performance.now() - t) / 1000;
  if (store.count() !== records.length) throw new Error('writer lost records');
  const c = writer.counters;
  await writer.stop();
  return { rps: records.length / s, batches: c.batches };
}

/** The same rows, same schema and pragmas, plain prepared INSERT, one transaction per batch. */
function rawRun(records) {
  const path = freshPath();
  new SqliteLedgerStore({ path, durability: DURABILITY }).close(); // same schema
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${DURABILITY === 'full' ? 'FULL' : 'NORMAL'}`);
  const ins = db.prepare(`INSERT OR IGNORE INTO microtransactions
    (work_id, account, end_user, dservice, tier, miner, node, received_at, queue_us, exec_us, cpu_us,
     bytes_in, bytes_out, status, result_hash, attempts, format, prev_hash, hash)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const zero = Buffer.alloc(32);
  const tx = db.transaction((rows) => {
    for (const r of rows) {
      ins.run(r.workId, r.account, r.endUser, r.dservice, r.tier, r.miner, r.node, r.receivedAt, r.queueUs, r.execUs, r.cpuUs,
        r.bytesIn, r.bytesOut, r.status, r.resultHash, r.attempts, 1, zero, zero);
    }
  });
  const t = performance.now();
  for (let i = 0; i < records.length; i += BATCH) tx.immediate(records.slice(i, i + BATCH));
  const s = (performance.now() - t) / 1000;
  db.close();
  return { rps: records.length / s };
}

/** Realistic: PRODUCERS callers, each awaiting its record before sending the next. */
async function latencyRun(records) {
  const { writer } = openLedger({ path: freshPath(), durability: DURABILITY, writer: { maxBatchSize: BATCH } });
  writer.start();
  const lat = new Float64Array(records.length);
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: PRODUCERS }, async () => {
    for (let i = next++; i < records.length; i = next++) {
      const s = performance.now();
      await writer.record(records[i]);
      lat[i] = (performance.now() - s) * 1000;
    }
  }));
  const s = (performance.now() - t) / 1000;
  const c = writer.counters;
  await writer.stop();
  lat.sort();
  const pct = (p) => Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]);
  return { producers: PRODUCERS, rps: Math.round(records.length / s), avgBatch: Math.round(c.records / c.batches), p50Us: pct(0.5), p99Us: pct(0.99), maxUs: pct(1) };
}

// Warm up (JIT, page cache), then alternate so neither side gets a systematically better machine state.
await writerRun(makeRecords(20_000, 'warm'));
rawRun(makeRecords(20_000, 'warmraw'));
let writerBest = { rps: 0, batches: 0 };
let rawBest = { rps: 0 };
for (let run = 0; run < RUNS; run++) {
  const w = await writerRun(makeRecords(N, `w${run}`));
  const r = rawRun(makeRecords(N, `r${run}`));
  if (w.rps > writerBest.rps) writerBest = w;
  if (r.rps > rawBest.rps) rawBest = r;
}
const latency = await latencyRun(makeRecords(Math.min(N, 100_000), 'lat'));

console.log(JSON.stringify({
  writerRps: Math.round(writerBest.rps),
  rawRps: Math.round(rawBest.rps),
  ratio: Number((writerBest.rps / rawBest.rps).toFixed(3)),
  records: N,
  batchSize: BATCH,
  durability: DURABILITY,
  writerBatches: writerBest.batches,
  concurrent: latency,
  node: process.version,
  sqlite: new Database(':memory:').prepare('select sqlite_version() AS v').get().v,
}));
