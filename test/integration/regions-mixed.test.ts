/**
 * Fenced and unfenced work of one DService at once, over real processes: an account limited to eu
 * and an account without regions both ask for a DService no miner was started with, on miners in
 * eu and in the us (started with no DService). Placement demands it per fence, so an instance
 * starts on the eu miner for the fenced account's work whatever the unfenced account's demand
 * placed elsewhere; both accounts' requests are answered, and the fenced account's only by the eu
 * miner. (With one demand per (DService, tier), "anywhere" once unfenced work was held, the
 * instances could all land in the us and the fenced work wait to its deadline.)
 */
import { describe, expect, it } from 'vitest';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ECHO, minersOf, spawnMiner, startTestNode, stopMiners, tempDir, waitFor } from './harness.js';

/** A copy of echo with a longer request deadline (cold starts on a loaded machine) and at most `max` instances. */
function echoCopy(dir: string, max = 2): string {
  const to = join(dir, 'echo');
  cpSync(ECHO, to, { recursive: true, filter: (src) => !src.includes('/src/') && !src.endsWith('/src') });
  const d = JSON.parse(readFileSync(join(to, 'dservice.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(to, 'dservice.json'), JSON.stringify({ ...d, timeouts: { requestMs: 60_000 }, instances: { max } }));
  return to;
}

/**
 * A node without central whose echo copy allows `max` instances, with two accounts: test-account
 * limited to eu, free-account without regions; `post` sends echo work with a 60 s deadline.
 */
async function fencedNode(dir: string, max = 2) {
  const t = await startTestNode({
    dservices: [echoCopy(dir, max)],
    accounts: { byAccount: { 'test-account': { regions: ['eu'] } } },
    placement: { probe: { steps: 3000, checkpoints: 30, maxChains: 2, payloadBytes: 64 * 1024 } },
  });
  const { key: freeKey } = t.node.keys.create('free-account');
  const post = (key: string, body: string) =>
    fetch(t.url('echo', '/'), { method: 'POST', body, headers: { authorization: `Bearer ${key}`, 'cgn-deadline-ms': '60000' } });
  return { t, fencedKey: t.apiKey, freeKey, post };
}

describe('placement per fence (a node without central)', () => {
  it('an eu-limited account and an account without regions: both answered, the eu one only by the eu miner', async () => {
    const dir = tempDir('cgn-regions-mixed-');
    const { t, fencedKey, freeKey, post } = await fencedNode(dir.path);
    const miners = [
      spawnMiner(t.node.minerUrl, dir.path, { name: 'us1', dservices: [], args: ['--region', 'us-east'] }),
      spawnMiner(t.node.minerUrl, dir.path, { name: 'us2', dservices: [], args: ['--region', 'us-west'] }),
      spawnMiner(t.node.minerUrl, dir.path, { name: 'eu', dservices: [], args: ['--region', 'eu-west'] }),
    ];
    const eu = miners[2]!;
    const completed = (id: string) => minersOf(t.node).find((m) => m.id === id)?.completed ?? 0;
    try {
      await waitFor(() => t.node.broker.snapshot().miners.length === 3, 'the three miners to join', 60_000);
      expect(t.node.accounts.regionsOf('test-account')).toEqual(new Set(['eu']));
      expect(t.node.accounts.regionsOf('free-account')).toBeNull();

      // The account without regions first: its instance goes wherever placement finds best.
      const first = await post(freeKey, 'free-0');
      expect(first.status, await first.clone().text()).toBe(200);
      expect(await first.text()).toBe('free-0');

      // Then both accounts at once, while the unfenced work is held too.
      const bodies = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? `free-${i}` : `eu-${i}`));
      const answers = await Promise.all(bodies.map((b) => post(b.startsWith('eu') ? fencedKey : freeKey, b)));
      const texts = await Promise.all(answers.map(async (r) => `${r.status} ${await r.text()}`));
      expect(texts).toEqual(bodies.map((b) => `200 ${b}`));
      // The controller marks an instance ready at its next full round (the broker already uses it).
      await waitFor(() => t.node.placer.controller.instances().some((i) => i.minerId === eu.id && i.state === 'ready'), 'the eu instance ready in the controller', 30_000);
      expect(t.node.placer.controller.instances().length).toBeLessThanOrEqual(2);

      // The eu account's work runs on the eu miner only.
      const before = new Map(miners.map((m) => [m.id, completed(m.id)]));
      const fenced = await Promise.all(Array.from({ length: 6 }, (_, i) => post(fencedKey, `eu-only-${i}`)));
      expect(fenced.map((r) => r.status)).toEqual(Array(6).fill(200));
      expect(completed(eu.id) - before.get(eu.id)!).toBe(6);
      for (const m of miners) if (m !== eu) expect(completed(m.id) - before.get(m.id)!).toBe(0);
    } finally {
      await stopMiners(miners);
      await t.cleanup();
      dir.cleanup();
    }
  }, 180_000);

  it('with room for one instance, the one outside the fence moves into it, and both accounts are answered there', async () => {
    const dir = tempDir('cgn-regions-move-');
    const { t, fencedKey, freeKey, post } = await fencedNode(dir.path, 1);
    const miners = [
      spawnMiner(t.node.minerUrl, dir.path, { name: 'us1', dservices: [], args: ['--region', 'us-east'] }),
      spawnMiner(t.node.minerUrl, dir.path, { name: 'us2', dservices: [], args: ['--region', 'us-west'] }),
    ];
    const instances = () => t.node.placer.controller.instances();
    try {
      await waitFor(() => t.node.broker.snapshot().miners.length === 2, 'the us miners to join', 60_000);
      // Only us miners yet: the account without regions gets its one instance in the us.
      const first = await post(freeKey, 'free-0');
      expect(first.status, await first.clone().text()).toBe(200);
      expect(instances().map((i) => i.minerId)).toEqual([expect.toSatisfy((id: string) => id === miners[0]!.id || id === miners[1]!.id)]);
      const eu = spawnMiner(t.node.minerUrl, dir.path, { name: 'eu', dservices: [], args: ['--region', 'eu-west'] });
      miners.push(eu);
      await waitFor(() => t.node.broker.snapshot().miners.length === 3, 'the eu miner to join', 60_000);

      // The eu account's work, with the unfenced account's instance idle in the us: the one
      // instance there may be moves to eu (one demand "anywhere" would have kept it in the us,
      // and this work would have waited to its deadline).
      const fenced = Array.from({ length: 4 }, (_, i) => post(fencedKey, `eu-${i}`));
      await waitFor(() => instances().some((i) => i.minerId === eu.id && i.state === 'ready'), 'an instance ready on the eu miner', 60_000);
      const free = Array.from({ length: 4 }, (_, i) => post(freeKey, `free-${i + 1}`));
      const texts = await Promise.all([...fenced, ...free].map(async (r) => { const res = await r; return `${res.status} ${await res.text()}`; }));
      expect(texts).toEqual([...Array.from({ length: 4 }, (_, i) => `200 eu-${i}`), ...Array.from({ length: 4 }, (_, i) => `200 free-${i + 1}`)]);
      expect(instances().map((i) => i.minerId)).toEqual([eu.id]);
      expect(minersOf(t.node).find((m) => m.id === eu.id)?.completed).toBe(8);
    } finally {
      await stopMiners(miners);
      await t.cleanup();
      dir.cleanup();
    }
  }, 180_000);
});
