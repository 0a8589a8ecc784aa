import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { addressesToJson, ANVIL_KEYS, asAccount, rpcCall, startLocalChain, validatorElectionAbi, type CgnContracts, type LocalChain } from '@cgn/chain';
import { SqliteLedgerStore, ledgerServiceLevels, type Microtransaction } from '@cgn/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEpochFromArgs } from './epoch.js';

const T = 10n ** 18n;
let chain: LocalChain;
let dir: string;
let ledgerPath: string;
let contractsFile: string;
let cands: CgnContracts[];

function record(i: number, miner: string, status: number, execUs: number): Microtransaction {
  return {
    workId: `w_${i}`, account: 'acct', endUser: null, dservice: 'echo', tier: 'open', miner, node: 'node-1', receivedAt: Date.now() - 60_000 - i,
    queueUs: 10, execUs, cpuUs: execUs, bytesIn: 1, bytesOut: 1, status, resultHash: null, attempts: 1,
  };
}

async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runEpochFromArgs(args, { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

beforeAll(async () => {
  chain = await startLocalChain({ validatorCount: 2 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-epoch-'));
  contractsFile = path.join(dir, 'contracts.json');
  fs.writeFileSync(contractsFile, addressesToJson(chain.addresses));
  // Three candidates with equal stake; the ledger knows miners "fast" (c0) and "flaky" (c1); c2 never worked.
  cands = await Promise.all([1, 2, 3].map((i) => asAccount(chain, ANVIL_KEYS[i]!)));
  for (const c of cands) {
    await chain.contracts.mint(c.me, 10n * T);
    await c.stake(10n * T);
    await c.registerCandidate();
  }
  ledgerPath = path.join(dir, 'ledger.sqlite');
  const store = new SqliteLedgerStore({ path: ledgerPath });
  const recs: Microtransaction[] = [];
  for (let i = 0; i < 30; i++) recs.push(record(i, 'fast', 200, 1000));
  for (let i = 30; i < 40; i++) recs.push(record(i, 'flaky', i % 2 ? 503 : 200, 3000));
  store.appendBatch(recs);
  store.registerAddress('miner', 'fast', cands[0]!.me);
  store.registerAddress('miner', 'flaky', cands[1]!.me);
  store.close();
});

afterAll(async () => {
  await chain?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('cgn epoch', () => {
  it('refuses bad usage with exit code 2 and a reason', async () => {
    expect((await run(['--help'])).code).toBe(0);
    expect((await run([])).code).toBe(2);
    expect((await run(['elect'])).code).toBe(2);
    const noKey = await run(['once', '--ledger', ledgerPath, '--rpc', chain.rpcUrl, '--contracts', contractsFile]);
    expect(noKey.code).toBe(2);
    expect(noKey.err).toMatch(/--key HEX is required/);
    const both = await run(['once', '--ledger', ledgerPath, '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[0], '--epoch-blocks', '5', '--epoch-seconds', '5']);
    expect(both.err).toMatch(/either --epoch-blocks or --epoch-seconds/);
    expect((await run(['levels', '--ledger', ledgerPath, '--window', '0h'])).code).toBe(2);
    const missing = await run(['levels', '--ledger', path.join(dir, 'none.sqlite')]);
    expect(missing).toMatchObject({ code: 1 });
    expect(missing.err).toMatch(/no ledger at/);
  });

  it('shows the ledger\'s service levels per miner with its payout address', async () => {
    const r = await run(['levels', '--ledger', ledgerPath, '--json']);
    expect(r.code, r.err).toBe(0);
    const miners = (JSON.parse(r.out) as { miners: { miner: string; address: string | null; records: number; success: number; bps: number }[] }).miners;
    expect(miners.map((m) => [m.miner, m.address, m.records, m.success])).toEqual([
      ['fast', cands[0]!.me.toLowerCase(), 30, 1],
      ['flaky', cands[1]!.me.toLowerCase(), 10, 0.5],
    ]);
    expect(miners[0]!.bps).toBeGreaterThan(miners[1]!.bps);
    expect((await run(['levels', '--ledger', ledgerPath])).out).toMatch(/fast\s+30 rec\s+100\.0%/);
  });

  it('puts the ledger\'s levels on chain and elects the epoch, once', async () => {
    const args = ['once', '--ledger', ledgerPath, '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[0], '--epoch-blocks', '1000'];
    const r = await run(args);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^epoch 1: elected 2 validators/);
    const store = new SqliteLedgerStore({ path: ledgerPath, readonly: true });
    const expected = await ledgerServiceLevels(store, { windowMs: 3_600_000 });
    store.close();
    const levelOf = (a: `0x${string}`) => chain.contracts.clients.public.readContract({ address: chain.addresses.election, abi: validatorElectionAbi, functionName: 'serviceLevelOf', args: [a] });
    expect(await levelOf(cands[0]!.me)).toBe(expected.subjects.find((s) => s.subject === 'fast')!.bps);
    expect(await levelOf(cands[1]!.me)).toBe(expected.subjects.find((s) => s.subject === 'flaky')!.bps);
    expect(await levelOf(cands[2]!.me)).toBe(0);
    // c2 has no service: only c0 and c1 can be drawn, and there are two seats.
    expect([...(await chain.contracts.validatorsOf(1))].sort()).toEqual([cands[0]!.me, cands[1]!.me].sort());

    const block = await chain.contracts.clients.public.getBlockNumber({ cacheTime: 0 });
    const again = await run(args);
    expect(again.out).toMatch(/epoch 1: already elected \(2 validators\)/);
    expect(await chain.contracts.clients.public.getBlockNumber({ cacheTime: 0 })).toBe(block);
  });

  it('run elects each new epoch until stopped', async () => {
    const stop = new AbortController();
    const out: string[] = [];
    const done = runEpochFromArgs(['run', '--ledger', ledgerPath, '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[0], '--epoch-blocks', '1000'], {
      stdout: (t) => void out.push(t),
      stderr: (t) => void out.push(`ERR ${t}`),
      env: {},
      signal: stop.signal,
    });
    const waitFor = async (re: RegExp) => {
      const deadline = Date.now() + 20_000;
      while (!out.some((l) => re.test(l))) {
        if (Date.now() > deadline) throw new Error(`no line matching ${re} in:\n${out.join('\n')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor(/epoch 1: already elected/);
    const head = await chain.contracts.clients.public.getBlockNumber({ cacheTime: 0 });
    await rpcCall(chain.rpcUrl, 'anvil_mine', [`0x${(chain.addresses.deployBlock + 1000n - head).toString(16)}`]);
    await waitFor(/epoch 2: elected 2 validators/);
    stop.abort();
    expect(await done).toBe(0);
    expect(out.filter((l) => l.startsWith('ERR'))).toEqual([]);
  });

  it('names the missing role when the key cannot elect', async () => {
    const r = await run(['once', '--ledger', ledgerPath, '--rpc', chain.rpcUrl, '--contracts', contractsFile, '--key', ANVIL_KEYS[5], '--epoch-blocks', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/lacks ORACLE_ROLE.*grantRole/);
  });
});
