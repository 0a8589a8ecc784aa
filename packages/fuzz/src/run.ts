/**
 * The fuzz run: starts the network (a real node, a real miner with echo and MediaGen, and real
 * miners dialing hostile fake nodes), runs the cases of one seed with some in parallel, and checks
 * after every case and at the end:
 *
 * - no process crashed (node, miners, and so their DServices' supervisor);
 * - no request got a 500 or hung past its bound; other 5xx are counted;
 * - error frames carry bounded, escaped text; no log line of the node is longer than 10 kB;
 * - a canary request (MediaGen /info through the real miner) keeps being answered;
 * - the ledger holds exactly one record per answer that carried a cost: nothing charged that the
 *   DApp did not get;
 * - the node's memory stays bounded (reported: RSS at start, highest, end).
 *
 * Case `i` of seed `s` draws only from `new Rng(s, i)`, so `--seed s --case i` replays it alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exchange, type Exchange } from './http-client.js';
import { httpCase } from './http-cases.js';
import { imageCase, makeSeeds } from './image-cases.js';
import { MinerLane } from './miner-cases.js';
import { startFuzzNetwork, type FuzzNetwork } from './network.js';
import { Rng } from './rng.js';
import { ADVERTISING_PHASES, tunnelCase, tunnelCaseStart } from './tunnel-cases.js';
import { minerIdOf } from '@cgn/protocol';

export type CaseKind = 'http' | 'image' | 'tunnel' | 'miner';

export interface FuzzOptions {
  seed: number;
  cases: number;
  /** Run only this case (a replay). */
  only?: number;
  /** Cases in flight at once against the node (most of a case is waiting). Default 48. */
  concurrency?: number;
  /** Hostile-node lanes, each with its own real miner. Default 2. */
  minerLanes?: number;
  /** Called about once a second. */
  progress?: (p: FuzzProgress) => void;
  /**
   * Records beyond the answers clients got that are tolerated before the run fails. Default 0.
   * (A surplus of one record has been seen twice in 110,000 cases and is not yet explained; the
   * report always names the records no client saw.)
   */
  chargeTolerance?: number;
}

export interface FuzzProgress {
  done: number;
  total: number;
  failures: number;
  elapsedS: number;
}

export interface FuzzFailure {
  seed: number;
  case: number;
  kind: CaseKind;
  what: string;
  problem: string;
  replay: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  byKind: Record<CaseKind, number>;
  /** Mean milliseconds a case of each kind took. */
  meanMsByKind: Record<CaseKind, number>;
  durationS: number;
  crashes: number;
  hangs: number;
  status500: number;
  /** Answers by status class, and every 5xx status by code. */
  statusClasses: Record<string, number>;
  status5xx: Record<string, number>;
  /** Requests that got no answer at all (the connection closed): expected for broken framing. */
  noAnswer: number;
  tunnelCloses: number;
  charged: { answersWithCost: number; ledgerRecords: number; goneAfterCharge: number; surplus: number; unseen?: string };
  memory: { rssStartMb: number; rssMaxMb: number; rssEndMb: number; heapStartMb: number; heapMaxMb: number; heapEndMb: number };
  nodeLog: { bytes: number; longestLine: number };
  failures: FuzzFailure[];
}

/** The records of the ledger whose work id no client saw, described (read-only). */
function unseenRecords(path: string, seen: ReadonlySet<string>): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT work_id, dservice, tier, miner, status, bytes_in, bytes_out, attempts, exec_us, received_at FROM microtransactions').all() as { work_id: string }[];
    return JSON.stringify(rows.filter((r) => !seen.has(r.work_id)).slice(0, 10));
  } catch (err) {
    return `(could not read the ledger: ${(err as Error).message})`;
  } finally {
    db.close();
  }
}

/** Which kind case `i` is: drawn from its own generator first. */
export function kindOf(rng: Rng): CaseKind {
  return rng.weighted([[44, 'http'], [8, 'image'], [44, 'tunnel'], [4, 'miner']] as const);
}

const MB = 1024 * 1024;

/** The keys of the tunnel cases that advertise, which the node grants the dedicated tier (tiers are granted, never claimed). */
function dedicatedTunnelKeys(options: FuzzOptions): string[] {
  const ids: string[] = [];
  for (const i of options.only !== undefined ? [options.only] : Array.from({ length: options.cases }, (_, k) => k)) {
    const rng = new Rng(options.seed, i);
    if (kindOf(rng) !== 'tunnel') continue;
    const { phase, key } = tunnelCaseStart(rng);
    if (ADVERTISING_PHASES.includes(phase)) ids.push(minerIdOf(key.publicKey));
  }
  return ids;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const dir = mkdtempSync(join(tmpdir(), 'cgn-fuzz-'));
  const started = performance.now();
  const net = await startFuzzNetwork(dir, dedicatedTunnelKeys(options));
  const lanes = Array.from({ length: options.minerLanes ?? 2 }, (_, i) => new MinerLane(`lane-miner-${i}`, dir));
  await Promise.all(lanes.map((l) => l.start()));
  const seeds = await makeSeeds();
  const report: FuzzReport = {
    seed: options.seed, cases: 0, byKind: { http: 0, image: 0, tunnel: 0, miner: 0 }, meanMsByKind: { http: 0, image: 0, tunnel: 0, miner: 0 }, durationS: 0, crashes: 0, hangs: 0, status500: 0,
    statusClasses: {}, status5xx: {}, noAnswer: 0, tunnelCloses: 0, charged: { answersWithCost: 0, ledgerRecords: 0, goneAfterCharge: 0, surplus: 0 },
    memory: { rssStartMb: 0, rssMaxMb: 0, rssEndMb: 0, heapStartMb: 0, heapMaxMb: 0, heapEndMb: 0 }, nodeLog: { bytes: 0, longestLine: 0 }, failures: [],
  };
  const fail = (i: number, kind: CaseKind, what: string, problem: string): void => {
    if (report.failures.length >= 50) return;
    report.failures.push({ seed: options.seed, case: i, kind, what, problem, replay: `npm run fuzz -- --seed ${options.seed} --case ${i}` });
  };
  const memory = async (): Promise<{ rss: number; heap: number }> => {
    const n = (await net.status())['node'] as { rssBytes: number; heapUsedBytes: number };
    return { rss: n.rssBytes / MB, heap: n.heapUsedBytes / MB };
  };
  const m0 = await memory();
  report.memory.rssStartMb = report.memory.rssMaxMb = m0.rss;
  report.memory.heapStartMb = report.memory.heapMaxMb = m0.heap;

  /** Work ids of the charged answers the clients got (to name any record without one). */
  const seenWorkIds = new Set<string>();

  /** Counts an answer; true when it is a failure (500 or hang). */
  const count = (x: Exchange): string | null => {
    if (x.hung) {
      report.hangs++;
      return `no answer within ${Math.round(x.ms)} ms (hang)`;
    }
    if (x.status === null) {
      report.noAnswer++;
      return null;
    }
    const cls = `${Math.floor(x.status / 100)}xx`;
    report.statusClasses[cls] = (report.statusClasses[cls] ?? 0) + 1;
    // A DService's own answer (it carries a cost) may be any status; the node's never a 500.
    const fromDService = x.headers.has('cgn-cost');
    if (x.status >= 500) {
      const k = fromDService ? `${x.status} from the DService` : String(x.status);
      report.status5xx[k] = (report.status5xx[k] ?? 0) + 1;
    }
    if (fromDService && x.headers.get('idempotent-replayed') !== 'true') {
      report.charged.answersWithCost++;
      const id = x.headers.get('cgn-work-id');
      if (id !== undefined) seenWorkIds.add(id);
    }
    if (x.status === 500 && !fromDService) {
      report.status500++;
      return 'the node answered 500';
    }
    return null;
  };

  const dappRequest = async (body: Buffer, deadlineMs: number): Promise<number | null> => {
    const head = Buffer.from(`POST /v1/d/echo/ HTTP/1.1\r\nhost: fuzz\r\nauthorization: Bearer ${net.apiKey}\r\ncgn-tier: dedicated\r\ncgn-deadline-ms: ${deadlineMs}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`);
    const x = await exchange(net.workPort, { pieces: [head, body], timeoutMs: deadlineMs + 8000 });
    count(x);
    return x.hung ? null : (x.status ?? -1);
  };

  async function runCase(i: number): Promise<void> {
    const rng = new Rng(options.seed, i);
    const kind = kindOf(rng);
    report.byKind[kind]++;
    const t0 = performance.now();
    let what = '';
    try {
      if (kind === 'http' || kind === 'image') {
        const c = kind === 'http' ? httpCase(rng, net.apiKey) : imageCase(rng, seeds, net.apiKey);
        what = c.what;
        const x = await exchange(net.workPort, c.exchange);
        if (process.env['FUZZ_DEBUG'] !== undefined) process.stderr.write(`case ${i} ${kind} ${x.status} ${Math.round(x.ms)}ms ${c.what.slice(0, 100)}\n`);
        const problem = count(x);
        if (problem !== null) fail(i, kind, what, problem);
      } else if (kind === 'tunnel') {
        const o = await tunnelCase(rng, { minerUrl: net.minerUrl, dappRequest });
        what = o.what;
        if (o.closeCode !== undefined && o.closeCode >= 4000) report.tunnelCloses++;
        for (const p of o.problems) fail(i, kind, what, p);
      } else {
        const lane = lanes[i % lanes.length]!;
        const o = await lanes[i % lanes.length]!.runCase(rng);
        what = o.what;
        for (const p of o.problems) fail(i, kind, what, p);
        if (lane.miner.crashed) report.crashes++;
      }
    } catch (err) {
      fail(i, kind, what, `the fuzzer itself failed: ${(err as Error).stack ?? String(err)}`);
    }
    report.meanMsByKind[kind] += performance.now() - t0;
    report.cases++;
  }

  // The canary: a real request through the real miner, answered all along.
  const canaryImage = seeds[0]!;
  let canaryRunning = true;
  const canary = (async () => {
    let n = 0;
    while (canaryRunning) {
      const head = Buffer.from(`POST /v1/d/mediagen/info HTTP/1.1\r\nhost: fuzz\r\nauthorization: Bearer ${net.apiKey}\r\ncontent-length: ${canaryImage.length}\r\nconnection: close\r\n\r\n`);
      const x = await exchange(net.workPort, { pieces: [head, canaryImage], timeoutMs: 20_000 });
      count(x);
      if (x.status !== 200) fail(-1, 'http', `canary ${n}`, `the canary request got ${x.hung ? 'no answer' : x.status}`);
      n++;
      try {
        const m = await memory();
        report.memory.rssMaxMb = Math.max(report.memory.rssMaxMb, m.rss);
        report.memory.heapMaxMb = Math.max(report.memory.heapMaxMb, m.heap);
      } catch {
        /* the node is gone: the crash check says so */
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();

  // Miner-lane cases run on their lanes, one at a time each; the rest with `concurrency` in flight.
  const indices = options.only !== undefined ? [options.only] : Array.from({ length: options.cases }, (_, i) => i);
  const laneQueues: number[][] = lanes.map(() => []);
  const nodeQueue: number[] = [];
  for (const i of indices) {
    const k = kindOf(new Rng(options.seed, i));
    if (k === 'miner') laneQueues[i % lanes.length]!.push(i);
    else nodeQueue.push(i);
  }
  let crashed = false;
  const progressTimer = setInterval(() => {
    options.progress?.({ done: report.cases, total: indices.length, failures: report.failures.length, elapsedS: (performance.now() - started) / 1000 });
  }, 1000);
  const worker = async (queue: number[]): Promise<void> => {
    for (;;) {
      const i = queue.shift();
      if (i === undefined || crashed) return;
      await runCase(i);
      if (net.node.crashed || net.miner.crashed) {
        crashed = true;
        report.crashes++;
        const who = net.node.crashed ? net.node : net.miner;
        fail(i, 'http', 'after this case (or one running beside it)', `${who.name} process exited ${JSON.stringify(who.exit)}:\n${who.tail().slice(-2000)}`);
      }
    }
  };
  const concurrency = options.concurrency ?? 48;
  await Promise.all([
    ...Array.from({ length: Math.min(concurrency, Math.max(1, nodeQueue.length)) }, () => worker(nodeQueue)),
    ...laneQueues.map((q) => worker(q)),
  ]);
  clearInterval(progressTimer);
  canaryRunning = false;
  await canary;

  if (!crashed) {
    const status = await net.status();
    const counters = status['counters'] as { ledger: { inserted: number }; http: { goneAfterCharge: number } };
    report.charged.ledgerRecords = counters.ledger.inserted;
    report.charged.goneAfterCharge = counters.http.goneAfterCharge;
    // Every record is an answer the client got, or one whose connection the client itself closed
    // while the answer was being recorded (the node counts those).
    const expected = report.charged.answersWithCost + counters.http.goneAfterCharge;
    report.charged.surplus = counters.ledger.inserted - expected;
    if (report.charged.surplus !== 0) report.charged.unseen = unseenRecords(join(dir, 'node', 'ledger.sqlite'), seenWorkIds);
    if (counters.ledger.inserted < expected || report.charged.surplus > (options.chargeTolerance ?? 0)) {
      fail(-1, 'http', 'at the end', `the ledger holds ${counters.ledger.inserted} records but ${report.charged.answersWithCost} answers carried a cost (and ${counters.http.goneAfterCharge} clients left during the commit); records no client saw: ${unseenRecords(join(dir, 'node', 'ledger.sqlite'), seenWorkIds)}`);
    }
    const m = await memory();
    report.memory.rssEndMb = m.rss;
    report.memory.heapEndMb = m.heap;
  }
  report.nodeLog = { bytes: net.node.logBytes, longestLine: net.node.longestLogLine };
  if (net.node.longestLogLine > 10_000) fail(-1, 'tunnel', 'the node log', `a log line of ${net.node.longestLogLine} bytes`);
  await Promise.all(lanes.map((l) => l.stop()));
  await net.stop();
  for (const k of Object.keys(report.meanMsByKind) as CaseKind[]) report.meanMsByKind[k] = Math.round(report.meanMsByKind[k] / Math.max(1, report.byKind[k]));
  report.durationS = Math.round((performance.now() - started) / 100) / 10;
  report.memory = Object.fromEntries(Object.entries(report.memory).map(([k, v]) => [k, Math.round(v * 10) / 10])) as FuzzReport['memory'];
  rmSync(dir, { recursive: true, force: true });
  return report;
}

export type { FuzzNetwork };
