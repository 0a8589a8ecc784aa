import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { minerRegistry, serveMinerMetrics } from './metrics.js';
import type { MinerStatus } from './miner.js';

function fakeMiner(over: Partial<MinerStatus> = {}) {
  const status = { connected: true, slots: 4, inFlight: 1, workDone: 7, failures: 1, refused: 0, cancelled: 2, connects: 3, welcomes: 2, dservices: [{ name: 'echo', state: 'ready' }], ...over } as unknown as MinerStatus;
  return Object.assign(new EventEmitter(), { minerId: 'cd'.repeat(32), status: () => status });
}

describe('miner metrics', () => {
  it('reads the status at scrape time and observes each unit of work done', async () => {
    const m = fakeMiner();
    const r = minerRegistry(m as never, { defaultMetrics: false });
    m.emit('work-done', { id: 'w1', status: 200, execUs: 20_000, cpuUs: 5_000 });
    const text = await r.metrics();
    expect(text).toMatch(/^cgn_miner_work_done_total\{miner="cdcdcdcdcdcdcdcd"\} 7$/m);
    expect(text).toMatch(/^cgn_miner_connected\{miner="cdcdcdcdcdcdcdcd"\} 1$/m);
    expect(text).toMatch(/^cgn_miner_dservice_state\{dservice="echo",state="ready",miner="cdcdcdcdcdcdcdcd"\} 1$/m);
    expect(text).toMatch(/^cgn_miner_dservice_state\{dservice="echo",state="failed",miner="cdcdcdcdcdcdcdcd"\} 0$/m);
    expect(text).toMatch(/^cgn_miner_work_execution_seconds_count\{miner="cdcdcdcdcdcdcdcd"\} 1$/m);
    expect(text).toMatch(/^cgn_miner_work_cpu_seconds_total\{miner="cdcdcdcdcdcdcdcd"\} 0\.005$/m);
  });

  it('serves on loopback only, /metrics and nothing else', async () => {
    const served = await serveMinerMetrics(minerRegistry(fakeMiner() as never, { defaultMetrics: false }), 0);
    try {
      expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const ok = await fetch(served.url);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      expect((await fetch(served.url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await served.close();
    }
  });
});
