import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { createPublicClient, http, keccak256, toHex, type Address, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorClosedCycle } from './anchor.js';
import { ANVIL_KEYS, freePort } from './anvil.js';
import { runWalletFromArgs } from './cli.js';
import type { CgnPublicClient } from './clients.js';
import type { CgnContracts } from './contracts.js';
import { addressesToJson } from './deploy.js';
import { validatorElectionAbi } from './generated/index.js';
import { asAccount, startLocalChain, type LocalChain } from './local.js';
import { startWalletServer, type WalletServer } from './wallet-http.js';
import { walletView, walletViewJson, type WalletView } from './wallet-view.js';

const T = 10n ** 18n;
let chain: LocalChain;
let op: CgnContracts;
let user: CgnContracts;
let other: CgnContracts;
let U: Address;
let evidence: Hex;
let server: WalletServer;
let dir: string;
let contractsFile: string;

beforeAll(async () => {
  chain = await startLocalChain({ unbondingDelaySeconds: 3600 });
  op = chain.contracts;
  user = await asAccount(chain, ANVIL_KEYS[1]);
  other = await asAccount(chain, ANVIL_KEYS[2]);
  U = user.me;
  for (const c of [user, other, op]) await op.mint(c.me, 1000n * T);
  await op.deposit(200n * T); // the operator's own escrow pays the anchors
  // The sequence under test, with another address's activity interleaved.
  await user.deposit(100n * T);
  await other.deposit(5n * T, U); // someone pays into U's escrow
  await user.deposit(3n * T, other.me); // U pays into someone else's
  await other.stake(30n * T);
  const trees = [1, 2].map((id) =>
    StandardMerkleTree.of([[U, String((id === 1 ? 40n : 60n) * T)], [other.me, String(5n * T)]], ['address', 'uint256']),
  );
  for (const [i, tree] of trees.entries()) {
    await anchorClosedCycle(op, { cycleId: i + 1, payoutRoot: tree.root, batchRoots: [], total: ((i === 0 ? 40n : 60n) + 5n) * T, debits: [{ address: op.me, amount: ((i === 0 ? 40n : 60n) + 5n) * T }] });
  }
  await user.claim({ cycleId: 2, amount: 60n * T, proof: trees[1]!.getProof(0) as Hex[] });
  await user.claim({ cycleId: 1, amount: 40n * T, proof: trees[0]!.getProof(0) as Hex[] });
  await op.setWithdrawable(U, 2, 20n * T);
  await user.withdraw(20n * T);
  await user.stake(50n * T);
  await user.registerCandidate();
  await op.setServiceLevel(U, 7500);
  await op.electEpoch(1, keccak256(toHex('epoch 1')));
  await user.requestUnbond(10n * T);
  evidence = keccak256(toHex('U returned a wrong result'));
  await op.slash(U, evidence);
  await other.deposit(1n * T); // after: not U's
  server = await startWalletServer({ client: op.clients.public, addresses: chain.addresses });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cgn-wallet-view-'));
  contractsFile = path.join(dir, 'contracts.json');
  fs.writeFileSync(contractsFile, addressesToJson(chain.addresses));
});

afterAll(async () => {
  await server?.close();
  await chain?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('wallet view', () => {
  it('returns exactly the address\'s deposits, claims, stakes and slashes, and its balances', async () => {
    const v = await walletView(op.clients.public, chain.addresses, U);
    expect(v.history.map((e) => [e.kind, e.amount])).toEqual([
      ['deposit', 100n * T],
      ['deposit', 5n * T],
      ['deposit-for', 3n * T],
      ['claim', 60n * T],
      ['claim', 40n * T],
      ['withdrawable', 20n * T],
      ['withdrawal', 20n * T],
      ['stake', 50n * T],
      ['candidate-registered', 50n * T],
      ['service-level', 0n],
      ['unbond-request', 10n * T],
      ['slash', 50n * T],
      ['banned', 0n],
    ]);
    expect(v.history[1]!.counterparty).toBe(other.me);
    expect(v.history[2]!.counterparty).toBe(other.me);
    expect(v.history[9]!.bps).toBe(7500);
    expect(v.history[11]!.evidenceHash).toBe(evidence);
    expect(v.claims.map((c) => [c.cycleId, c.amount])).toEqual([[1n, 40n * T], [2n, 60n * T]]);
    expect(v.balances).toEqual({
      tokens: (1000n - 100n - 3n + 60n + 40n + 20n - 50n) * T,
      escrow: (100n + 5n - 20n) * T,
      withdrawable: 0n,
      stake: 0n,
      unbonding: 0n,
      unbondingReleaseAt: 0n,
      banned: true,
      openTierEligible: false,
    });
    expect(v.validator).toEqual({ candidate: true, serviceLevel: 7500, weight: 0n, electedEpochs: [1n] });
    expect(v.totals).toEqual({ deposited: 105n * T, depositedForOthers: 3n * T, withdrawn: 20n * T, claimed: 100n * T, staked: 50n * T, unbonded: 0n, slashed: 50n * T });
    // Same answer whatever the page size of the event scan.
    expect(await walletView(op.clients.public, chain.addresses, U, { toBlock: v.asOf, pageBlocks: 1n })).toEqual(v);
    expect(await walletView(op.clients.public, chain.addresses, U, { toBlock: v.asOf, pageBlocks: 7n })).toEqual(v);
  });

  it('shows an address with no activity as empty, not as an error', async () => {
    const nobody = '0x000000000000000000000000000000000000dEaD';
    const v = await walletView(op.clients.public, chain.addresses, nobody);
    expect(v.history).toEqual([]);
    expect(v.validator).toEqual({ candidate: false, serviceLevel: 0, weight: 0n, electedEpochs: [] });
  });
});

describe('wallet HTTP API (real socket)', () => {
  const get = async (p: string, init?: RequestInit) => {
    const res = await fetch(server.url + p, init);
    return { status: res.status, type: res.headers.get('content-type'), allow: res.headers.get('allow'), body: (await res.json()) as Record<string, unknown> };
  };

  it('GET /v1/wallet/{address} answers the view as JSON (lower-case address accepted)', async () => {
    const r = await get(`/v1/wallet/${U.toLowerCase()}`);
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/json/);
    const v = await walletView(op.clients.public, chain.addresses, U, { toBlock: BigInt(r.body['asOf'] as string) });
    expect(r.body).toEqual(JSON.parse(walletViewJson(v)));
    expect(r.body['address']).toBe(U);
    expect((r.body['balances'] as Record<string, unknown>)['escrow']).toBe(String(85n * T));
  });

  it('answers 400 problem+json for a malformed address or number, 404 and 405 otherwise', async () => {
    for (const bad of ['0x123', 'hello', `${U}00`, U.replace(/[a-f]/, (c) => c.toUpperCase()).replace(/[A-F]/, (c) => c.toLowerCase())]) {
      const r = await get(`/v1/wallet/${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.type).toBe('application/problem+json');
      expect(r.body).toMatchObject({ status: 400, code: 'bad_request' });
      expect(String(r.body['detail'])).toMatch(/address|checksum/);
    }
    expect((await get(`/v1/wallet/${U}?fromBlock=minus-one`)).status).toBe(400);
    expect((await get('/v1/validators?epoch=-1')).status).toBe(400);
    expect((await get('/v1/nothing')).status).toBe(404);
    const post = await get(`/v1/wallet/${U}`, { method: 'POST' });
    expect(post).toMatchObject({ status: 405, allow: 'GET, HEAD' });
  });

  it('GET /v1/validators gives the set and the proposer of a round, as the contract does', async () => {
    const r = await get('/v1/validators?epoch=1&round=3');
    expect(r.status).toBe(200);
    const proposer = await op.clients.public.readContract({ address: chain.addresses.election, abi: validatorElectionAbi, functionName: 'proposerOf', args: [1n, 3n] });
    expect(r.body).toMatchObject({ epoch: '1', elected: true, validators: [U], round: '3', proposer });
    expect((await get('/v1/validators')).body['epoch']).toBe('1');
    expect((await get('/v1/validators?epoch=9')).body).toMatchObject({ elected: false, validators: [], proposer: null });
    expect((await get('/healthz')).body).toMatchObject({ ok: true, chainId: 31337 });
  });

  it('answers 502 when the chain endpoint is down', async () => {
    const dead = createPublicClient({ chain: op.clients.chain, transport: http(`http://127.0.0.1:${await freePort()}`, { retryCount: 0 }) }) as CgnPublicClient;
    const s = await startWalletServer({ client: dead, addresses: chain.addresses });
    try {
      const res = await fetch(`${s.url}/v1/wallet/${U}`);
      expect(res.status).toBe(502);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/chain endpoint failed/);
    } finally {
      await s.close();
    }
  });
});

describe('cgn wallet history / validators / serve', () => {
  const run = async (args: string[], signal?: AbortSignal, out: string[] = []) => {
    const err: string[] = [];
    const code = await runWalletFromArgs(args, { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env: {}, ...(signal ? { signal } : {}) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const base = () => ['--rpc', chain.rpcUrl, '--contracts', contractsFile];

  it('prints the history of an address given as an argument, as a table or JSON', async () => {
    const r = await run(['history', U, ...base()]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/escrow\s+85 CGN/);
    expect(r.out).toMatch(/banned\s+yes/);
    expect(r.out).toMatch(/candidate, service level 75\.00%.*elected in epoch 1/);
    expect(r.out).toMatch(/claim\s+40 CGN\s+cycle 1/);
    expect(r.out).toMatch(/slash\s+50 CGN\s+evidence 0x/);
    const j = await run(['history', U, ...base(), '--json']);
    expect((JSON.parse(j.out) as WalletView).history).toHaveLength(13);
    const bad = await run(['history', '0xnope', ...base()]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not an address/);
  });

  it('prints the validator set and the proposer of a round', async () => {
    const r = await run(['validators', ...base(), '--epoch', '1', '--round', '3']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`proposer\\s+${U} \\(round 3\\)`));
    expect((await run(['validators', ...base(), '--epoch', '7'])).out).toMatch(/epoch 7: not elected/);
    expect((await run(['validators', ...base(), '--epoch', 'x'])).code).toBe(2);
  });

  it('serves the HTTP API until stopped', async () => {
    const stop = new AbortController();
    const out: string[] = [];
    const done = run(['serve', ...base(), '--port', '0'], stop.signal, out);
    const deadline = Date.now() + 10_000;
    while (out.length === 0) {
      if (Date.now() > deadline) throw new Error('serve did not report its address');
      await new Promise((r) => setTimeout(r, 20));
    }
    const { url } = JSON.parse(out[0]!) as { url: string };
    const res = await fetch(`${url}/v1/wallet/${U}`);
    expect(res.status).toBe(200);
    stop.abort();
    expect((await done).code).toBe(0);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
