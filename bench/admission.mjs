#!/usr/bin/env node
/**
 * Where a miner's admission costs the node CPU, measured in one run (issue 18, 3: >= 5,000 joins/s
 * on one core means <= 200 us of node CPU per join). Three servers, each pinned to core 0 with a
 * load generator on core 1 opening N connections at most 100 at a time:
 *
 *   upgrade   an HTTP server and a ws WebSocketServer with the miner endpoint's options: TCP
 *             accept, the upgrade request, the 101 answer, and nothing else
 *   exchange  the same, plus the handshake's messages (three in, two out, each a few dozen bytes
 *             of MessagePack decoded and encoded): the transport floor of a join
 *   node      a real node (startNode, the V8 flags `cgn node` runs with) admitting real miners
 *             (Ed25519 challenge signed by the generator)
 *
 * and, in this process, the node's signature check alone (`verifyChallenge`: JWK import and
 * Ed25519 verify) over N distinct keys. Each figure is the server's CPU time (user + system,
 * process.cpuUsage) over the connect phase divided by N, so it holds up on a shared machine where
 * connections per second do not (the generator is often the slower side).
 *
 *   node bench/admission.mjs [--miners 2000] [--rounds 3]
 *
 * Prints one JSON line per round, then the medians.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const pinned = (cpu, argv) => (has('taskset') && cpus().length > cpu ? ['taskset', '-c', String(cpu), ...argv] : argv);
const protocol = () => import(pathToFileURL(join(ROOT, 'packages/protocol/dist/index.js')).href);

const role = process.argv[2];
if (role === 'server') await server(process.argv[3]);
else if (role === 'client') await client(process.argv[3], process.argv[4], Number(process.argv[5]));
else await main();

/** Answers `cpu-start` / `cpu-stop` on stdin with the CPU used between them. */
async function cpuLoop(url, stop) {
  console.log(JSON.stringify({ url }));
  let c0 = null;
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    if (cmd.op === 'cpu-start') c0 = process.cpuUsage();
    if (cmd.op === 'cpu-stop') {
      const c = process.cpuUsage(c0);
      console.log(JSON.stringify({ cpuUs: c.user + c.system }));
      continue;
    }
    if (cmd.op === 'quit') break;
    console.log('{}');
  }
  await stop();
  process.exit(0);
}

async function server(kind) {
  if (kind === 'node') {
    const { startNode } = await import(pathToFileURL(join(ROOT, 'packages/node/dist/index.js')).href);
    const { pino } = await import('pino');
    const dataDir = mkdtempSync(join(tmpdir(), 'cgn-admission-'));
    const node = await startNode(
      { workPort: 0, minerPort: 0, dataDir, dservices: [join(ROOT, 'dservices/echo')], acceptAnyMiner: true },
      { log: pino({ level: 'info' }, pino.destination('/dev/null')) },
    );
    return cpuLoop(node.minerUrl, async () => {
      await node.stop(1000);
      rmSync(dataDir, { recursive: true, force: true });
    });
  }
  const { WebSocketServer } = await import('ws');
  const { decodeMessage, encodeMessage, frame } = await protocol();
  const http = createServer({ headersTimeout: 5000, requestTimeout: 5000, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000 });
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 2 * 1024 * 1024, clientTracking: false });
  const nonce = new Uint8Array(32);
  wss.on('connection', (ws) => {
    if (kind !== 'exchange') return;
    let step = 0;
    ws.on('message', (data) => {
      decodeMessage(data);
      step++;
      if (step === 1) ws.send(encodeMessage([frame({ t: 'challenge', nonce, nodeId: 'node-local-1' })]));
      else if (step === 2) ws.send(encodeMessage([frame({ t: 'welcome', minerId: 'a'.repeat(64), heartbeatMs: 5000 })]));
    });
  });
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  return cpuLoop(`ws://127.0.0.1:${http.address().port}`, () => new Promise((r) => http.close(r)));
}

/** Opens n connections (at most 100 handshakes at once) and keeps them open; `kind` says how far each goes. */
async function client(kind, url, n) {
  const { WebSocket } = await import('ws');
  const { decodeMessage, encodeMessage, frame, generateMinerKey, signChallenge } = await protocol();
  const keys = Array.from({ length: n }, () => generateMinerKey());
  const open = [];
  const advertise = () => frame({ t: 'advertise', tier: 'open', slots: 4, dservices: [{ name: 'echo', version: '0', digest: 'x' }], resources: { cpus: 1, memoryMb: 100 } });
  const connect = (key) =>
    new Promise((done, fail) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      open.push(ws);
      ws.on('error', fail);
      ws.on('open', () => {
        if (kind === 'upgrade') return done();
        ws.send(encodeMessage([frame({ t: 'hello', publicKey: key.publicKey, agent: 'admission-bench' })]));
      });
      ws.on('message', (data) => {
        for (const f of decodeMessage(data)) {
          if (f.t === 'challenge') ws.send(encodeMessage([frame({ t: 'auth', signature: signChallenge(key, f.nonce, f.nodeId) })]));
          else if (f.t === 'welcome') {
            ws.send(encodeMessage([advertise()]));
            done();
          }
        }
      });
    });
  console.log('{}');
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    if (cmd.op === 'connect') {
      const t0 = performance.now();
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(100, n) }, async () => {
        while (next < n) await connect(keys[next++]);
      }));
      // The last advertisements reach the server before its clock stops.
      await new Promise((r) => setTimeout(r, 500));
      console.log(JSON.stringify({ ms: Math.round(performance.now() - t0) }));
    } else break;
  }
  for (const ws of open) ws.terminate();
  process.exit(0);
}

function child(argv) {
  const c = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: c.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    for (;;) {
      const { value, done } = await lines.next();
      if (done) throw new Error(`${argv.join(' ')} exited`);
      if (value.startsWith('{')) return JSON.parse(value);
    }
  };
  return { proc: c, next, ask: async (cmd) => (c.stdin.write(JSON.stringify(cmd) + '\n'), next()) };
}

async function joinCost(kind, n) {
  const { SERVER_V8_FLAGS } = await import(pathToFileURL(join(ROOT, 'packages/cli/dist/server-flags.js')).href);
  const s = child(pinned(0, [process.execPath, ...SERVER_V8_FLAGS, import.meta.filename, 'server', kind]));
  const { url } = await s.next();
  const c = child(pinned(1, [process.execPath, import.meta.filename, 'client', kind === 'node' ? 'exchange' : kind, url, String(n)]));
  await c.next();
  await s.ask({ op: 'cpu-start' });
  const { ms } = await c.ask({ op: 'connect' });
  const { cpuUs } = await s.ask({ op: 'cpu-stop' });
  c.proc.stdin.end();
  s.proc.stdin.write(JSON.stringify({ op: 'quit' }) + '\n');
  await Promise.all([s.proc, c.proc].map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)))));
  return { usPerJoin: Math.round(cpuUs / n), joinsPerSecond: Math.round(n / (ms / 1000)) };
}

async function verifyCost(n) {
  const { generateMinerKey, signChallenge, verifyChallenge } = await protocol();
  const nonce = new Uint8Array(32).fill(7);
  const signed = Array.from({ length: n }, () => {
    const key = generateMinerKey();
    return { pub: key.publicKey, sig: signChallenge(key, nonce, 'node-local-1') };
  });
  for (const s of signed.slice(0, 200)) verifyChallenge(s.pub, nonce, 'node-local-1', s.sig); // warm up
  const c0 = process.cpuUsage();
  for (const s of signed) if (!verifyChallenge(s.pub, nonce, 'node-local-1', s.sig)) throw new Error('a signature did not verify');
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / n) * 10) / 10;
}

async function main() {
  const n = Number(arg('miners', '2000'));
  const rounds = Number(arg('rounds', '3'));
  const rows = [];
  for (let r = 0; r < rounds; r++) {
    const row = { verifyUs: await verifyCost(n) };
    for (const kind of ['upgrade', 'exchange', 'node']) row[kind] = await joinCost(kind, n);
    console.log(JSON.stringify(row));
    rows.push(row);
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const m = {
    verifyUs: median(rows.map((r) => r.verifyUs)),
    upgradeUs: median(rows.map((r) => r.upgrade.usPerJoin)),
    exchangeUs: median(rows.map((r) => r.exchange.usPerJoin)),
    nodeUs: median(rows.map((r) => r.node.usPerJoin)),
  };
  console.log(JSON.stringify({ miners: n, rounds, median: { ...m, nodeJoinsPerCpuSecond: Math.round(1e6 / m.nodeUs), floorJoinsPerCpuSecond: Math.round(1e6 / (m.exchangeUs + m.verifyUs)) } }));
}
