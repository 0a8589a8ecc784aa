import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorClosedCycle } from './anchor.js';
import { ANVIL_KEYS, rpcCall } from './anvil.js';
import { connect } from './clients.js';
import { CgnContracts } from './contracts.js';
import { asAccount, startLocalChain, type LocalChain } from './local.js';
import { ChainWatcher, JsonFileWatcherStore, MemoryWatcherStore, type ChainEvent } from './watcher.js';

const T = 10n ** 18n;

let chain: LocalChain;
let payer: CgnContracts;
let dir: string;

beforeAll(async () => {
  chain = await startLocalChain({});
  payer = await asAccount(chain, ANVIL_KEYS[1]);
  await chain.contracts.mint(payer.me, 1_000n * T);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-watcher-'));
});

afterAll(async () => {
  await chain?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const mine = (n: number) => rpcCall(chain.rpcUrl, 'anvil_mine', [`0x${n.toString(16)}`]);

describe('chain watcher', () => {
  it('delivers deposits once they have enough confirmations, and never twice across restarts', async () => {
    const file = path.join(dir, 'watcher.json');
    const credited: ChainEvent[] = [];
    const make = () =>
      new ChainWatcher(chain.contracts, {
        store: new JsonFileWatcherStore(file),
        confirmations: 3,
        events: ['Deposited'],
        onEvent: (e) => void credited.push(e),
      });
    await payer.deposit(7n * T);
    const w1 = make();
    expect(await w1.poll()).toBe(0); // not final yet
    await mine(3);
    expect(await w1.poll()).toBe(1);
    expect(credited[0]).toMatchObject({ name: 'Deposited', args: { account: payer.me, amount: 7n * T } });
    await payer.deposit(8n * T);
    await mine(3);

    // restart from the persisted file: only the new deposit
    const w2 = make();
    expect(await w2.poll()).toBe(1);
    expect(await w2.poll()).toBe(0);
    expect(credited.map((e) => e.args.amount)).toEqual([7n * T, 8n * T]);

    // crash after the callbacks but before the cursor was saved: the ids still stop a second credit
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { cursor: { block: string } };
    saved.cursor = null as never;
    fs.writeFileSync(file, JSON.stringify(saved));
    const w3 = make();
    expect(await w3.poll()).toBe(0);
    expect(credited).toHaveLength(2);
    expect(new Set(credited.map((e) => e.id)).size).toBe(2);
  });

  it('follows claims, anchors and slashes too', async () => {
    const seen: string[] = [];
    const w = new ChainWatcher(chain.contracts, { store: new MemoryWatcherStore(), confirmations: 0, onEvent: (e) => void seen.push(e.name) });
    await chain.contracts.slash(payer.me, `0x${'11'.repeat(32)}`);
    await w.poll();
    expect(seen).toEqual(expect.arrayContaining(['Deposited', 'Slashed', 'Banned']));
  });

  it('rewinds after a reorg deeper than its confirmations and redelivers only new events', async () => {
    const store = new MemoryWatcherStore();
    const seen: ChainEvent[] = [];
    const reorgs: unknown[] = [];
    const w = new ChainWatcher(chain.contracts, { store, confirmations: 0, onEvent: (e) => void seen.push(e), onReorg: (r) => void reorgs.push(r) });
    await w.poll();
    const base = seen.length;
    const snap = await rpcCall(chain.rpcUrl, 'evm_snapshot');
    await payer.deposit(1n * T);
    await w.poll();
    expect(seen.length).toBe(base + 1);
    await rpcCall(chain.rpcUrl, 'evm_revert', [snap]);
    await payer.deposit(2n * T); // a different history at the same height
    await mine(1);
    await w.poll();
    expect(reorgs).toHaveLength(1);
    expect(seen.slice(base).map((e) => e.args.amount)).toEqual([1n * T, 2n * T]);
  });

  it('runs on a timer until stopped', async () => {
    const seen: ChainEvent[] = [];
    const w = new ChainWatcher(chain.contracts, { store: new MemoryWatcherStore(), confirmations: 0, pollIntervalMs: 20, events: ['Deposited'], onEvent: (e) => void seen.push(e) });
    w.start();
    await payer.deposit(3n * T);
    for (let i = 0; i < 100 && !seen.some((e) => e.args.amount === 3n * T); i++) await new Promise((r) => setTimeout(r, 20));
    await w.stop();
    expect(seen.some((e) => e.args.amount === 3n * T)).toBe(true);
  });
});

describe('anchoring through a failing chain', () => {
  it('retries through RPC failures and anchors exactly once', async () => {
    await chain.contracts.mint(chain.operator, 10n);
    await chain.contracts.deposit(10n);
    // a proxy that fails every third read, and the first two transaction submissions, with 503
    let n = 0;
    let sends = 0;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const isSend = Buffer.concat(chunks).includes('eth_sendRawTransaction');
        if (isSend ? sends++ < 2 : n++ % 3 === 0) {
          res.writeHead(503).end('down');
          return;
        }
        fetch(chain.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) })
          .then(async (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text()))
          .catch(() => res.writeHead(502).end());
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const clients = await connect({ rpcUrl: url, privateKey: ANVIL_KEYS[0], chainId: chain.contracts.addresses.chainId });
      const flaky = new CgnContracts(clients, chain.contracts.addresses);
      await chain.contracts.mint(chain.operator, 1n);
      await chain.contracts.deposit(1n); // the operator's escrow pays the cycle
      const cycle = { cycleId: 9, payoutRoot: `0x${'42'.repeat(32)}`, batchRoots: [], total: 1n, debits: [{ address: chain.operator, amount: 1n }] };
      const retries: number[] = [];
      const out = await anchorClosedCycle(flaky, cycle, { backoffMs: 5, attempts: 20, receiptTimeoutMs: 5000, onRetry: (_e, a) => void retries.push(a) });
      expect(retries.length).toBeGreaterThanOrEqual(2);
      expect(['anchored', 'already-anchored']).toContain(out.status);
      const again = await anchorClosedCycle(chain.contracts, cycle);
      expect(again.status).toBe('already-anchored');
      const anchors = await chain.clients.public.getContractEvents({
        address: chain.addresses.settlement,
        abi: (await import('./generated/index.js')).settlementAbi,
        eventName: 'CycleAnchored',
        args: { cycleId: 9n },
        fromBlock: 0n,
      });
      expect(anchors).toHaveLength(1);
    } finally {
      server.close();
    }
  });
});
