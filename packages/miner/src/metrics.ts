/**
 * The miner's Prometheus metrics on a loopback-only port (`--metrics-port`): its connection to
 * the node, work done, failed, refused and cancelled, slots in use, each DService's state, the
 * execution time of work it ran, and process metrics. Read from `miner.status()` at scrape time;
 * only the execution histogram is observed per unit (one `observe`).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Miner, MinerStatus } from './miner.js';

const EXEC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const DSERVICE_STATES = ['idle', 'starting', 'ready', 'restarting', 'stopping', 'stopped', 'failed', 'rejected'] as const;

export function minerRegistry(miner: Pick<Miner, 'status' | 'on' | 'minerId'>, options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  const registers = [registry];
  registry.setDefaultLabels({ miner: miner.minerId.slice(0, 16) });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  let at = -Infinity;
  let last: MinerStatus;
  const status = (): MinerStatus => {
    if (performance.now() - at > 50) {
      last = miner.status();
      at = performance.now();
    }
    return last;
  };
  const gauge = (name: string, help: string, pick: (s: MinerStatus) => number): void => {
    new Gauge({ name, help, registers, collect() { this.set(pick(status())); } });
  };
  const counter = (name: string, help: string, pick: (s: MinerStatus) => number): void => {
    new Counter({ name, help, registers, collect() { this.reset(); this.inc(pick(status())); } });
  };
  gauge('cgn_miner_connected', '1 while the node has welcomed this miner', (s) => (s.connected ? 1 : 0));
  gauge('cgn_miner_slots', 'Work units this miner runs at once', (s) => s.slots);
  gauge('cgn_miner_in_flight', 'Work units running now', (s) => s.inFlight);
  counter('cgn_miner_work_done_total', 'Results sent to the node', (s) => s.workDone);
  counter('cgn_miner_work_failed_total', 'Work that failed here', (s) => s.failures);
  counter('cgn_miner_work_refused_total', 'Work refused (draining or full)', (s) => s.refused);
  counter('cgn_miner_work_cancelled_total', 'Work the node cancelled', (s) => s.cancelled);
  counter('cgn_miner_connects_total', 'Dials to the node since start', (s) => s.connects);
  counter('cgn_miner_welcomes_total', 'Dials the node welcomed', (s) => s.welcomes);
  new Gauge({
    name: 'cgn_miner_dservice_state', help: 'Each DService\'s state (1 for its current state)', labelNames: ['dservice', 'state'], registers,
    collect() {
      this.reset();
      for (const d of status().dservices) for (const st of DSERVICE_STATES) this.set({ dservice: d.name, state: st }, d.state === st ? 1 : 0);
    },
  });
  const exec = new Histogram({ name: 'cgn_miner_work_execution_seconds', help: 'Execution time of work this miner ran (as it measured it)', buckets: EXEC_BUCKETS, registers });
  const cpu = new Counter({ name: 'cgn_miner_work_cpu_seconds_total', help: 'CPU time of work this miner ran (as it reports it)', registers });
  miner.on('work-done', (w) => {
    exec.observe(w.execUs / 1e6);
    cpu.inc(w.cpuUs / 1e6);
  });
  return registry;
}

export interface MinerMetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` on 127.0.0.1 only (port 0: any free port). */
export async function serveMinerMetrics(registry: Registry, port: number): Promise<MinerMetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return void res.end('metrics are at GET /metrics\n');
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics could not be collected: ${(err as Error).message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
