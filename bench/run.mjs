#!/usr/bin/env node
/**
 * `npm run bench`: each workload four ways in one run on this machine — direct to a DService
 * instance, through nginx in front of the same instance, through `relay` (bench/relay.mjs: two
 * processes where the node and the miner sit, forwarding bytes and nothing else, to an
 * instance of its own over its DService link) and through CGN (node + miner + the same DService). Load comes
 * from wrk in its own process. Prints a table and writes bench/results.json.
 *
 * Workloads: `echo` (tiny payload) and `mediagen` (1200x900 JPEG -> 400 px wide WebP).
 *
 * The ways are measured in rounds, interleaved (direct, nginx, relay, CGN, direct, ...), and
 * each way's figure is its median over the rounds. The speed of this shared VM drifts by ±10% within
 * a minute; one measurement per way taken a minute apart compares the drift as much as the ways.
 * A ratio is the median of the per-round ratios (each from measurements seconds apart). Latency at
 * one connection alternates the ways request by request (bench/alternate.mjs).
 *
 * The TLS ways (results.tls), in the same run: CGN over TLS (HTTPS to the node, WSS to its miner)
 * against the DService serving HTTPS itself (direct-tls) and nginx terminating TLS in front of it
 * (nginx-tls). The plain ways run against a network started with --plaintext.
 *
 * Env: BENCH_DURATION (s per measurement, default 8), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS
 * (default 32), BENCH_WARMUP (s before the first round, default 5), BENCH_ROUND_WARMUP (s before
 * each measurement, default 2), BENCH_WORKLOADS (comma-separated, e.g. `mediagen`; default all),
 * BENCH_CAP=0 (the direct, nginx and relay ways' DServices uncapped; default: the CPU they declare, as
 * a miner's sandbox gives them).
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, existsSync, rmSync, rmdirSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { ROOT, children, freePort, luaScript as luaScriptIn, startDService as spawnDService, startRelay, waitHttp as waitHttpWith } from './lib/ways.mjs';

const WORK = join(ROOT, 'bench/.work');
const DURATION = Number(process.env.BENCH_DURATION ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
// Load before each measurement, the same for every way: long enough for the JIT of the node and
// the miner to settle (their throughput still climbs after 2 s; a lone DService settles sooner).
const WARMUP = Number(process.env.BENCH_WARMUP ?? 5);
// Before each round's measurement, the same way again for this long: each way sat idle while the
// others were measured, and every way is measured warm.
const ROUND_WARMUP = Number(process.env.BENCH_ROUND_WARMUP ?? 2);
const CGN_BIN = join(ROOT, 'packages/cli/dist/bin.js');

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
if (!has('wrk')) {
  console.error('bench: wrk is not installed (apt-get install wrk)');
  process.exit(2);
}
rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });

/** Fetch options that trust the local network's CA (null: plaintext). */
let tlsDispatcher = null;
async function trustCa(caFile) {
  const { Agent } = await import('undici');
  tlsDispatcher = new Agent({ connect: { ca: readFileSync(caFile) } });
}

const waitHttp = (url, headers = {}) => waitHttpWith(url, headers, tlsDispatcher);

/**
 * The CPU a DService declares (dservice.json resources.cpus) is all a miner lets it use: its sandbox
 * puts the instance in a cgroup with that CPU quota. The direct, nginx and relay ways' instances get
 * the same quota here, so every way runs the DService on the same CPU and the ratios compare the ways,
 * not a capped instance with an uncapped one (on this 2-core VM MediaGen declares 1 CPU: uncapped,
 * direct used both cores and CGN looked half as fast). BENCH_CAP=0 leaves them uncapped. Needs a
 * writable cgroup cpu controller (root here); without one the ways run uncapped and the results say so.
 */
const CAP = process.env.BENCH_CAP !== '0';
const CPU_PERIOD_US = 100_000;
const capDirs = [];
let capState = CAP ? 'capped as declared' : 'uncapped (BENCH_CAP=0)';
/** Cgroups of earlier runs whose processes are gone (the exit hook cannot remove one still in use). */
function sweepCapDirs(root) {
  try {
    for (const d of readdirSync(root)) if (d.startsWith('cgn-bench-')) try { rmdirSync(join(root, d)); } catch { /* in use */ }
  } catch { /* no such controller */ }
}
let swept = false;
function capLikeMiner(pid, name) {
  if (!CAP) return;
  if (!swept) {
    swept = true;
    sweepCapDirs('/sys/fs/cgroup');
    sweepCapDirs('/sys/fs/cgroup/cpu');
  }
  try {
    const cpus = JSON.parse(readFileSync(join(ROOT, 'dservices', name, 'dservice.json'), 'utf8')).resources?.cpus;
    if (typeof cpus !== 'number' || !(cpus > 0)) return;
    const quota = String(Math.round(cpus * CPU_PERIOD_US));
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    const dir = v2 ? `/sys/fs/cgroup/cgn-bench-${pid}` : `/sys/fs/cgroup/cpu/cgn-bench-${pid}`;
    mkdirSync(dir, { recursive: true });
    if (v2) writeFileSync(join(dir, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
    else {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), quota);
    }
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    capDirs.push(dir);
  } catch (err) {
    capState = `uncapped (no writable cgroup cpu controller: ${err.code ?? err.message})`;
  }
}
process.on('exit', () => {
  for (const d of capDirs) try { rmdirSync(d); } catch { /* still has a process: the OS keeps it */ }
});

/** A DService instance under the CPU quota it declares (see capLikeMiner). */
function startDService(name, port, linkSocket, tls = null) {
  const c = spawnDService(name, port, linkSocket, tls);
  capLikeMiner(c.pid, name);
  return c;
}

function startNginx(listen, upstreamPort, tls = null) {
  const dir = join(WORK, `nginx-${listen}`);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const conf = `
worker_processes 1;
daemon off;
error_log ${dir}/logs/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  client_max_body_size 50m;
  client_body_buffer_size 1m;
  upstream backend { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${listen}${tls ? ' ssl' : ''};${tls ? `
    ssl_certificate ${tls.certFile};
    ssl_certificate_key ${tls.keyFile};
    ssl_session_cache shared:SSL:1m;` : ''}
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const c = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(c);
  return c;
}

const luaScript = (name, spec) => luaScriptIn(WORK, name, spec);

function parseMs(s) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function wrk(url, script, connections, duration) {
  const out = execFileSync('wrk', ['-t', connections > 1 ? '2' : '1', '-c', String(connections), '-d', `${duration}s`, '--latency', '-s', script, url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = parseMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = parseMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const errors = /Socket errors:.*/.exec(out)?.[0] ?? null;
  if (non2xx > 0) console.error(`bench: ${non2xx} non-2xx responses from ${url}`);
  return { rps: Math.round(rps), p50Ms: p50, p99Ms: p99, non2xx, ...(errors ? { socketErrors: errors } : {}) };
}

function warm(label, url, script) {
  process.stderr.write(`  ${label}: warm-up ${WARMUP} s\n`);
  wrk(url, script, CONNECTIONS, WARMUP);
}

function throughput(label, round, url, script) {
  process.stderr.write(`  ${label}: round ${round + 1}/${ROUNDS}, ${CONNECTIONS} connections… `);
  if (ROUND_WARMUP > 0) wrk(url, script, CONNECTIONS, ROUND_WARMUP);
  const r = wrk(url, script, CONNECTIONS, DURATION);
  process.stderr.write(`${r.rps} req/s\n`);
  return r;
}

/**
 * Latency at one connection: bench/alternate.mjs in its own process sends one request at a time,
 * direct and one other way alternating request by request, so the machine's drift hits both alike;
 * one such pair per way. In pairs because the DService instance behind a way runs cold when it
 * idles longer: all ways alternating at once, direct's instance (shared with nginx) would serve
 * twice per cycle and CGN's own instance once. Measured on MediaGen: the relay, alternating with
 * direct in front of direct's own instance, added 0.61 ms; with an instance of its own, 1.21 ms.
 * Returns, per way, its own figures and direct's from its pair.
 */
function lightLoad(ways, bodyFile, apiKey, requests, warmup, caFile = null) {
  const direct = ways[0];
  const out = {};
  for (const x of ways) {
    if (x === direct) continue;
    process.stderr.write(`  latency at 1 connection, ${direct.way} and ${x.way} alternating, ${requests} requests each… `);
    const pair = [direct, x];
    const spec = {
      ways: pair.map((y) => ({ way: y.way, url: y.url, headers: y.way.startsWith('cgn') ? { authorization: `Bearer ${apiKey}` } : {} })),
      ...(bodyFile ? { bodyFile } : {}),
      ...(caFile ? { caFile } : {}),
      requests,
      warmup,
    };
    const r = JSON.parse(execFileSync(process.execPath, [join(ROOT, 'bench/alternate.mjs'), JSON.stringify(spec)], { encoding: 'utf8' }));
    out[x.way] = { ...r[x.way], [direct.way]: r[direct.way], addedP50Ms: round3(r[x.way].p50Ms - r[direct.way].p50Ms) };
    process.stderr.write(`${direct.way} p50 ${r[direct.way].p50Ms} ms, ${x.way} p50 ${r[x.way].p50Ms} ms\n`);
  }
  return out;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One way's figure over the rounds: the median of each number, and the rounds themselves. */
function summarize(rounds, light) {
  return {
    rps: Math.round(median(rounds.map((r) => r.rps))),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    lightP50Ms: light.p50Ms,
    lightP90Ms: light.p90Ms,
    rounds: rounds.map((r) => r.rps),
    ...(rounds.some((r) => r.non2xx > 0) ? { non2xx: rounds.reduce((n, r) => n + r.non2xx, 0) } : {}),
  };
}

const round3 = (x) => Math.round(x * 1000) / 1000;

function rssMb(pid) {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
    return Math.round((kb / 1024) * 10) / 10;
  } catch {
    return null;
  }
}

function childPids(pid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

function descendants(pid) {
  const all = [];
  for (const c of childPids(pid)) all.push(c, ...descendants(c));
  return all;
}

async function startCgn({ tls }) {
  const dir = join(WORK, tls ? 'cgn-tls' : 'cgn');
  const c = spawn(process.execPath, [CGN_BIN, 'dev', '--quiet', '--dir', dir, '--miners', '1', '--work-port', '0', '--miner-port', '0', '--dservice', 'echo', '--dservice', 'mediagen', '--no-chain', ...(tls ? [] : ['--plaintext'])], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CGN_LOG_LEVEL: 'warn' },
  });
  children.push(c);
  const rl = createInterface({ input: c.stdout });
  const ready = await new Promise((res, rej) => {
    rl.on('line', (l) => { try { const j = JSON.parse(l); if (j.event === 'ready') res(j); } catch { /* */ } });
    c.once('exit', (code) => rej(new Error(`cgn dev exited with ${code}`)));
  });
  return { proc: c, info: ready };
}

async function main() {
  const sharp = (await import(join(ROOT, 'dservices/mediagen/node_modules/sharp/lib/index.js')).catch(() => import('sharp'))).default;
  // A photo-like 1200x900 JPEG: gradient plus noise, so the encoder has real work.
  const noise = await sharp({ create: { width: 1200, height: 900, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).png().toBuffer();
  const jpeg = await sharp({ create: { width: 1200, height: 900, channels: 3, background: { r: 90, g: 140, b: 200 } } })
    .composite([{ input: noise, blend: 'overlay' }]).jpeg({ quality: 85 }).toBuffer();
  const jpegFile = join(WORK, 'photo-1200x900.jpg');
  writeFileSync(jpegFile, jpeg);

  const workloads = {
    echo: { dservice: 'echo', path: '/', body: null, lightRequests: 3000, lightWarmup: 300 },
    mediagen: { dservice: 'mediagen', path: '/transform?width=400&format=webp', body: jpegFile, lightRequests: 150, lightWarmup: 20 },
  };
  const only = (process.env.BENCH_WORKLOADS ?? '').split(',').filter((x) => x.length > 0);
  for (const name of Object.keys(workloads)) if (only.length > 0 && !only.includes(name)) delete workloads[name];
  const nginx = has('nginx');
  if (!nginx) console.error('bench: nginx not installed; the nginx column is skipped');

  const cgn = await startCgn({ tls: false });
  const { workUrl, apiKey, pids } = cgn.info;
  const statusUrl = cgn.info.statusUrl;
  await waitHttp(statusUrl);
  await new Promise((r) => setTimeout(r, 1500)); // let the network settle before reading idle memory
  const idle = {
    nodeMb: rssMb(pids.node),
    miners: pids.miners.map((p) => ({ minerMb: rssMb(p), dservicesMb: descendants(p).map(rssMb).filter((x) => x !== null) })),
  };

  const results = { gateway: {}, idleRss: idle, machine: { cpus: (await import('node:os')).availableParallelism(), node: process.version }, settings: { durationS: DURATION, warmupS: WARMUP, roundWarmupS: ROUND_WARMUP, rounds: ROUNDS, connections: CONNECTIONS } };
  for (const [name, w] of Object.entries(workloads)) {
    console.error(`workload ${name}`);
    const port = await freePort();
    const ds = startDService(w.dservice, port);
    await waitHttp(`http://127.0.0.1:${port}/healthz`);
    // The relay has an instance of its own, as CGN's miner has (see lightLoad).
    const relayDsPort = await freePort();
    const linkSocket = join(WORK, `${name}.link.sock`);
    const relayDs = startDService(w.dservice, relayDsPort, linkSocket);
    await waitHttp(`http://127.0.0.1:${relayDsPort}/healthz`);
    const relay = await startRelay(linkSocket);
    const plain = luaScript(`${name}-plain`, { bodyFile: w.body });
    const authed = luaScript(`${name}-cgn`, { bodyFile: w.body, headers: { Authorization: `Bearer ${apiKey}` } });
    const ways = [{ way: 'direct', url: `http://127.0.0.1:${port}${w.path}`, script: plain }];
    let ng = null;
    if (nginx) {
      const np = await freePort();
      ng = startNginx(np, port);
      await waitHttp(`http://127.0.0.1:${np}/healthz`);
      ways.push({ way: 'nginx', url: `http://127.0.0.1:${np}${w.path}`, script: plain });
    }
    ways.push({ way: 'relay', url: `http://127.0.0.1:${relay.port}${w.path}`, script: plain });
    ways.push({ way: 'cgn', url: `${workUrl}${w.dservice}${w.path}`, script: authed });
    for (const x of ways) warm(x.way, x.url, x.script);
    const rounds = Object.fromEntries(ways.map((x) => [x.way, []]));
    for (let i = 0; i < ROUNDS; i++) for (const x of ways) rounds[x.way].push(throughput(x.way, i, x.url, x.script));
    const r = {};
    const light = lightLoad(ways, w.body, apiKey, w.lightRequests, w.lightWarmup);
    for (const x of ways) r[x.way] = summarize(rounds[x.way], x.way === 'direct' ? light.cgn.direct : light[x.way]);
    ng?.kill('SIGTERM');
    relay.stop();
    relayDs.kill('SIGTERM');
    ds.kill('SIGTERM');
    const perRound = (way) => rounds[way].map((m, i) => m.rps / rounds.direct[i].rps);
    r.ratio = {
      cgnToDirect: round3(median(perRound('cgn'))),
      ...(r.nginx ? { nginxToDirect: round3(median(perRound('nginx'))) } : {}),
      relayToDirect: round3(median(perRound('relay'))),
      rounds: { cgnToDirect: perRound('cgn').map(round3), ...(r.nginx ? { nginxToDirect: perRound('nginx').map(round3) } : {}), relayToDirect: perRound('relay').map(round3) },
    };
    r.addedLightP50Ms = light.cgn.addedP50Ms;
    r.relayAddedLightP50Ms = light.relay.addedP50Ms;
    if (light.nginx) r.nginxAddedLightP50Ms = light.nginx.addedP50Ms;
    results.gateway[name] = r;
  }
  cgn.proc.kill('SIGINT');
  await new Promise((r) => cgn.proc.once('exit', r));
  results.tls = await measureTls(workloads);

  const rows = [];
  for (const [name, r] of Object.entries(results.gateway)) {
    for (const way of ['direct', 'nginx', 'relay', 'cgn']) {
      if (!r[way]) continue;
      rows.push({ workload: name, way, 'req/s': r[way].rps, 'p50 ms': r[way].p50Ms, 'p99 ms': r[way].p99Ms, 'p50 ms @1 conn': r[way].lightP50Ms, 'x direct': way === 'direct' ? 1 : r.ratio[`${way}ToDirect`], 'req/s by round': r[way].rounds.join(' ') });
    }
  }
  console.table(rows);
  console.log('added p50 latency at 1 connection (ms):', Object.fromEntries(Object.entries(results.gateway).map(([k, r]) => [k, r.addedLightP50Ms])));
  console.log('… by the relay way, the same processes doing nothing (ms):', Object.fromEntries(Object.entries(results.gateway).map(([k, r]) => [k, r.relayAddedLightP50Ms])));
  console.table(Object.entries(results.tls).flatMap(([name, r]) => ['direct-tls', 'nginx-tls', 'cgn-tls'].filter((w) => r[w]).map((way) => ({
    workload: name, way, 'req/s': r[way].rps, 'p50 ms': r[way].p50Ms, 'p99 ms': r[way].p99Ms, 'p50 ms @1 conn': r[way].lightP50Ms,
    'x direct-tls': way === 'direct-tls' ? 1 : r.ratio[`${way.replace('-tls', 'Tls')}ToDirectTls`],
  }))));
  console.log('idle RSS (MB):', JSON.stringify(idle));
  console.log(`DServices of the direct, nginx and relay ways: ${capState}`);
  results.settings.dserviceCpu = capState;
  const file = join(ROOT, 'bench/results.json');
  const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  writeFileSync(file, JSON.stringify({ ...previous, ...results, at: new Date().toISOString() }, null, 2) + '\n');
  console.log(`wrote ${file}`);
}

/**
 * The TLS ways: a network with TLS (HTTPS work endpoint, WSS tunnel), the DService serving HTTPS
 * itself, and nginx terminating TLS in front of a plain instance; one certificate (the network's,
 * for 127.0.0.1) for all three.
 */
async function measureTls(workloads) {
  console.error('TLS ways');
  const cgn = await startCgn({ tls: true });
  const { workUrl, apiKey, statusUrl, caFile } = cgn.info;
  await trustCa(caFile);
  await waitHttp(statusUrl);
  const pki = join(WORK, 'cgn-tls', 'pki');
  const tls = { certFile: join(pki, 'public.crt'), keyFile: join(pki, 'public.key') };
  const nginx = has('nginx');
  const out = {};
  for (const [name, w] of Object.entries(workloads)) {
    console.error(`workload ${name} over TLS`);
    const [tlsPort, plainPort] = [await freePort(), await freePort()];
    const dsTls = startDService(w.dservice, tlsPort, undefined, tls);
    const dsPlain = startDService(w.dservice, plainPort);
    await waitHttp(`https://127.0.0.1:${tlsPort}/healthz`);
    await waitHttp(`http://127.0.0.1:${plainPort}/healthz`);
    const plain = luaScript(`${name}-tls-plain`, { bodyFile: w.body });
    const authed = luaScript(`${name}-tls-cgn`, { bodyFile: w.body, headers: { Authorization: `Bearer ${apiKey}` } });
    const ways = [{ way: 'direct-tls', url: `https://127.0.0.1:${tlsPort}${w.path}`, script: plain }];
    let ng = null;
    if (nginx) {
      const np = await freePort();
      ng = startNginx(np, plainPort, tls);
      await waitHttp(`https://127.0.0.1:${np}/healthz`);
      ways.push({ way: 'nginx-tls', url: `https://127.0.0.1:${np}${w.path}`, script: plain });
    }
    ways.push({ way: 'cgn-tls', url: `${workUrl}${w.dservice}${w.path}`, script: authed });
    for (const x of ways) warm(x.way, x.url, x.script);
    const rounds = Object.fromEntries(ways.map((x) => [x.way, []]));
    for (let i = 0; i < ROUNDS; i++) for (const x of ways) rounds[x.way].push(throughput(x.way, i, x.url, x.script));
    const light = lightLoad(ways, w.body, apiKey, w.lightRequests, w.lightWarmup, caFile);
    const r = {};
    for (const x of ways) r[x.way] = summarize(rounds[x.way], x.way === 'direct-tls' ? light['cgn-tls']['direct-tls'] : light[x.way]);
    const perRound = (way) => rounds[way].map((m, i) => m.rps / rounds['direct-tls'][i].rps);
    r.ratio = {
      cgnTlsToDirectTls: round3(median(perRound('cgn-tls'))),
      ...(r['nginx-tls'] ? { nginxTlsToDirectTls: round3(median(perRound('nginx-tls'))) } : {}),
      rounds: { cgnTlsToDirectTls: perRound('cgn-tls').map(round3), ...(r['nginx-tls'] ? { nginxTlsToDirectTls: perRound('nginx-tls').map(round3) } : {}) },
    };
    r.addedLightP50Ms = light['cgn-tls'].addedP50Ms;
    if (light['nginx-tls']) r.nginxAddedLightP50Ms = light['nginx-tls'].addedP50Ms;
    out[name] = r;
    ng?.kill('SIGTERM');
    dsTls.kill('SIGTERM');
    dsPlain.kill('SIGTERM');
  }
  cgn.proc.kill('SIGINT');
  await new Promise((r) => cgn.proc.once('exit', r));
  return out;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
