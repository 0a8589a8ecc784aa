#!/usr/bin/env node
/**
 * Miners dropped for a late ack on a loaded machine, and the units run twice because of it: a node
 * (its own process) with a short ack timeout, real `cgn miner` processes running echo, and wrk on
 * the work endpoint; after each window, the node's counters (miners lost, units requeued, tunnels
 * lost to the heartbeat). Given several node builds (`--node-dist a,b`), the windows alternate
 * between them, so the machine's load hits them alike.
 *
 *   node bench/ack-load.mjs [--node-dist DIR,DIR] [--ack-ms 150] [--miners 4] [--seconds 15]
 *                           [--rounds 3] [--connections 16]
 *
 * The ack timeout is short (150 ms, against 2,000 ms by default) so that what a loaded CI machine
 * does to a 2 s deadline now and then shows within seconds. Prints one JSON line per window and a
 * summary per build (sums over the rounds).
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ROOT, children, luaScript } from './lib/ways.mjs';

const role = process.argv[2];
if (role === 'node') await serveNode(process.argv[3], Number(process.argv[4]));
else await main();

/** The node child: echo, any miner accepted, one API key; answers `counters` on stdin. */
async function serveNode(nodeDist, ackMs) {
  const { startNode } = await import(pathToFileURL(join(nodeDist, 'index.js')).href);
  const { pino } = await import('pino');
  const dataDir = mkdtempSync(join(tmpdir(), 'cgn-ack-load-'));
  const node = await startNode(
    { workPort: 0, minerPort: 0, dataDir, dservices: [join(ROOT, 'dservices/echo')], acceptAnyMiner: true, broker: { ackTimeoutMs: ackMs } },
    { log: pino({ level: 'warn' }, pino.destination('/dev/null')) },
  );
  const { key } = node.keys.create('ack-load');
  console.log(JSON.stringify({ workUrl: node.workUrl, minerUrl: node.minerUrl, apiKey: key }));
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line);
    if (cmd.op === 'counters') {
      const c = node.broker.counters;
      console.log(JSON.stringify({ minersLost: c.minersLost, requeued: c.requeued, completed: c.completed, heartbeatLost: node.status().counters.tunnels.heartbeatLost ?? null, miners: node.broker.snapshot().miners.length }));
    } else if (cmd.op === 'quit') {
      await node.stop(1000);
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    }
  }
  process.exit(0);
}

async function main() {
  const { values: opt } = parseArgs({
    options: {
      'node-dist': { type: 'string', default: join(ROOT, 'packages/node/dist') },
      'ack-ms': { type: 'string', default: '150' },
      miners: { type: 'string', default: '4' },
      seconds: { type: 'string', default: '15' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '16' },
    },
  });
  const dists = opt['node-dist'].split(',');
  const work = mkdtempSync(join(tmpdir(), 'cgn-ack-load-bench-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  const { generateMinerKey, exportMinerKey } = await import(pathToFileURL(join(ROOT, 'packages/protocol/dist/index.js')).href);
  const keys = Array.from({ length: Number(opt.miners) }, (_, i) => {
    const file = join(work, `miner-${i}.pem`);
    writeFileSync(file, exportMinerKey(generateMinerKey()), { mode: 0o600 });
    return file;
  });
  const totals = new Map(dists.map((d) => [d, { minersLost: 0, requeued: 0, completed: 0, heartbeatLost: 0 }]));
  for (let round = 1; round <= Number(opt.rounds); round++) {
    for (const dist of dists) {
      const row = await window(dist, keys, work, opt);
      const t = totals.get(dist);
      for (const k of Object.keys(t)) t[k] += row[k] ?? 0;
      console.log(JSON.stringify({ round, dist, ...row }));
    }
  }
  console.log(JSON.stringify({ summary: Object.fromEntries(totals), ackMs: Number(opt['ack-ms']), miners: Number(opt.miners), seconds: Number(opt.seconds), rounds: Number(opt.rounds) }));
  process.exit(0);
}

/** One node of `dist` with fresh miners under wrk for the window; its counters after. */
async function window(dist, keys, work, opt) {
  const node = spawn(process.execPath, [import.meta.filename, 'node', dist, opt['ack-ms']], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(node);
  const lines = createInterface({ input: node.stdout })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value);
  const info = await next();
  const miners = keys.map((key) => {
    const m = spawn(process.execPath, [join(ROOT, 'packages/cli/dist/bin.js'), 'miner', '--node', info.minerUrl, '--key', key, '--dservice', join(ROOT, 'dservices/echo')], { stdio: 'ignore', env: { ...process.env, CGN_LOG_LEVEL: 'warn' } });
    children.push(m);
    return m;
  });
  const ask = async () => (node.stdin.write('{"op":"counters"}\n'), next());
  for (let i = 0; (await ask()).miners < keys.length; i++) {
    if (i > 1200) throw new Error('bench: the miners did not join within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  const script = luaScript(work, 'ack-load', { headers: { Authorization: `Bearer ${info.apiKey}` } });
  const url = `${info.workUrl}echo/`;
  execFileSync('wrk', ['-t', '2', '-c', opt.connections, '-d', '2s', '-s', script, url], { encoding: 'utf8' }); // warm-up
  const before = await ask();
  const load0 = loadavg()[0];
  const out = execFileSync('wrk', ['-t', '2', '-c', opt.connections, '-d', `${opt.seconds}s`, '--latency', '-s', script, url], { encoding: 'utf8' });
  const after = await ask();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const ms = (p) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? Math.round(Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]] * 10) / 10 : null;
  };
  node.stdin.write('{"op":"quit"}\n');
  for (const m of miners) m.kill('SIGTERM');
  await new Promise((r) => node.once('exit', r));
  const d = (k) => (after[k] ?? 0) - (before[k] ?? 0);
  return { rps: Math.round(rps), p50Ms: ms(50), p99Ms: ms(99), minersLost: d('minersLost'), requeued: d('requeued'), completed: d('completed'), heartbeatLost: d('heartbeatLost'), loadavg: Math.round(load0 * 10) / 10 };
}
