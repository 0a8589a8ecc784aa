/**
 * The open-tier gate and the slasher against a real chain (anvil, the real contracts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { hexToBytes, type Address, type Hex } from 'viem';
import { ANVIL_KEYS, asAccount, CgnContracts, connect, signStakeBinding, stakingAbi, startLocalChain, type LocalChain } from '@cgn/chain';
import { frame, generateMinerKey, minerIdOf, type AdvertiseFrame } from '@cgn/protocol';
import type { DisputeVerdict } from '../broker/redundancy.js';
import { buildEvidence, EvidenceStore, type Evidence } from './evidence.js';
import { OpenTierGate, stakeReader } from './open-tier.js';
import { Slasher } from './slasher.js';

const T = 10n ** 18n;
const log = pino({ level: process.env['CGN_TEST_LOG'] ?? 'silent' });

let chain: LocalChain;
let dir: string;
const stakers: { key: Hex; c: CgnContracts }[] = [];

beforeAll(async () => {
  chain = await startLocalChain({ minOpenTierStake: 10n * T, unbondingDelaySeconds: 3600 });
  for (const key of [ANVIL_KEYS[4]!, ANVIL_KEYS[5]!, ANVIL_KEYS[6]!]) {
    const c = await asAccount(chain, key);
    await chain.contracts.mint(c.me, 100n * T);
    stakers.push({ key, c });
  }
  dir = mkdtempSync(join(tmpdir(), 'cgn-slashing-'));
});

afterAll(async () => {
  await chain?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function advert(key: Hex | null, minerId: string, over: Partial<AdvertiseFrame> = {}): Promise<AdvertiseFrame> {
  const base = frame({ t: 'advertise', tier: 'open', slots: 1, dservices: [{ name: 'echo', version: '1', digest: 'd' }], resources: { cpus: 1, memoryMb: 1 } }) as AdvertiseFrame;
  if (key === null) return { ...base, ...over };
  const p = await signStakeBinding(key, minerId);
  return { ...base, payoutAddress: p.address, stakeProof: hexToBytes(p.proof), ...over };
}

const newMinerId = () => minerIdOf(generateMinerKey().publicKey);

function verdictAgainst(cheater: string, workId: string): DisputeVerdict {
  const r = (minerId: string, h: string) => ({ minerId, resultHash: h.repeat(64), claimedHash: '0'.repeat(64), status: 200, bodyBytes: 1, receivedAt: Date.now() });
  return { workId, account: 'a', dservice: 'echo', requestHash: 'ab'.repeat(32), receivedAt: Date.now(), replicas: [r('aa'.repeat(32), '1'), r(cheater, '2'), r('cc'.repeat(32), '1')], majorityHash: '1'.repeat(64), cheater };
}

describe('open tier gate', () => {
  it('refuses a miner without stake, a missing or foreign proof, and admits a staked one', async () => {
    const store = new EvidenceStore(join(dir, 'gate.jsonl'));
    const gate = new OpenTierGate(store, stakeReader(chain.contracts), { cacheMs: 60_000 });
    const [a, b] = stakers;
    const id = newMinerId();

    const none = await gate.admit(id, await advert(null, id));
    expect(none).toMatchObject({ ok: false, reason: expect.stringMatching(/requires a staked address.*--payout-address/) });

    const unstaked = await gate.admit(id, await advert(a!.key, id));
    expect(unstaked).toMatchObject({ ok: false, reason: expect.stringMatching(/has 0 tokens staked; the open tier needs at least 10/) });

    await a!.c.stake(10n * T);
    // b's proof for a's address: the signature does not recover to the address it claims.
    const borrowed = await advert(b!.key, id, { payoutAddress: a!.c.me });
    expect(await gate.admit(id, borrowed)).toMatchObject({ ok: false, reason: expect.stringMatching(/signed by .* not by/) });
    // a's proof made for another miner key does not carry over either.
    const otherId = newMinerId();
    expect(await gate.admit(id, await advert(a!.key, otherId))).toMatchObject({ ok: false });

    expect(await gate.admit(id, await advert(a!.key, id))).toEqual({ ok: true, address: a!.c.me });
    expect(gate.addressOf(id)).toBe(a!.c.me);
    expect(await gate.refresh()).toEqual([]);

    // Unbonding takes the stake below the minimum: the next re-check drops the miner.
    await a!.c.requestUnbond(5n * T);
    const gone = await gate.refresh();
    expect(gone).toEqual([{ minerId: id, reason: expect.stringMatching(/has 5 tokens staked/) }]);
    expect(gate.addressOf(id)).toBeNull();
    store.close();
  });
});

describe('slasher', () => {
  it('slashes a cheater once with the evidence hash, survives a restart, and never slashes twice', async () => {
    const [, , c] = stakers;
    await c!.c.stake(30n * T);
    const cheaterId = newMinerId();
    const addressOf = (id: string): Address | null => (id === cheaterId ? c!.c.me : null);
    const path = join(dir, 'slash.jsonl');
    const operator = await connect({ rpcUrl: chain.rpcUrl, privateKey: ANVIL_KEYS[0]!, chainId: chain.addresses.chainId });
    const contracts = new CgnContracts(operator, chain.addresses);

    // Stored, then the node "crashes" before slashing: the evidence stays pending.
    let store = new EvidenceStore(path);
    const e: Evidence = buildEvidence(verdictAgainst(cheaterId, 'w_slash_1'), { node: 'n1', addressOf });
    store.add(e);
    store.close();

    store = new EvidenceStore(path);
    expect(store.isBanned(cheaterId, null)).toBe(true);
    const slasher = new Slasher(contracts, store, log, { backoffMs: 20, maxBackoffMs: 100 });
    for (const p of store.pending()) slasher.enqueue(p.hash);
    await slasher.idle();
    const outcome = store.outcome(e.hash);
    expect(outcome).toMatchObject({ status: 'slashed', amount: (30n * T).toString() });
    const gas = BigInt((outcome as { gasUsed: string }).gasUsed);
    expect(gas).toBeGreaterThan(20_000n);
    expect(gas).toBeLessThan(200_000n);
    console.log(`gas per slash: ${gas}`);

    const events = await chain.clients.public.getContractEvents({ address: chain.addresses.staking, abi: stakingAbi, eventName: 'Slashed', args: { staker: c!.c.me }, fromBlock: chain.addresses.deployBlock });
    expect(events.map((l) => l.args.evidenceHash)).toEqual([e.hash]);
    expect(await chain.contracts.balances(c!.c.me)).toMatchObject({ stake: 0n, banned: true, openTierEligible: false });

    // The outcome was lost (say the node died right after the transaction): the chain says it is used.
    const store2 = new EvidenceStore(join(dir, 'slash-copy.jsonl'));
    store2.add(e);
    const again = new Slasher(contracts, store2, log, { backoffMs: 20, maxBackoffMs: 100 });
    again.enqueue(e.hash);
    await again.idle();
    expect(store2.outcome(e.hash)).toEqual({ status: 'already-slashed' });
    // Other evidence against the same, already emptied and banned, staker: nothing to take.
    const e2 = buildEvidence(verdictAgainst(cheaterId, 'w_slash_2'), { node: 'n1', addressOf });
    store2.add(e2);
    again.enqueue(e2.hash);
    await again.idle();
    expect(store2.outcome(e2.hash)).toEqual({ status: 'nothing-to-slash' });
    const after = await chain.clients.public.getContractEvents({ address: chain.addresses.staking, abi: stakingAbi, eventName: 'Slashed', args: { staker: c!.c.me }, fromBlock: chain.addresses.deployBlock });
    expect(after).toHaveLength(1);
    store.close();
    store2.close();
  });

  it('records a refusal when its key lacks SLASHER_ROLE', async () => {
    const [, b] = stakers;
    await b!.c.stake(10n * T);
    const noRole = await connect({ rpcUrl: chain.rpcUrl, privateKey: ANVIL_KEYS[7]!, chainId: chain.addresses.chainId });
    const store = new EvidenceStore(join(dir, 'refused.jsonl'));
    const id = newMinerId();
    const e = buildEvidence(verdictAgainst(id, 'w_refused'), { node: 'n1', addressOf: (m) => (m === id ? b!.c.me : null) });
    store.add(e);
    const slasher = new Slasher(new CgnContracts(noRole, chain.addresses), store, log, { backoffMs: 20, maxBackoffMs: 100 });
    slasher.enqueue(e.hash);
    await slasher.idle();
    expect(store.outcome(e.hash)).toEqual({ status: 'refused', reason: 'AccessControlUnauthorizedAccount' });
    expect((await chain.contracts.balances(b!.c.me)).stake).toBe(10n * T);
    store.close();
  });

  it('retries while the chain is unreachable and stops cleanly', async () => {
    const down = await connect({ rpcUrl: 'http://127.0.0.1:9', privateKey: ANVIL_KEYS[0]!, chainId: chain.addresses.chainId });
    const store = new EvidenceStore(join(dir, 'down.jsonl'));
    const id = newMinerId();
    const e = buildEvidence(verdictAgainst(id, 'w_down'), { node: 'n1', addressOf: () => stakers[1]!.c.me });
    store.add(e);
    const slasher = new Slasher(new CgnContracts(down, chain.addresses), store, log, { backoffMs: 10, maxBackoffMs: 20 });
    slasher.enqueue(e.hash);
    const until = Date.now() + 20_000;
    while (slasher.counters.retries < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(slasher.counters.retries).toBeGreaterThanOrEqual(2);
    await slasher.stop();
    expect(store.outcome(e.hash)).toBeUndefined(); // still pending for the next start
    expect(store.pending().map((p) => p.hash)).toEqual([e.hash]);
    store.close();
  });
});
