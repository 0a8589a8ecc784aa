#!/usr/bin/env node
/**
 * Fair shares under a flood: a local network (`cgn dev --no-chain --no-central --plaintext` and its
 * two prepaid demo accounts; two miners running echo with 4 slots each, so that the flood waits in
 * the node's queue rather than in the miners) where account 1 keeps about 500 requests
 * queued (closed loop, `POST /echo/slow?ms=50`) while account 2 (the victim) sends the same request
 * one at a time. The victim's p50 latency under the flood divided by its p50 alone is
 * `scheduler.floodVictimP50Ratio` in bench/results.json (target <= 1.5; with one FIFO per
 * (DService, tier) the victim would wait behind the whole flood, ratio in the tens). Other keys of
 * results.json, and of its "scheduler" object, are kept.
 *
 * Run: npx tsc -b && node bench/scheduler-flood.mjs
 * Env: BENCH_FLOOD (requests kept outstanding by the flooder, default 500), BENCH_VICTIM (victim
 * requests per phase, default 150), BENCH_SLOW_MS (DService time per request, default 50; at 20 ms
 * the flood's 400 requests/s load the CPU of a small machine, which the victim feels too).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CGN_BIN = join(ROOT, 'packages/cli/dist/bin.js');
const FLOOD = Number(process.env.BENCH_FLOOD ?? 500);
const VICTIM = Number(process.env.BENCH_VICTIM ?? 150);
const SLOW_MS = Number(process.env.BENCH_SLOW_MS ?? 50);

const dir = join(ROOT, 'bench/.work/flood');
rmSync(dir, { recursive: true, force: true });
const dev = spawn(process.execPath, [CGN_BIN, 'dev', '--quiet', '--dir', dir, '--miners', '0', '--work-port', '0', '--miner-port', '0', '--dservice', 'echo', '--no-chain', '--no-central', '--plaintext'], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, CGN_LOG_LEVEL: 'warn' },
});
const miners = [];
const stop = (c) => new Promise((r) => (c.exitCode !== null ? r() : (c.once('exit', r), c.kill('SIGTERM'))));
const stopDev = async () => {
  await Promise.all(miners.map(stop));
  await stop(dev);
};
const SLOTS = 4;

const p50 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};
const p99 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)];
};

try {
  const info = await new Promise((res, rej) => {
    createInterface({ input: dev.stdout }).on('line', (l) => {
      try {
        const j = JSON.parse(l);
        if (j.event === 'ready') res(j);
      } catch { /* a log line */ }
    });
    dev.once('exit', (code) => rej(new Error(`cgn dev exited with ${code}`)));
  });
  if (!Array.isArray(info.apiKeys) || info.apiKeys.length < 2) throw new Error('cgn dev made one demo key; two are needed (dev.json apiKeys)');
  const [floodKey, victimKey] = info.apiKeys;
  for (let i = 1; i <= 2; i++) {
    miners.push(spawn(process.execPath, [CGN_BIN, 'miner', '--node', info.minerUrl, '--key', join(dir, `bench-miner-${i}.pem`), '--slots', String(SLOTS), '--dservice', join(ROOT, 'dservices/echo')], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, CGN_LOG_LEVEL: 'warn' },
    }));
  }
  const url = `${info.workUrl}echo/slow?ms=${SLOW_MS}`;
  const agent = new Agent({ connections: FLOOD + 16, pipelining: 0 });
  const send = async (key) => {
    const t0 = performance.now();
    const r = await request(url, { method: 'POST', body: 'x', headers: { authorization: `Bearer ${key}` }, dispatcher: agent });
    await r.body.arrayBuffer();
    if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
    return performance.now() - t0;
  };
  const victimRun = async () => {
    const out = [];
    for (let i = 0; i < VICTIM; i++) out.push(await send(victimKey));
    return out;
  };
  const status = async () => JSON.parse(await (await request(info.statusUrl, { dispatcher: agent })).body.text());

  for (let until = Date.now() + 60_000; (await status()).miners.length < 2; await new Promise((r) => setTimeout(r, 100))) {
    if (Date.now() > until) throw new Error('the two bench miners did not join within 60 s');
  }
  // warm up, then the victim alone
  for (let i = 0; i < 50; i++) await send(victimKey);
  const alone = await victimRun();

  // the flood: FLOOD requests kept outstanding (each answered one is sent again)
  let flooding = true;
  let floodDone = 0;
  let floodRefused = 0;
  const floodLoop = async () => {
    while (flooding) {
      try {
        await send(floodKey);
        floodDone++;
      } catch {
        floodRefused++;
      }
    }
  };
  const loops = Array.from({ length: FLOOD }, floodLoop);
  const until = Date.now() + 30_000;
  let depth = 0;
  while (Date.now() < until) {
    depth = Math.max(0, ...(await status()).queues.map((q) => q.depth));
    if (depth >= FLOOD * 0.8) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const queuedAtStart = depth;
  const underFlood = await victimRun();
  const queuedAtEnd = Math.max(0, ...(await status()).queues.map((q) => q.depth));
  flooding = false;
  await Promise.all(loops);
  await agent.close();

  const ratio = p50(underFlood) / p50(alone);
  const round = (x) => Math.round(x * 100) / 100;
  const result = {
    floodVictimP50Ratio: round(ratio),
    flood: {
      victimP50MsAlone: round(p50(alone)), victimP50MsUnderFlood: round(p50(underFlood)),
      victimP99MsAlone: round(p99(alone)), victimP99MsUnderFlood: round(p99(underFlood)),
      floodOutstanding: FLOOD, queuedAtStart, queuedAtEnd, floodAnswered: floodDone, floodRefused,
      victimRequests: VICTIM, dserviceMs: SLOW_MS, miners: 2, slotsPerMiner: SLOTS,
      target: 'floodVictimP50Ratio <= 1.5',
      at: new Date().toISOString(),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  const file = join(ROOT, 'bench/results.json');
  const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  previous.scheduler = { ...previous.scheduler, ...result };
  writeFileSync(file, `${JSON.stringify(previous, null, 2)}\n`);
  console.log(`wrote scheduler.floodVictimP50Ratio = ${result.floodVictimP50Ratio} to ${file}`);
} finally {
  await stopDev();
}
