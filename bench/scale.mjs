#!/usr/bin/env node
/**
 * A node at scale: for each pool size N, one node (pinned to core 0 when taskset exists) and a load
 * generator process of N simulated miners that speak the real tunnel protocol (real Ed25519
 * handshakes, beats or pongs) and answer echo work themselves (ack and result in one message); wrk -c32 on
 * the work endpoint. Per N: req/s, p50, p99, the node's idle RSS, CPU and event-loop delay, the
 * connect (admission) time and rate with the node's CPU per join, and the spread of the work over
 * the miners (how many did 90% of it, how many did any) during the measured run.
 *
 *   node bench/scale.mjs [--miners 10,1000,10000] [--seconds 10] [--idle-seconds 10]
 *                        [--connections 32] [--node-dist DIR] [--profile DIR] [--no-write]
 *                        [--liveness beats,pings] [--heartbeat-ms 5000]
 *
 * `--liveness` says how the simulated miners keep their tunnels: `beats` (they say so in their
 * hello and beat as the node's welcome asks, as `cgn miner` does) and/or `pings` (an older miner:
 * the node pings it and it answers); each N runs once per kind, in the order given, so the two
 * compare in one run. `--heartbeat-ms` is the node's heartbeat interval (default its own, 5000).
 *
 * `--node-dist` is the `dist` directory of the node package to measure (default this clone's), so
 * a build of another commit can be compared. Writes `scale` in bench/results.json (read, modify,
 * write) unless --no-write; prints one JSON line per N. `--profile DIR` writes the node's CPU profile
 * of each measured load window to DIR/scale-<N>.cpuprofile (bench/stages.mjs reads it per stage), and
 * of the joins and the idle window to scale-<N>-connect.cpuprofile and scale-<N>-idle.cpuprofile.
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const ROOT = resolve(import.meta.dirname, '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
/** Runs `argv` pinned to `cpu` when taskset exists (and the machine has that core). */
const pinned = (cpu, argv) => (has('taskset') && cpus().length > cpu ? ['taskset', '-c', String(cpu), ...argv] : argv);

const role = process.argv[2];
if (role === 'node') await serveNode(process.argv[3], Number(process.argv[4] ?? 0));
else if (role === 'miners') await runMiners(process.argv[3], Number(process.argv[4]), process.argv[5] ?? 'beats');
else await main();

/** Reads one JSON command per stdin line and answers one JSON line; `handle` returns the answer. */
async function commandLoop(handle) {
  for await (const line of createInterface({ input: process.stdin })) {
    const out = await handle(JSON.parse(line));
    console.log(JSON.stringify(out ?? {}));
  }
  process.exit(0); // the bench went away: so does this child
}

/** The node child: a node on loopback with the echo DService and one API key. */
async function serveNode(nodeDist, heartbeatMs) {
  const { startNode } = await import(pathToFileURL(join(nodeDist, 'index.js')).href);
  const { pino } = await import('pino');
  const dataDir = mkdtempSync(join(tmpdir(), 'cgn-scale-'));
  const node = await startNode(
    { workPort: 0, minerPort: 0, dataDir, dservices: [join(ROOT, 'dservices/echo')], acceptAnyMiner: true, ...(heartbeatMs > 0 ? { heartbeatMs } : {}) },
    { log: pino({ level: 'info' }, pino.destination('/dev/null')) },
  );
  const { key } = node.keys.create('scale-bench');
  console.log(JSON.stringify({ workUrl: node.workUrl, minerUrl: node.minerUrl, apiKey: key }));
  let cpu0 = null;
  let served0 = new Map();
  let loadDelay = null;
  let gc = null;
  let gcObserver = null;
  let profiler = null;
  const completed = () => new Map(node.broker.snapshot().miners.map((m) => [m.id, m.completed]));
  await commandLoop(async (cmd) => {
    if (cmd.op === 'cpu-start') {
      cpu0 = process.cpuUsage();
      return {};
    }
    if (cmd.op === 'cpu-stop') {
      const c = process.cpuUsage(cpu0);
      return { cpuMs: (c.user + c.system) / 1000, miners: node.broker.snapshot().miners.length };
    }
    if (cmd.op === 'idle') {
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const idleGc = { count: 0, totalMs: 0 };
      const idleGcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) (idleGc.count++, (idleGc.totalMs += e.duration));
      });
      idleGcObserver.observe({ entryTypes: ['gc'] });
      const elu0 = performance.eventLoopUtilization();
      const tunnels = node.status().counters.tunnels;
      const l0 = { pings: tunnels.pings, beats: tunnels.beats ?? 0, beatsSent: tunnels.beatsSent ?? 0 };
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, cmd.seconds * 1000));
      const c = process.cpuUsage(c0);
      const wall = performance.now() - t0;
      const perS = (n) => Math.round((n / wall) * 1000);
      const elu = performance.eventLoopUtilization(elu0);
      delay.disable();
      idleGcObserver.disconnect();
      const ms = (ns) => Math.round(ns / 1e4) / 100;
      return {
        idleCpuPercent: Math.round(((c.user + c.system) / 1000 / wall) * 10000) / 100,
        // Liveness traffic during the idle window, per second: pings the node wrote (each answered by a pong), beats it read, beats it wrote.
        idleLivenessPerS: { pings: perS(tunnels.pings - l0.pings), beats: perS((tunnels.beats ?? 0) - l0.beats), beatsSent: perS((tunnels.beatsSent ?? 0) - l0.beatsSent) },
        idleCpuUs: { user: c.user, system: c.system },
        // Wall time the event loop spent in callbacks (counts time descheduled on a busy machine, so it can exceed the CPU figure), and the GCs.
        idleLoopUtilizationPercent: Math.round(elu.utilization * 10000) / 100,
        idleGc: { count: idleGc.count, totalMs: Math.round(idleGc.totalMs) },
        rssMb: Math.round(process.memoryUsage().rss / 1048576),
        heapUsedMb: Math.round(process.memoryUsage().heapUsed / 1048576),
        idleLoopDelayMs: { p99: ms(delay.percentile(99)), max: ms(delay.max) },
      };
    }
    if (cmd.op === 'mark') {
      served0 = completed();
      // Under load: how long the loop stalls, and how much of that is garbage collection.
      loadDelay = monitorEventLoopDelay({ resolution: 1 });
      loadDelay.enable();
      gc = { count: 0, totalMs: 0, maxMs: 0, byKind: {} };
      gcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          gc.count++;
          gc.totalMs += e.duration;
          gc.maxMs = Math.max(gc.maxMs, e.duration);
          const kind = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' }[e.detail?.kind] ?? String(e.detail?.kind);
          const k = (gc.byKind[kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
          k.count++;
          k.totalMs = Math.round((k.totalMs + e.duration) * 10) / 10;
          k.maxMs = Math.max(k.maxMs, Math.round(e.duration * 10) / 10);
        }
      });
      gcObserver.observe({ entryTypes: ['gc'] });
      return {};
    }
    if (cmd.op === 'spread') {
      const counts = [];
      for (const [id, n] of completed()) counts.push(n - (served0.get(id) ?? 0));
      counts.sort((a, b) => b - a);
      const total = counts.reduce((s, n) => s + n, 0);
      let acc = 0;
      let for90 = 0;
      while (for90 < counts.length && acc < 0.9 * total) acc += counts[for90++];
      loadDelay.disable();
      gcObserver.disconnect();
      const ms = (ns) => Math.round(ns / 1e4) / 100;
      return {
        placement: node.placer?.controller?.counters ?? null,
        lost: { miners: node.broker.counters.minersLost, heartbeat: node.status().counters.tunnels.heartbeatLost ?? null },
        units: total, minersFor90Percent: for90, minersWithAny: counts.filter((n) => n > 0).length, maxPerMiner: counts[0] ?? 0,
        loadLoopDelayMs: { p50: ms(loadDelay.percentile(50)), p99: ms(loadDelay.percentile(99)), max: ms(loadDelay.max) },
        gc: { count: gc.count, totalMs: Math.round(gc.totalMs), maxMs: Math.round(gc.maxMs * 10) / 10, byKind: gc.byKind },
      };
    }
    if (cmd.op === 'profile-start') {
      const { Session } = await import('node:inspector/promises');
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
      await profiler.post('Profiler.start');
      return {};
    }
    if (cmd.op === 'profile-stop') {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(cmd.file, JSON.stringify(profile));
      profiler.disconnect();
      return {};
    }
    if (cmd.op === 'quit') {
      await node.stop(1000);
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    }
    return { error: `unknown op ${cmd.op}` };
  });
}

/**
 * The load generator child: N protocol-speaking miners answering echo work themselves. With
 * `liveness` 'beats' they beat as `cgn miner` does (packages/miner/src/tunnel.ts): a check every half
 * `beatMs` on one of 10 wall-clock slots of it drawn at random, a beat when nothing went for 0.9
 * `beatMs`; here one timer at each slot's start checks that slot's miners.
 */
async function runMiners(minerUrl, n, liveness) {
  const { WebSocket } = await import('ws');
  const { decodeMessage, encodeMessage, frame, generateMinerKey, signChallenge } = await import('@cgn/protocol');
  const keys = Array.from({ length: n }, () => generateMinerKey()); // before the clock starts
  const stats = { closed: 0, pings: 0, beats: 0, nodeBeats: 0, work: 0, connectErrors: 0 };
  const beats = liveness === 'beats';
  const BEAT = encodeMessage([frame({ t: 'beat' })]);
  const SLOTS = 10;
  let buckets = null;
  const startBeats = (m, beatMs) => {
    if (buckets === null) {
      buckets = Array.from({ length: SLOTS }, () => []);
      const every = Math.max(SLOTS, Math.floor(beatMs / 2));
      const slotMs = Math.floor(every / SLOTS);
      // Each slot in turn, including any a late timer passed over (a real miner has a timer of its own).
      let last = -1;
      const tick = () => {
        const now = Date.now();
        const slot = Math.min(SLOTS - 1, Math.floor((now % every) / slotMs));
        for (let k = last < 0 ? slot : (last + 1) % SLOTS; slot !== last; k = (k + 1) % SLOTS) {
          for (const b of buckets[k]) {
            if (b.ws.readyState === b.ws.OPEN && now - b.lastSent >= 0.9 * beatMs) {
              b.lastSent = now;
              stats.beats++;
              b.ws.send(BEAT);
            }
          }
          if (k === slot) break;
        }
        last = slot;
        setTimeout(tick, slotMs - (Date.now() % slotMs) || slotMs).unref();
      };
      setTimeout(tick, slotMs - (Date.now() % slotMs)).unref();
    }
    buckets[Math.floor(Math.random() * SLOTS)].push(m);
  };
  const connect = (key) =>
    new Promise((resolveReady, reject) => {
      const ws = new WebSocket(minerUrl, { perMessageDeflate: false });
      const m = { ws, lastSent: 0 };
      const send = (frames) => ((m.lastSent = Date.now()), ws.send(encodeMessage(frames)));
      let ready = false;
      ws.on('error', (err) => (ready ? undefined : reject(err)));
      ws.on('close', () => (ready ? stats.closed++ : reject(new Error('closed during the handshake'))));
      // A handshake the node never finishes fails here and is tried again, instead of hanging the bench.
      const timer = setTimeout(() => {
        if (!ready) ws.terminate();
      }, 30_000);
      ws.on('open', () => send([frame({ t: 'hello', publicKey: key.publicKey, agent: 'scale-bench', ...(beats ? { beats: true } : {}) })]));
      ws.on('message', (data) => {
        for (const f of decodeMessage(data)) {
          if (f.t === 'work') {
            stats.work++;
            send([
              frame({ t: 'ack', id: f.id }),
              frame({ t: 'result', id: f.id, status: 200, headers: ['content-type', 'text/plain'], body: f.body, metering: { execUs: 1, cpuUs: 1 }, resultHash: new Uint8Array(32) }),
            ]);
          } else if (f.t === 'ping') {
            stats.pings++;
            send([frame({ t: 'pong', ts: f.ts })]);
          } else if (f.t === 'beat') stats.nodeBeats++;
          else if (f.t === 'challenge') send([frame({ t: 'auth', signature: signChallenge(key, f.nonce, f.nodeId) })]);
          else if (f.t === 'welcome') {
            send([frame({ t: 'advertise', tier: 'open', slots: 4, dservices: [{ name: 'echo', version: '0', digest: 'x' }], resources: { cpus: 1, memoryMb: 100 } })]);
            if (f.beatMs !== undefined) startBeats(m, f.beatMs);
            ready = true;
            clearTimeout(timer);
            resolveReady(ws);
          }
        }
      });
    });
  console.log(JSON.stringify({ ready: true }));
  await commandLoop(async (cmd) => {
    if (cmd.op === 'connect') {
      // At most 100 handshakes in flight: a real crowd arrives spread out, not as one SYN burst. A
      // refused or timed-out handshake is counted and tried again (3 times at most).
      const t0 = performance.now();
      let next = 0;
      const worker = async () => {
        while (next < keys.length) {
          const key = keys[next++];
          for (let attempt = 1; ; attempt++) {
            try {
              await connect(key);
              break;
            } catch (err) {
              stats.connectErrors++;
              if (attempt === 3) throw err;
            }
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(100, n) }, worker));
      const ms = performance.now() - t0;
      return { connectMs: Math.round(ms), connectPerSecond: Math.round(n / (ms / 1000)) };
    }
    if (cmd.op === 'stats') return { ...stats };
    if (cmd.op === 'quit') process.exit(0);
    return { error: `unknown op ${cmd.op}` };
  });
}

function child(argv, label) {
  const c = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: c.stdout })[Symbol.asyncIterator]();
  // Lines that are not JSON (e.g. --trace-gc output through SCALE_NODE_ARGS) go to stderr.
  const next = async () => {
    for (;;) {
      const { value, done } = await lines.next();
      if (done) throw new Error(`${label} exited`);
      if (value.startsWith('{')) return JSON.parse(value);
      process.stderr.write(`${label}: ${value}\n`);
    }
  };
  return { proc: c, next, ask: async (cmd) => (c.stdin.write(JSON.stringify(cmd) + '\n'), next()) };
}

/** The V8 flags `cgn node` runs with (packages/cli/src/server-flags.ts): the node measured here runs with them too. */
async function serverV8Flags() {
  const { SERVER_V8_FLAGS } = await import(pathToFileURL(join(ROOT, 'packages/cli/dist/server-flags.js')).href);
  return SERVER_V8_FLAGS;
}

function parseMs(s) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function wrk(url, apiKey, connections, seconds) {
  const script = join(tmpdir(), `cgn-scale-${process.pid}.lua`);
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = "hello, cgn"\nwrk.headers["Authorization"] = "Bearer ${apiKey}"\n`);
  const out = execFileSync(pinned(1, ['wrk'])[0], [...pinned(1, ['wrk']).slice(1), '-t', '1', '-c', String(connections), '-d', `${seconds}s`, '--latency', '-s', script, url], { encoding: 'utf8' });
  rmSync(script, { force: true });
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return {
    rps: Math.round(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])),
    p50Ms: parseMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ''),
    p99Ms: parseMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ''),
    ...(non2xx > 0 ? { non2xx } : {}),
    ...(/Socket errors:.*/.test(out) ? { socketErrors: /Socket errors:.*/.exec(out)[0] } : {}),
  };
}

async function measure(n, liveness, opts) {
  const nodeArgs = [...(await serverV8Flags()), ...(process.env.SCALE_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const node = child(pinned(0, [process.execPath, ...nodeArgs, import.meta.filename, 'node', opts.nodeDist, String(opts.heartbeatMs)]), 'node');
  const { workUrl, minerUrl, apiKey } = await node.next();
  const miners = child(pinned(1, [process.execPath, import.meta.filename, 'miners', minerUrl, String(n), liveness]), 'miners');
  await miners.next();
  if (opts.profile !== null) await node.ask({ op: 'profile-start' });
  await node.ask({ op: 'cpu-start' });
  const conn = await miners.ask({ op: 'connect' });
  const joined = await node.ask({ op: 'cpu-stop' });
  if (opts.profile !== null) await node.ask({ op: 'profile-stop', file: join(opts.profile, `scale-${n}-connect.cpuprofile`) });
  // Let the joins' garbage and timers settle before measuring idle.
  await new Promise((r) => setTimeout(r, 3000));
  if (opts.profile !== null) await node.ask({ op: 'profile-start' });
  const idle = await node.ask({ op: 'idle', seconds: opts.idleSeconds });
  if (opts.profile !== null) await node.ask({ op: 'profile-stop', file: join(opts.profile, `scale-${n}-idle.cpuprofile`) });
  const url = `${workUrl}echo/`;
  wrk(url, apiKey, opts.connections, opts.warmup);
  await node.ask({ op: 'mark' });
  if (opts.profile !== null) await node.ask({ op: 'profile-start' });
  await node.ask({ op: 'cpu-start' });
  const load = wrk(url, apiKey, opts.connections, opts.seconds);
  const loaded = await node.ask({ op: 'cpu-stop' });
  const profileFile = join(opts.profile ?? tmpdir(), `scale-${n}.cpuprofile`);
  if (opts.profile !== null) await node.ask({ op: 'profile-stop', file: profileFile });
  const spread = await node.ask({ op: 'spread' });
  const stages = opts.profile === null ? null : JSON.parse(execFileSync(process.execPath, [join(ROOT, 'bench/stages.mjs'), profileFile, String(spread.units)], { encoding: 'utf8' }));
  const mstats = await miners.ask({ op: 'stats' });
  node.proc.stdin.write(JSON.stringify({ op: 'quit' }) + '\n');
  miners.proc.stdin.write(JSON.stringify({ op: 'quit' }) + '\n');
  await Promise.all([node.proc, miners.proc].map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  return {
    miners: n,
    liveness,
    ...load,
    // Node CPU per answered request: unlike req/s, it holds up on a machine shared with other work.
    nodeCpuPerRequestUs: Math.round((loaded.cpuMs * 1000) / Math.max(1, spread.units)),
    rssIdleMb: idle.rssMb,
    heapUsedIdleMb: idle.heapUsedMb,
    idleCpuPercent: idle.idleCpuPercent,
    idleCpuUs: idle.idleCpuUs,
    idleLivenessPerS: idle.idleLivenessPerS,
    idleLoopUtilizationPercent: idle.idleLoopUtilizationPercent,
    idleGc: idle.idleGc,
    idleLoopDelayMs: idle.idleLoopDelayMs,
    connectMs: conn.connectMs,
    connectPerSecond: conn.connectPerSecond,
    nodeCpuPerJoinUs: Math.round((joined.cpuMs * 1000) / n),
    admissionPerCpuSecond: Math.round(n / (joined.cpuMs / 1000)),
    loadLoopDelayMs: spread.loadLoopDelayMs,
    gcUnderLoad: spread.gc,
    spread: { units: spread.units, minersFor90Percent: spread.minersFor90Percent, minersWithAny: spread.minersWithAny, maxPerMiner: spread.maxPerMiner },
    ...(stages !== null ? { stages } : {}),
    minersDropped: mstats.closed,
    minersLost: spread.lost,
    placementRounds: spread.placement,
    connectErrors: mstats.connectErrors,
    minerSide: { beats: mstats.beats, nodeBeats: mstats.nodeBeats, pings: mstats.pings },
  };
}

async function main() {
  const opts = {
    sizes: String(arg('miners', '10,1000,10000')).split(',').map(Number),
    seconds: Number(arg('seconds', '10')),
    idleSeconds: Number(arg('idle-seconds', '10')),
    warmup: Number(arg('warmup', '3')),
    connections: Number(arg('connections', '32')),
    nodeDist: resolve(arg('node-dist', join(ROOT, 'packages/node/dist'))),
    profile: arg('profile', null) === null ? null : resolve(arg('profile', null)),
    liveness: String(arg('liveness', 'beats')).split(','),
    heartbeatMs: Number(arg('heartbeat-ms', '0')),
  };
  for (const l of opts.liveness) if (l !== 'beats' && l !== 'pings') throw new Error(`--liveness: ${l} is neither beats nor pings`);
  if (!has('wrk')) {
    console.error('bench: wrk is not installed (apt-get install wrk)');
    process.exit(2);
  }
  const rows = [];
  for (const n of opts.sizes) {
    for (const liveness of opts.liveness) {
      process.stderr.write(`scale: ${n} miners (${liveness}), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}… `);
      const r = await measure(n, liveness, opts);
      r.loadAverage = loadavg().map((l) => Math.round(l * 10) / 10);
      process.stderr.write(`${r.rps} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, idle CPU ${r.idleCpuPercent}%, ${r.spread.minersFor90Percent} miners did 90%\n`);
      console.log(JSON.stringify(r));
      rows.push(r);
    }
  }
  if (process.argv.includes('--no-write')) return;
  const file = join(ROOT, 'bench/results.json');
  const all = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const base = rows.find((r) => r.miners === Math.min(...opts.sizes) && r.liveness === opts.liveness[0]);
  all.scale = {
    at: new Date().toISOString(),
    settings: { nodeV8Flags: (await serverV8Flags()).join(' '), liveness: opts.liveness, heartbeatMs: opts.heartbeatMs || 5000, connections: opts.connections, seconds: opts.seconds, idleSeconds: opts.idleSeconds, nodePinned: has('taskset') ? 'core 0' : 'no', minersAndWrk: has('taskset') ? 'core 1' : 'unpinned' },
    rows,
    ...(base ? { rpsVsSmallest: Object.fromEntries(rows.filter((r) => r.liveness === base.liveness).map((r) => [r.miners, Math.round((r.rps / base.rps) * 100) / 100])) } : {}),
  };
  writeFileSync(file, JSON.stringify(all, null, 2) + '\n');
}
