/**
 * The newcomer's money journey end to end, over real processes and only the commands a user runs
 * (issue 15): `npm start`'s network (central, anvil with the contracts, a node, cgn settle); a new
 * account created at central, its owner's API key; a new wallet funded from the faucet, linked to
 * the account and deposited into escrow; a new miner with a fresh wallet (`--payout-address new`)
 * earning; the cycle anchored; the miner's claim submitted for it without gas by cgn settle; and
 * the miner's token balance rising by exactly what the ledger credited it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch as undiciFetch } from 'undici';
import { addressesFromJson, CgnContracts, connect } from '@cgn/chain';
import { SqliteLedgerStore } from '@cgn/ledger';
import { privateKeyToAccount } from 'viem/accounts';
import { CGN_BIN, ECHO, tempDir, waitFor } from './harness.js';

interface DevJson {
  workUrl: string; statusUrl: string; minerUrl: string; centralUrl: string; caFile: string;
  admin: { login: string; password: string };
  chain: { rpcUrl: string; contractsFile: string };
}

const T = 10n ** 18n;

describe("a newcomer's money journey", () => {
  const tmp = tempDir('cgn-journey-');
  const dir = tmp.path;
  let dev: ChildProcess;
  let miner: ChildProcess | null = null;
  let minerLog = '';
  let info: DevJson;
  let env: NodeJS.ProcessEnv;
  let agent: Agent;

  const cgn = (args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> =>
    new Promise((resolve) => {
      const p = execFile(process.execPath, [CGN_BIN, ...args], { env, cwd: dir, timeout: 90_000 }, (err, out, errOut) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out, err: errOut }));
      if (stdin !== undefined) p.stdin!.end(stdin);
    });
  const ok = async (args: string[], stdin?: string): Promise<string> => {
    const r = await cgn(args, stdin);
    expect(r.code, `cgn ${args.join(' ')}\n${r.err}`).toBe(0);
    return r.out;
  };

  beforeAll(async () => {
    dev = spawn(process.execPath, [CGN_BIN, 'dev', '--quiet', '--dir', dir, '--miners', '0', '--work-port', '0', '--miner-port', '0', '--central-port', '0', '--cycle', '6s'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    dev.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: dev.stdout! }).on('line', (l) => {
        if (l.startsWith('{')) resolve();
      });
      dev.once('exit', (code) => reject(new Error(`cgn dev exited with ${code}: ${stderr}`)));
    });
    info = JSON.parse(readFileSync(join(dir, 'dev.json'), 'utf8')) as DevJson;
    env = { ...process.env, NODE_EXTRA_CA_CERTS: info.caFile, CGN_DEV_JSON: join(dir, 'dev.json'), CGN_LOG_LEVEL: 'info' };
    agent = new Agent({ connect: { ca: readFileSync(info.caFile) } });
  }, 180_000);

  afterAll(async () => {
    miner?.kill('SIGTERM');
    if (dev) {
      dev.kill('SIGINT');
      await new Promise((r) => (dev.exitCode !== null ? r(null) : dev.once('exit', r)));
    }
    await agent?.close();
    tmp.cleanup();
  }, 90_000);

  it('new account, funded wallet, work billed, a new miner paid without gas, exactly what the ledger says', async () => {
    const central = ['--central', info.centralUrl];
    const admin = [...central, '--session', join(dir, 'admin.session.json')];
    const owner = [...central, '--session', join(dir, 'owner.session.json')];
    const ownerPassword = 'Tall-Violet-Harbor-Quietly-42';

    // 1. An administrator creates the account; its owner logs in and makes an API key.
    await ok(['account', 'login', '--login', info.admin.login, '--password-stdin', ...admin], `${info.admin.password}\n`);
    const created = JSON.parse(await ok(['account', 'create', '--name', 'newco', '--kind', 'enterprise', '--owner-login', 'newco-owner', '--password-stdin', '--json', ...admin], `${ownerPassword}\n`)) as { account: { id: string } };
    const accountId = created.account.id;
    await ok(['account', 'login', '--login', 'newco-owner', '--password-stdin', ...owner], `${ownerPassword}\n`);
    const key = (JSON.parse(await ok(['account', 'keys', 'create', '--name', 'journey', '--json', ...owner])) as { key: string }).key;
    expect(key).toMatch(/^cgn_/);

    // 2. A new wallet, funded from the local faucet (CGN and gas), linked to the account, deposited.
    const walletFile = join(dir, 'dapp.key');
    const made = await ok(['wallet', 'new', '--out', walletFile]);
    const dapp = /0x[0-9a-fA-F]{40}/.exec(made)![0] as `0x${string}`;
    await ok(['wallet', 'faucet', '--address', dapp, '--amount', '10']);
    const ledger = join(dir, 'node', 'ledger.sqlite');
    await ok(['ledger', 'link-address', '--ledger', ledger, '--account', accountId, '--address', dapp]);
    await ok(['wallet', 'deposit', '--amount', '5', '--key-file', walletFile]);
    const balance = () => {
      const s = new SqliteLedgerStore({ path: ledger, readonly: true });
      try {
        return s.balance(accountId);
      } finally {
        s.close();
      }
    };
    await waitFor(() => balance().deposited === 5n * T, 'cgn settle to credit the deposit', 60_000);

    // 3. A new miner with a fresh wallet made on the spot.
    const minerKey = join(dir, 'journey-miner.pem');
    miner = spawn(process.execPath, [CGN_BIN, 'miner', '--node', info.minerUrl, '--ca-file', info.caFile, '--key', minerKey, '--dservice', ECHO, '--payout-address', 'new'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    miner.stderr!.on('data', (d: Buffer) => (minerLog += d.toString()));
    const status = async () => (await (await undiciFetch(info.statusUrl, { dispatcher: agent })).json()) as { miners: unknown[] };
    await waitFor(async () => (await status()).miners.length === 1, 'the new miner to join', 60_000);

    // 4. Work, served and billed to the new account.
    const post = (body: string) => undiciFetch(`${info.workUrl}echo/`, { method: 'POST', body, headers: { authorization: `Bearer ${key}` }, dispatcher: agent });
    await waitFor(async () => (await post('first')).status === 200, "the node to see the account's deposit", 30_000);
    for (let i = 0; i < 5; i++) {
      const r = await post(`journey ${i}`);
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(`journey ${i}`);
      expect(r.headers.get('cgn-cost')).toMatch(/^\d+ uUSD$/);
    }
    await waitFor(() => balance().spent > 0n, 'the work to be charged to the account');

    // 5. The cycle is anchored and the miner's claim relayed for it: it never held gas.
    const contracts = new CgnContracts(await connect({ rpcUrl: info.chain.rpcUrl }), addressesFromJson(readFileSync(info.chain.contractsFile, 'utf8')));
    // Its payout wallet: made at start, the key beside the miner key (<name>.payout.key, 0600).
    const payoutKey = /0x[0-9a-fA-F]{64}/.exec(readFileSync(join(dir, 'journey-miner.payout.key'), 'utf8'))![0] as `0x${string}`;
    const minerAddress = privateKeyToAccount(payoutKey).address;
    expect(minerLog).toContain(minerAddress);
    const owed = () => {
      const s = new SqliteLedgerStore({ path: ledger, readonly: true });
      try {
        const anchored = new Set(s.anchors().map((a) => a.cycle));
        return s.cycles().filter((c) => anchored.has(c.id)).flatMap((c) => s.credits(c.id)).filter((c) => c.address === minerAddress.toLowerCase()).reduce((a, c) => a + c.tokens, 0n);
      } finally {
        s.close();
      }
    };
    await waitFor(() => owed() > 0n, 'a cycle with the miner\'s earnings to be anchored', 90_000);
    await waitFor(async () => (await contracts.tokenBalance(minerAddress)) === owed(), 'the relayed claim to pay the miner exactly its ledger credits', 90_000);
    expect(await contracts.ethBalance(minerAddress)).toBe(0n);
    // The account paid for it out of its own escrow, and no account went below zero.
    const b = balance();
    expect(b.spent).toBeLessThanOrEqual(b.deposited);
    expect(await contracts.escrowOf(dapp)).toBeLessThan(5n * T);
  }, 420_000);
});
