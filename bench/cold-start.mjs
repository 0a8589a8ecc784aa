#!/usr/bin/env node
/**
 * Cold start (issue 16, 4): from a DService's package being available at the node (published) to
 * the first answer of a request for it, on a miner that was started without it and has never
 * fetched it. Each run: a fresh `cgn miner` process (new key, empty package cache) joins a node
 * that routes echo and MediaGen and has their packages; once the miner is in the pool and its
 * capability probe is done, one request is sent; the time to its answer covers placement, the
 * package download and digest check, unpacking, the sandboxed start and the health check. The
 * instance then goes idle and is stopped, a second request measures the start from the miner's
 * package cache, and the miner is stopped. p50/p99 over N runs per DService go into bench/results.json under
 * `scheduler.coldStartMs` (other keys are kept).
 *
 * Run: npx tsc -b && node bench/cold-start.mjs
 * Env: BENCH_COLD_RUNS (runs per DService, default 10).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CGN_BIN = join(ROOT, 'packages/cli/dist/bin.js');
const RUNS = Number(process.env.BENCH_COLD_RUNS ?? 10);
const { startNode } = await import(join(ROOT, 'packages/node/dist/index.js'));
const { exportMinerKey, generateMinerKey, minerIdOf } = await import(join(ROOT, 'packages/protocol/dist/index.js'));

const SAMPLE = readFileSync(join(ROOT, 'dservices/mediagen/examples/sample.jpg'));
const REQUESTS = {
  echo: { path: '/', body: Buffer.from('cold start'), ok: (b) => b.toString() === 'cold start' },
  mediagen: { path: '/transform?width=64&format=webp', body: SAMPLE, ok: (b) => b.length > 0 },
};

const waitFor = async (cond, what, timeoutMs = 60_000) => {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};

const dir = mkdtempSync(join(tmpdir(), 'cgn-cold-'));
const node = await startNode(
  // A short idle window: after the first answer the instance is stopped, and the second request
  // measures a cold start from the miner's package cache (no download).
  { workPort: 0, minerPort: 0, dataDir: join(dir, 'node'), dservices: [join(ROOT, 'dservices/echo'), join(ROOT, 'dservices/mediagen')], acceptAnyMiner: true, heartbeatMs: 1000, placement: { autoscale: { idleToZeroMs: 1000 } } },
  { log: pino({ level: 'silent' }) },
);
const { key: apiKey } = node.keys.create('bench');
const results = {};
try {
  for (const name of Object.keys(REQUESTS)) {
    const samples = [];
    const cachedSamples = [];
    for (let run = 0; run < RUNS; run++) {
      const key = generateMinerKey();
      const id = minerIdOf(key.publicKey);
      const mdir = mkdtempSync(join(dir, 'miner-'));
      const keyFile = join(mdir, 'miner.pem');
      writeFileSync(keyFile, exportMinerKey(key), { mode: 0o600 });
      const proc = spawn(process.execPath, [CGN_BIN, 'miner', '--node', node.minerUrl, '--key', keyFile], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CGN_LOG_LEVEL: 'warn' } });
      let stderr = '';
      proc.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
      try {
        await waitFor(() => node.broker.snapshot().miners.some((m) => m.id === id), 'the miner to join');
        await waitFor(() => node.placer.probes === null || node.placer.probes.resultOf(id) !== undefined, 'the capability probe');
        const r = REQUESTS[name];
        const timed = async () => {
          const t0 = performance.now();
          const res = await fetch(`${node.workUrl}${name}${r.path}`, { method: 'POST', body: r.body, headers: { authorization: `Bearer ${apiKey}`, 'cgn-deadline-ms': '120000' } });
          const body = Buffer.from(await res.arrayBuffer());
          const ms = performance.now() - t0;
          if (res.status !== 200 || !r.ok(body)) throw new Error(`${name}: ${res.status} ${body.toString().slice(0, 300)}\nminer: ${stderr}`);
          return ms;
        };
        const ms = await timed();
        samples.push(ms);
        // Idle: unplaced; then placed again from the cache.
        await waitFor(() => node.placer.controller.instances().length === 0 && node.broker.minersOf(name).length === 0, 'the idle instance to be stopped');
        const cached = await timed();
        cachedSamples.push(cached);
        process.stderr.write(`${name} run ${run + 1}/${RUNS}: ${ms.toFixed(0)} ms fetched, ${cached.toFixed(0)} ms from the cache\n`);
      } finally {
        proc.kill('SIGTERM');
        await new Promise((res) => (proc.exitCode !== null ? res() : proc.once('exit', res)));
        await waitFor(() => !node.broker.snapshot().miners.some((m) => m.id === id), 'the miner to leave');
      }
    }
    results[name] = {
      p50: Math.round(quantile(samples, 0.5)), p99: Math.round(quantile(samples, 0.99)), runs: samples.length, samplesMs: samples.map((x) => Math.round(x)),
      cached: { p50: Math.round(quantile(cachedSamples, 0.5)), p99: Math.round(quantile(cachedSamples, 0.99)), samplesMs: cachedSamples.map((x) => Math.round(x)) },
    };
  }
} finally {
  await node.stop(2000);
  rmSync(dir, { recursive: true, force: true });
}

const file = join(ROOT, 'bench/results.json');
const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
previous.scheduler = {
  ...previous.scheduler,
  coldStartMs: {
    ...results,
    measuredAt: new Date().toISOString(),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    what: 'request sent -> first answer, on a fresh miner (empty package cache) that joined without the DService: placement, download, digest check, unpack, sandboxed start, health check. cached: the same after the idle instance was stopped, from the miner\'s package cache',
  },
};
writeFileSync(file, `${JSON.stringify(previous, null, 2)}\n`);
console.log(JSON.stringify({ coldStartMs: results }));
