/**
 * Placement over real processes (issue 16, 2, 4 and 7): a node with echo's package and a real
 * `cgn miner` started with no DService at all. A request to echo places an instance on that miner
 * and is answered; a DService that needs more memory than any miner has is refused at once with
 * the reason; an idle DService goes back to zero instances. The capability probe: a scripted miner
 * claiming 64 CPUs that computes its chains one after the other is recorded below its claim, and
 * one that forges its answer stays unmeasured; answers nobody asked for are ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { frame, probeChain, type Frame } from '@cgn/protocol';
import { ECHO, ScriptedMiner, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

interface Problem {
  code: string;
  detail: string;
  details?: { reason?: string; placement?: { state: string } };
}

const post = (t: TestNode, dservice: string, body: string, headers: Record<string, string> = {}) =>
  fetch(t.url(dservice, '/'), { method: 'POST', body, headers: { authorization: `Bearer ${t.apiKey}`, ...headers } });

/** A copy of echo with some descriptor fields changed (its own package and digest). */
function echoCopy(dir: string, name: string, change: Record<string, unknown>): string {
  const to = join(dir, name);
  cpSync(ECHO, to, { recursive: true, filter: (src) => !src.includes('/src/') && !src.endsWith('/src') });
  const d = JSON.parse(readFileSync(join(to, 'dservice.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(to, 'dservice.json'), JSON.stringify({ ...d, name, ...change }));
  return to;
}

describe('placement: a miner started without any DService is useful', () => {
  let t: TestNode;
  let miner: MinerProcess;
  const dir = tempDir('cgn-placement-');

  beforeAll(async () => {
    t = await startTestNode({
      // echo with a 60 s request deadline (its own is 10 s), so a cold start on a loaded machine fits in it.
      dservices: [echoCopy(dir.path, 'echo', { timeouts: { requestMs: 60_000 } }), echoCopy(dir.path, 'hungry', { resources: { cpus: 1, memoryMb: 50_000_000 } })],
      placement: { autoscale: { idleToZeroMs: 3000 }, probe: { steps: 3000, checkpoints: 30, maxChains: 4, payloadBytes: 64 * 1024 } },
    });
    miner = spawnMiner(t.node.minerUrl, dir.path, { dservices: [], args: ['--region', 'eu-west', '--price-floor', '0'] });
    await waitFor(() => t.node.broker.snapshot().miners.length === 1, 'the miner to join');
  });

  afterAll(async () => {
    miner?.kill();
    await miner?.exited;
    await t?.cleanup();
    dir.cleanup();
  });

  it('a request to echo places an instance on the miner and is answered', async () => {
    expect(t.node.broker.minersOf('echo')).toHaveLength(0);
    const res = await post(t, 'echo', 'placed and answered', { 'cgn-deadline-ms': '60000' });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.text()).toBe('placed and answered');
    // Ready in the controller's books at its next tick (the broker took the miner's advertisement at once).
    await waitFor(() => t.node.placer.controller.instances()[0]?.state === 'ready', 'the instance to be counted ready');
    expect(t.node.placer.controller.instances()).toMatchObject([{ dservice: 'echo', minerId: miner.id, state: 'ready' }]);
    expect(t.node.placer.controller.coldStarts.count).toBe(1);
  });

  it('the miner was probed: measured CPUs beside its claim, memory and disk self-reported', async () => {
    await waitFor(() => t.node.placer.probes?.resultOf(miner.id) !== undefined, 'the probe to finish');
    const r = t.node.placer.probes!.resultOf(miner.id)!;
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true, selfReported: ['memoryMb', 'diskMb', 'gpus'] });
    if (!r.ok) return;
    expect(r.measured.cpus).toBeGreaterThanOrEqual(1);
    expect(r.measured.memoryMb).toBeGreaterThan(0);
    // The claim beside it: what the miner advertised (CPUs, memory, disk, GPUs, region, price floor).
    const status = t.node.status() as { placement: { probes: { miners: { id: string; claimed: Record<string, unknown>; probe: unknown }[] } } };
    const row = status.placement.probes.miners.find((m) => miner.id.startsWith(m.id))!;
    expect(row.claimed).toMatchObject({ region: 'eu-west', priceFloor: 0 });
    expect(row.claimed['diskMb']).toBeGreaterThan(0);
    expect(row.probe).toMatchObject({ measured: { cpus: r.measured.cpus }, selfReported: ['memoryMb', 'diskMb', 'gpus'] });
    // A real miner's probe is plausible, and nobody waits for one now.
    expect(status.placement.probes).toMatchObject({ implausible: 0, queueFull: 0, waiting: { queued: 0, overflow: 0 } });
  });

  it('a DService that needs more memory than any miner has is refused at once, naming the reason', async () => {
    const res = await post(t, 'hungry', 'x', { 'cgn-deadline-ms': '60000' });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const p = (await res.json()) as Problem;
    expect(p.details?.reason).toBe('not_enough_memory');
    expect(p.detail).toMatch(/hungry cannot be placed: .*an instance needs 50000000 MB of memory/);
    expect(t.node.broker.pending).toBe(0);
    const e = (await (await fetch(`${t.node.statusUrl.replace('/v1/status', '/v1/explain')}?dservice=hungry`)).json()) as { reason: string; message: string };
    expect(e).toMatchObject({ reason: 'not_enough_memory', message: p.detail });
  });

  it('an idle DService goes back to zero instances: the node unplaces it and the miner stops advertising it', async () => {
    await waitFor(() => t.node.placer.controller.instances().length === 0 && t.node.broker.minersOf('echo').length === 0, 'echo to scale to zero', 30_000);
    expect(t.node.placer.controller.counters.unplaced).toBe(1);
    // And back from zero on the next request.
    const res = await post(t, 'echo', 'again', { 'cgn-deadline-ms': '60000' });
    expect(res.status, `${await res.clone().text()}\n${miner.stderr().slice(-3000)}`).toBe(200);
    expect(await res.text()).toBe('again');
  });
});

describe('the capability probe does not believe the miner', () => {
  let t: TestNode;
  beforeAll(async () => {
    t = await startTestNode({ dservices: [ECHO], placement: { probe: { steps: 2000, checkpoints: 20, maxChains: 8, payloadBytes: 1024, timeoutMs: 20_000 } } });
  });
  afterAll(async () => t?.cleanup());

  const scripted = (answer: (f: Extract<Frame, { t: 'probe' }>) => Uint8Array) =>
    new ScriptedMiner({
      ack: true, answer: true, dservices: [], advert: { resources: { cpus: 64, memoryMb: 65_536 } },
      onFrame: (f, m) => {
        if (f.t !== 'probe') return;
        m.send(frame({ t: 'probed', id: f.id, checkpoints: answer(f), payload: f.payload, memoryMb: 65_536, diskMb: 1_000_000, gpus: 8 }));
      },
    });

  it('a miner claiming 64 CPUs that computes its chains one after the other is recorded with measured < claimed', async () => {
    // Honest hashes, but one chain after the other on one thread: no parallel speed-up.
    const liar = scripted((f) => Buffer.concat(Array.from({ length: f.chains }, (_, c) => probeChain(f.seed, c, f.steps, f.every))));
    await liar.connect(t.node.minerUrl);
    try {
      await waitFor(() => t.node.placer.probes?.resultOf(liar.id) !== undefined, 'the probe of the liar');
      const r = t.node.placer.probes!.resultOf(liar.id)!;
      expect(r.ok, JSON.stringify(r)).toBe(true);
      if (!r.ok) return;
      expect(r.measured.cpus).toBeLessThan(64);
      expect(r.measured.cpus).toBeLessThanOrEqual(8);
      // What the scheduler sees: the claim and, beside it, the measurement it believes.
      const view = t.node.placer.controller.minerViews([{ id: liar.id, tier: 'open', dservices: [], draining: false, advert: { tier: 'open', slots: 4, dservices: [], resources: { cpus: 64, memoryMb: 65_536 } } }])[0]!;
      expect(view.claimed.cpus).toBe(64);
      expect(view.measured?.cpus).toBe(r.measured.cpus);
    } finally {
      liar.ws.close();
    }
  });

  it('answers nobody asked for (a probe result, a placed frame for an instance never placed there) are ignored; the miner keeps serving', async () => {
    const m = new ScriptedMiner({ ack: true, answer: true, dservices: ['echo'] });
    await m.connect(t.node.minerUrl);
    try {
      m.send(frame({ t: 'probed', id: 'not-asked', checkpoints: new Uint8Array(64), payload: new Uint8Array(0), memoryMb: 1, diskMb: 1, gpus: 0 }));
      m.send(frame({ t: 'placed', instanceId: 'never-placed', digest: 'c'.repeat(64), ok: true, coldStartMs: 1, fetched: false }));
      const res = await fetch(`${t.node.workUrl}echo/`, { method: 'POST', body: 'still here', headers: { authorization: `Bearer ${t.apiKey}` } });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('still here');
      expect(t.node.placer.controller.instances()).toHaveLength(0);
    } finally {
      m.ws.close();
    }
  });

  it('a forged probe answer fails verification and leaves the miner unmeasured, still connected', async () => {
    const forger = scripted((f) => new Uint8Array(f.chains * (f.steps / f.every) * 32).fill(0xab));
    await forger.connect(t.node.minerUrl);
    try {
      await waitFor(() => t.node.placer.probes?.resultOf(forger.id) !== undefined, 'the probe of the forger');
      const r = t.node.placer.probes!.resultOf(forger.id)!;
      expect(r).toMatchObject({ ok: false });
      expect(!r.ok && r.reason).toMatch(/does not verify: chain 0 is wrong/);
      expect(t.node.broker.snapshot().miners.some((m) => m.id === forger.id)).toBe(true);
    } finally {
      forger.ws.close();
    }
  });
});
