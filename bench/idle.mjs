#!/usr/bin/env node
/**
 * Idle cost of a node with N connected miners: the node runs in a child process, this process
 * connects N protocol-speaking miners (real Ed25519 handshakes, pongs to every ping), waits for
 * them to settle, then reads the node's CPU time and event-loop delay over the idle window.
 *
 *   node bench/idle.mjs [--miners 1000] [--seconds 20] [--heartbeat-ms 5000] [--node-dist DIR]
 *
 * `--node-dist` is the `dist` directory of the node package to measure (default this clone's),
 * so a build of another commit can be compared. Prints one JSON line.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { decodeMessage, encodeMessage, frame, generateMinerKey, signChallenge } from '@cgn/protocol';

const ROOT = resolve(import.meta.dirname, '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}

if (process.argv[2] === 'serve') await serve(process.argv[3], Number(process.argv[4]));
else await main();

/** The child: a node on loopback; measures its own CPU over the window it is told. */
async function serve(nodeDist, heartbeatMs) {
  // node.js, not the package root: the root re-exports slashing (the chain client), which `cgn node` loads only when used.
  const { startNode } = await import(pathToFileURL(join(nodeDist, 'node.js')).href);
  const { pino } = await import('pino');
  const dataDir = mkdtempSync(join(tmpdir(), 'cgn-idle-'));
  const node = await startNode(
    { workPort: 0, minerPort: 0, dataDir, dservices: [join(ROOT, 'dservices/echo')], acceptAnyMiner: true, heartbeatMs },
    { log: pino({ level: 'info' }, pino.destination('/dev/null')) },
  );
  console.log(JSON.stringify({ minerUrl: node.minerUrl }));
  for await (const line of createInterface({ input: process.stdin })) {
    const seconds = Number(line);
    // How long the event loop stalls (a work request arriving then waits that long).
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - t0;
    delay.disable();
    const rssMb = Math.round(process.memoryUsage().rss / 1048576);
    const ms = (ns) => Math.round(ns / 1e4) / 100;
    console.log(JSON.stringify({ cpuPercent: ((cpu.user + cpu.system) / 1000 / wall) * 100, userMs: Math.round(cpu.user / 1000), systemMs: Math.round(cpu.system / 1000), rssMb, loopDelayMs: { p99: ms(delay.percentile(99)), max: ms(delay.max) } }));
    await node.stop(1000);
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  }
}

function connectMiner(url, stats) {
  const key = generateMinerKey();
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const send = (f) => ws.send(encodeMessage([f]));
  return new Promise((resolveReady, reject) => {
    ws.on('error', reject);
    ws.on('close', () => stats.closed++);
    ws.on('open', () => send(frame({ t: 'hello', publicKey: key.publicKey, agent: 'idle-bench' })));
    ws.on('message', (data) => {
      for (const f of decodeMessage(data)) {
        if (f.t === 'challenge') send(frame({ t: 'auth', signature: signChallenge(key, f.nonce, f.nodeId) }));
        else if (f.t === 'welcome') {
          send(frame({ t: 'advertise', tier: 'open', slots: 4, dservices: [{ name: 'echo', version: '0', digest: 'x' }], resources: { cpus: 1, memoryMb: 100 } }));
          resolveReady(ws);
        } else if (f.t === 'ping') {
          stats.pings++;
          send(frame({ t: 'pong', ts: f.ts }));
        }
      }
    });
  });
}

async function main() {
  const miners = Number(arg('miners', '1000'));
  const seconds = Number(arg('seconds', '20'));
  const heartbeatMs = Number(arg('heartbeat-ms', '5000'));
  const nodeDist = resolve(arg('node-dist', join(ROOT, 'packages/node/dist')));
  const child = spawn(process.execPath, [...(process.env['IDLE_NODE_ARGS'] ?? '').split(' ').filter(Boolean), import.meta.filename, 'serve', nodeDist, String(heartbeatMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const { minerUrl } = JSON.parse((await lines.next()).value);
  const stats = { pings: 0, closed: 0 };
  const t0 = performance.now();
  const sockets = [];
  for (let i = 0; i < miners; i += 100) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, miners - i) }, () => connectMiner(minerUrl, stats)))));
  }
  const connectMs = performance.now() - t0;
  // Let the joins' garbage and timers settle before measuring.
  await new Promise((r) => setTimeout(r, 3000));
  const pings0 = stats.pings;
  child.stdin.write(`${seconds}\n`);
  const result = JSON.parse((await lines.next()).value);
  const out = { miners, seconds, heartbeatMs, connectMs: Math.round(connectMs), pingsPerSecond: Math.round((stats.pings - pings0) / seconds), dropped: stats.closed, ...result, cpuPercent: Number(result.cpuPercent.toFixed(2)) };
  for (const ws of sockets) ws.terminate();
  console.log(JSON.stringify(out));
  process.exit(0);
}
