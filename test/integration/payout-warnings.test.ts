/**
 * No quiet losses (issue 15, 3), over real processes: a miner started without a payout address
 * says so on its console at start, in plain words; when a billing cycle closes with its earnings
 * held, the node tells it over the tunnel and it prints that too. `--payout-address new` makes a
 * wallet next to the miner key and the miner is paid to it from its first cycle.
 */
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnMiner, startTestNode, waitFor, type MinerProcess, type TestNode } from './harness.js';

describe('payout warnings on the miner console', () => {
  let t: TestNode;
  const miners: MinerProcess[] = [];
  beforeAll(async () => {
    t = await startTestNode();
  });
  afterAll(async () => {
    for (const m of miners) m.kill();
    await Promise.all(miners.map((m) => m.exited));
    await t.cleanup();
  });

  const work = async (): Promise<string> => {
    const res = await fetch(t.url('echo'), { method: 'POST', body: 'pay me', headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    return res.headers.get('cgn-work-id')!;
  };

  it('warns at start and when a cycle closes with earnings held for it', async () => {
    const m = spawnMiner(t.node.minerUrl, t.dir, { name: 'unpaid' });
    miners.push(m);
    await waitFor(() => m.stderr().includes('cgn miner: WARNING: no --payout-address'), 'the start warning');
    await waitFor(() => t.node.broker.snapshot().miners.some((x) => x.id === m.id), 'the miner to connect', 30_000);
    const id = await work();
    expect(t.node.ledger.store.getRow(id)!.record.miner).toBe(m.id);
    const cycle = t.node.ledger.store.closeCycle();
    expect(cycle.held > 0n).toBe(true);
    await waitFor(() => m.stderr().includes(`cgn miner: WARNING: billing cycle ${cycle.id} closed: this miner earned`), 'the held-earnings notice', 20_000);
    expect(m.stderr()).toMatch(/held because it has no payout address/);
    m.kill();
    await m.exited;
  });

  it('--payout-address new makes a wallet next to the miner key and the miner is paid to it', async () => {
    const m = spawnMiner(t.node.minerUrl, t.dir, { name: 'paid', args: ['--payout-address', 'new'] });
    miners.push(m);
    await waitFor(() => /made a payout wallet 0x[0-9a-fA-F]{40}/.test(m.stderr()), 'the new wallet');
    const address = /made a payout wallet (0x[0-9a-fA-F]{40}); its key is in (\S+) /.exec(m.stderr())!;
    expect(statSync(address[2]!).mode & 0o777).toBe(0o600);
    expect(address[2]).toMatch(/paid-[0-9a-f]{8}\.payout\.key$/);
    expect(m.stderr()).not.toContain('no --payout-address');
    await waitFor(() => t.node.ledger.store.addresses().get(`miner\u0000${m.id}`) === address[1]!.toLowerCase(), 'the address in the ledger', 30_000);
    await waitFor(async () => (await work().then((id) => t.node.ledger.store.getRow(id)!.record.miner)) === m.id, 'work on the paid miner', 30_000);
    t.node.ledger.store.closeCycle();
    const c = t.node.ledger.store.cycles().filter((x) => x.sealedAt !== null).at(-1)!;
    const credit = t.node.ledger.store.credits(c.id).find((x) => x.role === 'miner' && x.beneficiary === m.id)!;
    expect(credit).toMatchObject({ held: 0n, address: address[1]!.toLowerCase() });
  });
});
