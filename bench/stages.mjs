#!/usr/bin/env node
/**
 * CPU per request by stage of the node's request path, from a CPU profile of a load window
 * (bench/scale.mjs --profile DIR). Each sample goes to the stage of the innermost frame that names
 * one (a native frame such as `writev` goes to whoever called it: the tunnel's WebSocket sender or
 * the HTTP response); samples of Node's own machinery that no stage frame is under (streams, timers,
 * microtask queue) are `event loop`; `background` is what runs whatever the load (placement rounds,
 * heartbeats, the ack sweep), the profiler's own cost is left out.
 *
 *   node bench/stages.mjs <profile.cpuprofile> <requests>
 *
 * Prints one JSON line: µs of node CPU per request per stage, and the share of the busy time; and
 * of each stage the µs in native frames (nativeUsPerRequest: writev, SQLite, hashing).
 */
import { readFileSync } from 'node:fs';

const [file, requestsArg] = process.argv.slice(2);
const requests = Number(requestsArg);
if (!file || !(requests > 0)) {
  console.error('usage: node bench/stages.mjs <profile.cpuprofile> <requests>');
  process.exit(2);
}

/** In path order. A rule matches a frame by its script URL and, optionally, function name. */
/** Not the request path: placement rounds, heartbeats, the ack sweep, status snapshots (whatever they call). */
const BACKGROUND = (u, f) => /\/placement\/|scheduler\/dist|heartbeat-wheel|metrics\/node-metrics/.test(u) || (u.includes('tunnel/miner-endpoint') && f === 'beat') || (u.includes('/broker/') && ['minersOf', 'snapshot', 'sweep'].includes(f));
const RULES = [
  ['parse', (u, f) => u.includes('work-endpoint.js') && ['handle', 'accept', 'readBody', 'bearer', 'dserviceOf'].includes(f)],
  ['parse', (u) => /node:_http_(server|common|incoming)|http\/headers\.js|http\/edge\.js/.test(u) && !u.includes('edge.js')],
  ['auth', (u) => /auth\/api-keys|rate-limit/.test(u)],
  ['admission', (u, f) => /balance-guard|accounts\/quotas|idempotency/.test(u) || (u.includes('work-endpoint.js') && f === 'reserve')],
  ['queue', (u, f) => u.includes('/broker/') || (u.includes('work-endpoint.js') && f === 'run')],
  ['frame encode', (u) => /msgpackr\/pack|protocol\/dist\/(codec|frames|outbox)/.test(u)],
  ['tunnel write', (u) => /ws\/lib\/(sender|buffer-util)|send-parts/.test(u)],
  ['result decode', (u) => /ws\/lib\/receiver|msgpackr\/unpack|protocol\/dist\/validate|tunnel\/miner-endpoint/.test(u)],
  ['ledger record', (u) => /\/ledger\/dist|better-sqlite3|node\/dist\/(metering|billing|charge-bound)/.test(u)],
  ['response', (u) => /node:_http_outgoing|http\/(problem|edge)\.js|work-endpoint\.js/.test(u)],
  ['metrics & logs', (u) => /\/metrics\/|pino|sonic-boom/.test(u)],
];
const STAGES = ['background', 'parse', 'auth', 'admission', 'queue', 'frame encode', 'tunnel write', 'result decode', 'ledger record', 'response', 'metrics & logs', 'event loop', 'gc'];

const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const bgMemo = new Map();
function underBackground(id) {
  if (bgMemo.has(id)) return bgMemo.get(id);
  const n = byId.get(id);
  const bg = (n.callFrame.url !== '' && BACKGROUND(n.callFrame.url, n.callFrame.functionName)) || (parent.has(id) && underBackground(parent.get(id)));
  bgMemo.set(id, bg);
  return bg;
}
const stageOf = new Map();
function classify(id) {
  if (stageOf.has(id)) return stageOf.get(id);
  const n = byId.get(id);
  const name = n.callFrame.functionName;
  let stage;
  if (name === '(idle)') stage = 'idle';
  else if (name === '(garbage collector)') stage = 'gc';
  // The inspector answering Profiler.stop (serialising this very profile) runs on the main thread,
  // under node:inspector's post: the measurement's own cost, left out.
  else if (n.callFrame.url === 'node:inspector') stage = 'profiler';
  else if (underBackground(id)) stage = 'background';
  else {
    for (const [s, match] of RULES) if (n.callFrame.url && match(n.callFrame.url, name)) { stage = s; break; }
    if (stage === undefined) stage = parent.has(id) ? classify(parent.get(id)) : 'event loop';
  }
  stageOf.set(id, stage);
  return stage;
}
const us = new Map();
// Of each stage, the part in native code (a frame without a script: writev, better-sqlite3's run,
// a hash): a syscall's wall time, the woken peer's turn on this core included, is there, apart from
// the JavaScript of the stage.
const native = new Map();
for (let i = 0; i < p.samples.length; i++) {
  const s = classify(p.samples[i]);
  us.set(s, (us.get(s) ?? 0) + (p.timeDeltas[i] ?? 0));
  const f = byId.get(p.samples[i]).callFrame;
  if (f.url === '' && !f.functionName.startsWith('(')) native.set(s, (native.get(s) ?? 0) + (p.timeDeltas[i] ?? 0));
}
const busy = [...us].filter(([s]) => s !== 'idle' && s !== 'profiler').reduce((a, [, t]) => a + t, 0);
const perRequest = Object.fromEntries(STAGES.map((s) => [s, Math.round(((us.get(s) ?? 0) / requests) * 10) / 10]));
console.log(JSON.stringify({
  requests,
  busyUsPerRequest: Math.round((busy / requests) * 10) / 10,
  profilerUsPerRequest: Math.round(((us.get('profiler') ?? 0) / requests) * 10) / 10,
  idleShare: Math.round(((us.get('idle') ?? 0) / (busy + (us.get('idle') ?? 0))) * 1000) / 1000,
  usPerRequest: perRequest,
  nativeUsPerRequest: Object.fromEntries(STAGES.filter((s) => (native.get(s) ?? 0) > 0).map((s) => [s, Math.round((native.get(s) / requests) * 10) / 10])),
}));
