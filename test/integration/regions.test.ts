/**
 * Account data regions end to end, over real processes: central holds an account's regions and
 * pushes them to the node; the node's broker sends the account's work only to the miner in its
 * region (two real miners advertise different `--region`s); an account limited to a region no
 * miner is in is refused at once with application/problem+json naming the region, and
 * `GET /v1/explain` and `cgn explain --account` give the same reason. And without central (the
 * node's own account policies): a request of an account limited to eu, for a DService no miner
 * runs yet, places its instance on the eu miner among miners started with no DService, and that
 * miner answers it.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCentralNetwork } from './central-network.js';
import { CGN_BIN, ECHO, minersOf, spawnMiner, startTestNode, stopMiners, tempDir, waitFor, type MinerProcess } from './harness.js';

interface Problem {
  code: string;
  detail: string;
  details?: { reason?: string; regions?: string[] };
}

describe('account data regions', () => {
  it("an account's work runs only on the miner in its regions; a region no miner is in is refused at once, naming it", async () => {
    const { central, t, setup, dir, stop } = await startCentralNetwork('cgn-regions-');
    const miners: MinerProcess[] = [];
    try {
      const eu = spawnMiner(t.node.minerUrl, dir, { name: 'eu', slots: 2, args: ['--region', 'eu-west'] });
      const us = spawnMiner(t.node.minerUrl, dir, { name: 'us', slots: 2, args: ['--region', 'us-east'] });
      miners.push(eu, us);
      await waitFor(() => minersOf(t.node).filter((m) => m.id === eu.id || m.id === us.id).length === 2, 'both miners in the pool', 60_000);

      const account = setup.demo.accountId;
      const post = (body: string) => fetch(t.url('echo', '/'), { method: 'POST', body, headers: { authorization: `Bearer ${setup.demo.apiKey}` } });
      const completed = (id: string) => minersOf(t.node).find((m) => m.id === id)?.completed ?? 0;

      // Limited to eu at central: pushed to the node; 12 requests all run on the eu-west miner.
      expect((await central.admin.call('PATCH', `/v1/accounts/${account}`, { allowedRegions: ['eu'] })).status).toBe(200);
      await waitFor(() => t.node.accounts.regionsOf(account)?.has('eu') === true, "the account's regions pushed to the node");
      const before = { eu: completed(eu.id), us: completed(us.id) };
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => post(`req-${i}`)));
      expect(answers.map((r) => r.status)).toEqual(Array(12).fill(200));
      expect(await Promise.all(answers.map((r) => r.text()))).toEqual(Array.from({ length: 12 }, (_, i) => `req-${i}`));
      expect(completed(eu.id) - before.eu).toBe(12);
      expect(completed(us.id) - before.us).toBe(0);

      // Limited to a region no miner is in: refused at once (not at the deadline), naming the region.
      expect((await central.admin.call('PATCH', `/v1/accounts/${account}`, { allowedRegions: ['ap-south'] })).status).toBe(200);
      await waitFor(() => t.node.accounts.regionsOf(account)?.has('ap-south') === true, 'the new regions pushed to the node');
      const started = Date.now();
      const refused = await fetch(t.url('echo', '/'), { method: 'POST', body: 'x', headers: { authorization: `Bearer ${setup.demo.apiKey}`, 'cgn-deadline-ms': '10000' } });
      expect(Date.now() - started).toBeLessThan(5000);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('content-type')).toBe('application/problem+json');
      const problem = (await refused.json()) as Problem;
      expect(problem.code).toBe('dservice_unavailable');
      expect(problem.details).toMatchObject({ reason: 'no_miner_in_region', regions: ['ap-south'] });
      expect(problem.detail).toMatch(/no open-tier miner in the account's regions \(ap-south\) runs echo; the miners that can run it are in: eu-west \(1\), us-east \(1\)/);
      expect(t.node.broker.pending).toBe(0);

      // The explain endpoint and the CLI give the same reason for the account (and none without it).
      const explainUrl = t.node.statusUrl.replace('/v1/status', '/v1/explain');
      const e = (await (await fetch(`${explainUrl}?dservice=echo&account=${account}`, { headers: { authorization: `Bearer ${setup.demo.apiKey}` } })).json()) as { runnable: boolean; reason: string; message: string; regions: string[] };
      expect(e).toMatchObject({ runnable: false, reason: 'no_miner_in_region', regions: ['ap-south'], message: problem.detail });
      expect(((await (await fetch(`${explainUrl}?dservice=echo`)).json()) as { runnable: boolean }).runnable).toBe(true);
      const cli = await promisify(execFile)(process.execPath, [CGN_BIN, 'explain', '--node', t.node.statusUrl.replace('/v1/status', ''), '--dservice', 'echo', '--account', account, '--api-key', setup.demo.apiKey]).then(
        (r) => ({ code: 0, out: r.stdout }),
        (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, out: err.stdout + err.stderr }),
      );
      expect(cli.code).toBe(1);
      expect(cli.out).toContain('no_miner_in_region');
      expect(cli.out).toContain(problem.detail);

      // Regions cleared at central: anywhere again.
      expect((await central.admin.call('PATCH', `/v1/accounts/${account}`, { allowedRegions: null })).status).toBe(200);
      await waitFor(() => t.node.accounts.regionsOf(account) === null, 'the cleared regions pushed to the node');
      expect((await post('anywhere')).status).toBe(200);
    } finally {
      await stopMiners(miners);
      await stop();
    }
  }, 120_000);
});

/** A copy of echo with a longer request deadline (a cold start on a loaded machine fits in it). */
function echoCopy(dir: string): string {
  const to = join(dir, 'echo');
  cpSync(ECHO, to, { recursive: true, filter: (src) => !src.includes('/src/') && !src.endsWith('/src') });
  const d = JSON.parse(readFileSync(join(to, 'dservice.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(to, 'dservice.json'), JSON.stringify({ ...d, timeouts: { requestMs: 60_000 } }));
  return to;
}

describe('placement in the account\'s regions (a node without central)', () => {
  it('a request of an account limited to eu places its instance on the eu miner, which answers it', async () => {
    const dir = tempDir('cgn-regions-place-');
    const t = await startTestNode({
      dservices: [echoCopy(dir.path)],
      accounts: { byAccount: { 'test-account': { regions: ['eu'] } } },
      placement: { probe: { steps: 3000, checkpoints: 30, maxChains: 2, payloadBytes: 64 * 1024 } },
    });
    const miners = [
      spawnMiner(t.node.minerUrl, dir.path, { name: 'us1', dservices: [], args: ['--region', 'us-east'] }),
      spawnMiner(t.node.minerUrl, dir.path, { name: 'us2', dservices: [], args: ['--region', 'us-west'] }),
      spawnMiner(t.node.minerUrl, dir.path, { name: 'eu', dservices: [], args: ['--region', 'eu-west'] }),
    ];
    const eu = miners[2]!;
    try {
      await waitFor(() => t.node.broker.snapshot().miners.length === 3, 'the three miners to join', 60_000);
      expect(t.node.accounts.regionsOf('test-account')).toEqual(new Set(['eu']));
      const res = await fetch(t.url('echo', '/'), { method: 'POST', body: 'placed in eu', headers: { authorization: `Bearer ${t.apiKey}`, 'cgn-deadline-ms': '60000' } });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(await res.text()).toBe('placed in eu');
      expect(t.node.placer.controller.instances().map((i) => i.minerId)).toEqual([eu.id]);
      expect(minersOf(t.node).find((m) => m.id === eu.id)?.completed).toBe(1);
      expect(minersOf(t.node).filter((m) => m.id !== eu.id).every((m) => m.completed === 0)).toBe(true);
    } finally {
      await stopMiners(miners);
      await t.cleanup();
      dir.cleanup();
    }
  }, 120_000);
});
