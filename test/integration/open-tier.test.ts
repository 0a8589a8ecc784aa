/**
 * The open tier end to end, over real sockets, real miner processes and a real chain (anvil with
 * the CGN contracts): staked miners join, an unstaked one is refused, every request runs on two
 * miners, a miner that returns wrong bytes is outvoted by a third, the DApp still gets the right
 * answer (metered once), and the cheater's stake is slashed on chain with the evidence hash and
 * it is banned: dropped at once, refused when it comes back, and given no more work.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexToBytes, type Hex } from 'viem';
import { ANVIL_KEYS, addressesToJson, asAccount, signStakeBinding, stakingAbi, startLocalChain, type CgnContracts, type LocalChain } from '@cgn/chain';
import { generateMinerKey, minerIdOf, type ErrorFrame } from '@cgn/protocol';
import { CLOSE } from '@cgn/node';
import { ECHO, ScriptedMiner, minersOf, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

const T = 10n ** 18n;

describe('open tier: stake, redundant execution and slashing', () => {
  let chain: LocalChain;
  let t: TestNode;
  const tmp = tempDir('cgn-open-');
  const miners: MinerProcess[] = [];
  const scripted: ScriptedMiner[] = [];
  const wallets: { key: Hex; c: CgnContracts }[] = [];
  let cheater: ScriptedMiner;

  const proofFor = async (key: Hex, minerId: string) => {
    const p = await signStakeBinding(key, minerId);
    return { payoutAddress: p.address, stakeProof: hexToBytes(p.proof), proofHex: p.proof };
  };

  beforeAll(async () => {
    chain = await startLocalChain({ minOpenTierStake: 10n * T, unbondingDelaySeconds: 3600 });
    for (const key of [ANVIL_KEYS[1]!, ANVIL_KEYS[2]!, ANVIL_KEYS[3]!]) {
      const c = await asAccount(chain, key);
      await chain.contracts.mint(c.me, 100n * T);
      await c.stake(20n * T);
      wallets.push({ key, c });
    }
    const contractsFile = join(tmp.path, 'chain-contracts.json');
    writeFileSync(contractsFile, addressesToJson(chain.addresses));
    t = await startTestNode({ staking: { rpcUrl: chain.rpcUrl, contractsFile, slasherKey: ANVIL_KEYS[0]!, refreshMs: 500 } });

    // Two honest miners: real `cgn miner` processes, staked, with their stake proofs.
    for (const [i, w] of wallets.slice(0, 2).entries()) {
      const key = generateMinerKey();
      const p = await proofFor(w.key, minerIdOf(key.publicKey));
      miners.push(spawnMiner(t.node.minerUrl, tmp.path, { name: `honest${i}`, key, dservices: [ECHO], args: ['--payout-address', p.payoutAddress, '--stake-proof', p.proofHex] }));
    }
    // The cheater: staked too, speaks the real protocol, answers with other bytes.
    const ckey = generateMinerKey();
    const cp = await proofFor(wallets[2]!.key, minerIdOf(ckey.publicKey));
    // Many slots and instant answers: the broker's assignment favours it, so it is in the pairs.
    cheater = new ScriptedMiner({ ack: true, answer: true, slots: 512, advert: { payoutAddress: cp.payoutAddress, stakeProof: cp.stakeProof }, tamper: (b) => Buffer.concat([Buffer.from(b), Buffer.from(' (tampered)')]) }, ckey);
    scripted.push(cheater);
    await cheater.connect(t.node.minerUrl);
    await waitFor(() => minersOf(t.node).length === 3, 'two honest miners and the cheater to join the open tier', 30_000);
  });

  afterAll(async () => {
    for (const m of miners) m.kill('SIGKILL');
    for (const s of scripted) s.ws?.terminate();
    await t?.cleanup();
    await chain?.stop();
    tmp.cleanup();
  });

  const post = (body: string) => fetch(t.url('echo', '/'), { method: 'POST', body, headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'text/plain' } });

  it('refuses a miner without stake from the open tier, with a clear error', async () => {
    const key = generateMinerKey();
    const p = await proofFor(ANVIL_KEYS[8]!, minerIdOf(key.publicKey));
    const unstaked = new ScriptedMiner({ ack: true, answer: true, advert: { payoutAddress: p.payoutAddress, stakeProof: p.stakeProof } }, key);
    scripted.push(unstaked);
    await unstaked.connect(t.node.minerUrl);
    const closed = await unstaked.closed;
    expect(closed.code).toBe(CLOSE.tierRefused);
    const err = unstaked.received.find((f) => f.t === 'error') as ErrorFrame | undefined;
    expect(err).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/open tier refused: .* has 0 tokens staked; the open tier needs at least 10/) });
    expect(minersOf(t.node).map((m) => m.id)).not.toContain(unstaked.id);

    const noProof = new ScriptedMiner({ ack: true, answer: true });
    scripted.push(noProof);
    await noProof.connect(t.node.minerUrl);
    expect((await noProof.closed).code).toBe(CLOSE.tierRefused);
    expect((noProof.received.find((f) => f.t === 'error') as ErrorFrame).message).toMatch(/requires a staked address/);
  });

  it('answers correctly while a miner returns wrong bytes, slashes it on chain with the evidence hash and bans it', async () => {
    const cheaterAddress = wallets[2]!.c.me;
    const ids: string[] = [];
    for (let i = 0; i < 40 && t.node.openTier!.store.all().length === 0; i++) {
      const res = await post(`request ${i}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`request ${i}`);
      ids.push(res.headers.get('cgn-work-id')!);
    }
    const evidence = t.node.openTier!.store.all();
    expect(evidence, 'the cheater was caught').toHaveLength(1);
    const e = evidence[0]!;
    expect(e.record.cheater).toEqual({ minerId: cheater.id, address: cheaterAddress });
    expect(e.record.replicas).toHaveLength(3);
    expect(new Set(e.record.replicas.map((r) => r.minerId)).size).toBe(3);
    expect(ids).toContain(e.record.workId);

    // Dropped at once.
    expect((await cheater.closed).reason).toMatch(/proven wrong result/);
    expect(minersOf(t.node).map((m) => m.id)).not.toContain(cheater.id);

    // Slashed on chain: the Slashed event carries the evidence hash; stake gone, banned.
    await waitFor(async () => t.node.openTier!.store.outcome(e.hash)?.status === 'slashed', 'the slash transaction', 30_000);
    const events = await chain.clients.public.getContractEvents({
      address: chain.addresses.staking, abi: stakingAbi, eventName: 'Slashed', args: { staker: cheaterAddress }, fromBlock: chain.addresses.deployBlock,
    });
    expect(events.map((l) => [l.args.evidenceHash, l.args.amount])).toEqual([[e.hash, 20n * T]]);
    expect(await chain.contracts.balances(cheaterAddress)).toMatchObject({ stake: 0n, banned: true, openTierEligible: false });

    // Metered once per request (the verification runs are not billed), never to the cheater.
    const db = new Database(join(t.dir, 'ledger.sqlite'), { readonly: true });
    try {
      await waitFor(() => (db.prepare('SELECT COUNT(*) AS n FROM microtransactions').get() as { n: number }).n >= ids.length, 'the records');
      for (const id of ids) {
        const rows = db.prepare('SELECT miner FROM microtransactions WHERE work_id = ?').all(id) as { miner: string }[];
        expect(rows, `records of ${id}`).toHaveLength(1);
      }
      const rows = db.prepare(`SELECT miner FROM microtransactions WHERE work_id = ?`).all(e.record.workId) as { miner: string }[];
      expect(rows[0]!.miner).not.toBe(cheater.id);
    } finally {
      db.close();
    }
    // Adaptive sampling: the new cheater's unit was checked; a unit of an honest miner proven clean
    // may go unchecked. Every request is one or the other, and every checked one cost an execution more.
    const status = t.node.status() as { redundancy: { runs: number; unchecked: number; cheatersProven: number; extraExecutions: number } };
    expect(status.redundancy.runs + status.redundancy.unchecked).toBe(ids.length);
    expect(status.redundancy.runs).toBeGreaterThanOrEqual(1);
    expect(status.redundancy.cheatersProven).toBe(1);
    expect(status.redundancy.extraExecutions).toBeGreaterThanOrEqual(status.redundancy.runs);
  });

  it('refuses the banned miner when it comes back, and it gets no more open-tier work', async () => {
    const back = new ScriptedMiner({ ack: true, answer: true, advert: await proofFor(wallets[2]!.key, cheater.id).then(({ payoutAddress, stakeProof }) => ({ payoutAddress, stakeProof })) }, cheater.key);
    scripted.push(back);
    await back.connect(t.node.minerUrl);
    expect((await back.closed).code).toBe(CLOSE.tierRefused);
    expect((back.received.find((f) => f.t === 'error') as ErrorFrame).message).toMatch(/banned/);

    // A new miner key behind the same (slashed, banned) address is refused too.
    const key = generateMinerKey();
    const p = await proofFor(wallets[2]!.key, minerIdOf(key.publicKey));
    const alias = new ScriptedMiner({ ack: true, answer: true, advert: { payoutAddress: p.payoutAddress, stakeProof: p.stakeProof } }, key);
    scripted.push(alias);
    await alias.connect(t.node.minerUrl);
    expect((await alias.closed).code).toBe(CLOSE.tierRefused);

    for (let i = 0; i < 6; i++) {
      const res = await post(`after ${i}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`after ${i}`);
    }
    for (const s of [back, alias]) expect(s.workIds()).toEqual([]);
  });

  it('drops a miner from the open tier once its stake unbonds below the minimum', async () => {
    const honest = wallets[0]!;
    await honest.c.requestUnbond(15n * T);
    await waitFor(() => minersOf(t.node).length === 1, 'the unbonding miner to be dropped at the next re-check', 20_000);
    // The miner logs the node's reason after the node has already dropped it: wait for the line, not the status.
    await waitFor(() => /has 5 tokens staked/.test(miners[0]!.stderr()), 'the miner to log why it was dropped');
  });

  it('slashes a miner that keeps reporting more CPU than it could have used, with the reports as evidence', async () => {
    const w = await asAccount(chain, ANVIL_KEYS[4]!);
    await chain.contracts.mint(w.me, 100n * T);
    await w.stake(20n * T);
    const key = generateMinerKey();
    const p = await proofFor(ANVIL_KEYS[4]!, minerIdOf(key.publicKey));
    // Right answers, absurd metering (the outside auditor's attack): 5,000 s of CPU for an echo.
    const liar = new ScriptedMiner({ ack: true, answer: true, slots: 512, advert: { payoutAddress: p.payoutAddress, stakeProof: p.stakeProof }, answerWith: () => ({ metering: { execUs: 1, cpuUs: 5_000_000_000 } }) }, key);
    scripted.push(liar);
    await liar.connect(t.node.minerUrl);
    await waitFor(() => minersOf(t.node).some((m) => m.id === liar.id), 'the liar to join');
    const before = t.node.openTier!.store.all().length;
    for (let i = 0; i < 60 && t.node.openTier!.store.all().length === before; i++) {
      const res = await post(`metered ${i}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`metered ${i}`);
    }
    const e = t.node.openTier!.store.all().at(-1)!;
    expect(e.record.kind).toBe('cgn/metering-over-report');
    expect(e.record.cheater).toEqual({ minerId: liar.id, address: w.me });
    if (e.record.kind !== 'cgn/metering-over-report') return;
    expect(e.record.reports).toHaveLength(3);
    for (const r of e.record.reports) {
      expect(r.reportedCpuUs).toBe(5_000_000_000);
      expect(r.billedCpuUs).toBeLessThanOrEqual(r.nodeExecUs * r.cpus);
    }
    expect((await liar.closed).reason).toMatch(/kept reporting more CPU time|quarantined/);
    await waitFor(async () => t.node.openTier!.store.outcome(e.hash)?.status === 'slashed', 'the slash transaction', 30_000);
    const events = await chain.clients.public.getContractEvents({
      address: chain.addresses.staking, abi: stakingAbi, eventName: 'Slashed', args: { staker: w.me }, fromBlock: chain.addresses.deployBlock,
    });
    expect(events.map((l) => l.args.evidenceHash)).toEqual([e.hash]);
    expect(await chain.contracts.balances(w.me)).toMatchObject({ stake: 0n, banned: true });
    // Each reported unit was billed within the node's own measurement, both figures kept.
    const db = new Database(join(t.dir, 'ledger.sqlite'), { readonly: true });
    try {
      await waitFor(() => e.record.kind === 'cgn/metering-over-report' && e.record.reports.every((r) => db.prepare('SELECT 1 FROM microtransactions WHERE work_id = ?').get(r.workId) !== undefined), 'the records');
      for (const r of e.record.reports) {
        const row = t.node.ledger.store.getRow(r.workId) as { record: { cpuUs: number; execUs: number; reportedCpuUs?: number } };
        expect(row.record.reportedCpuUs).toBe(5_000_000_000);
        expect(row.record.cpuUs).toBeLessThanOrEqual(row.record.execUs);
      }
    } finally {
      db.close();
    }
  });
});
