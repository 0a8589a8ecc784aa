/**
 * On-chain settlement end to end, over real processes and a real chain: anvil with the contracts;
 * a node (real sockets) whose ledger pays registered addresses; two `cgn miner` processes that
 * advertise payout addresses; the `cgn settle` daemon; and the commands a user runs
 * (`cgn ledger link-address`, `cgn wallet deposit|claim|withdraw`, `cgn ledger withdraw`).
 *
 * deposit -> the watcher credits it once final (and not again after a restart with a lost
 * cursor) -> work -> the settler closes cycles at a threshold and anchors each in one
 * transaction -> every beneficiary claims (one of them two cycles in one claimMany) -> token
 * balances move by exactly the ledger's credits; a second claim is refused; the unused balance
 * is withdrawn after the cycle closes, leaving the escrow empty.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANVIL_KEYS, addressesToJson, asAccount, MemoryWatcherStore, revertReason, rpcCall, Settler, startLocalChain, type CgnContracts, type LocalChain } from '@cgn/chain';
import { payableTokens } from '@cgn/ledger';
import { CGN_BIN, ECHO, ScriptedMiner, spawnMiner, startTestNode, tempDir, waitFor, type MinerProcess, type TestNode } from './harness.js';

const T = 10n ** 18n;
const CYCLE_RECORDS = 6;

function cgn(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CGN_BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

let chain: LocalChain;
let t: TestNode;
let tmp: { path: string; cleanup: () => void };
let contractsFile: string;
let ledgerPath: string;
let settle: { proc: ChildProcess; log: () => string; exited: Promise<number | null> } | null = null;
const miners: MinerProcess[] = [];
// Wallets: the paying account, two miners, the operator, the charity and the DService developer.
let payer: CgnContracts;
let who: Record<'miner1' | 'miner2' | 'operator' | 'charity' | 'developer', CgnContracts>;
const keyOf = { payer: ANVIL_KEYS[1], miner1: ANVIL_KEYS[2], miner2: ANVIL_KEYS[3], operator: ANVIL_KEYS[5], charity: ANVIL_KEYS[6], developer: ANVIL_KEYS[7] };

const chainArgs = () => ['--rpc', chain.rpcUrl, '--contracts', contractsFile];
const mine = (n: number) => rpcCall(chain.rpcUrl, 'anvil_mine', [`0x${n.toString(16)}`]);
const post = (body: string) => fetch(t.url('echo'), { method: 'POST', body, headers: { authorization: `Bearer ${t.apiKey}` } });

function startSettle(cursor: string): NonNullable<typeof settle> {
  const proc = spawn(
    process.execPath,
    [CGN_BIN, 'settle', '--ledger', ledgerPath, ...chainArgs(), '--key', ANVIL_KEYS[0], '--confirmations', '2', '--close-every', '0', '--close-at', String(CYCLE_RECORDS), '--interval', '50ms', '--cursor', cursor],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  return { proc, log: () => log, exited: new Promise((r) => proc.once('exit', (code) => r(code))) };
}

async function stopSettle(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (settle === null) return;
  settle.proc.kill(signal);
  await settle.exited;
  settle = null;
}

beforeAll(async () => {
  tmp = tempDir('cgn-settle-e2e-');
  chain = await startLocalChain({});
  contractsFile = join(tmp.path, 'contracts.json');
  writeFileSync(contractsFile, addressesToJson(chain.addresses));
  payer = await asAccount(chain, keyOf.payer);
  who = {
    miner1: await asAccount(chain, keyOf.miner1),
    miner2: await asAccount(chain, keyOf.miner2),
    operator: await asAccount(chain, keyOf.operator),
    charity: await asAccount(chain, keyOf.charity),
    developer: await asAccount(chain, keyOf.developer),
  };
  await chain.contracts.mint(payer.me, 100n * T);
  t = await startTestNode({
    dservices: [ECHO],
    billing: { enforceBalance: true },
    payTo: { operator: who.operator.me, charity: who.charity.me, developers: { 'cgn-examples': who.developer.me } },
  });
  ledgerPath = join(t.dir, 'ledger.sqlite');
  for (const [i, m] of [who.miner1, who.miner2].entries()) miners.push(spawnMiner(t.node.minerUrl, tmp.path, { name: `miner${i + 1}`, args: ['--payout-address', m.me] }));
  await waitFor(() => t.node.broker.snapshot().miners.length === 2, 'both miners to join');
}, 60_000);

afterAll(async () => {
  await stopSettle();
  for (const m of miners) m.kill();
  await Promise.all(miners.map((m) => m.exited));
  await t?.cleanup();
  await chain?.stop();
  tmp?.cleanup();
});

describe('on-chain settlement, end to end', () => {
  const deposit = 5n * T;

  it('credits an escrow deposit once it is final, and not again after a restart with a lost cursor', async () => {
    expect((await post('before any deposit')).status).toBe(402);
    // A node without central: its key file's account is new to the ledger, vouched for with --new-account.
    const link = await cgn(['ledger', 'link-address', '--ledger', ledgerPath, '--account', 'test-account', '--new-account', '--address', payer.me]);
    expect(link.code, link.stderr).toBe(0);
    const cursor = join(tmp.path, 'cursor.json');
    settle = startSettle(cursor);
    const dep = await cgn(['wallet', 'deposit', '--amount', '5', '--key', keyOf.payer, ...chainArgs()]);
    expect(dep.code, dep.stderr).toBe(0);
    await mine(2);
    await waitFor(() => t.node.ledger.store.balance('test-account').deposited === deposit, 'the deposit to be credited');

    // restart the settler, killed hard, without its cursor: the deposit is read again and refused
    await stopSettle('SIGKILL');
    rmSync(cursor, { force: true });
    settle = startSettle(cursor);
    await waitFor(() => settle!.log().includes('replay ignored'), 'the restarted settler to replay the deposit');
    expect(t.node.ledger.store.balance('test-account').deposited).toBe(deposit);
    expect(await chain.contracts.escrowOf(payer.me)).toBe(deposit);
  });

  it('closes cycles, anchors each once, and every beneficiary claims exactly its credits', async () => {
    // The node's balance guard reloads balances on a timer: wait until it lets work in.
    await waitFor(async () => (await post('first paid request')).status === 200, 'the node to see the deposit', 10_000);
    for (let i = 1; i < CYCLE_RECORDS; i++) expect((await post(`work ${i}`)).status).toBe(200);
    await waitFor(() => t.node.ledger.store.anchors().length === 1, 'cycle 1 to be closed and anchored');
    for (let i = 0; i < CYCLE_RECORDS; i++) expect((await post(`more work ${i}`)).status).toBe(200);
    await waitFor(() => t.node.ledger.store.anchors().length === 2, 'cycle 2 to be closed and anchored');

    const store = t.node.ledger.store;
    const cycles = [store.cycleSummary(1)!, store.cycleSummary(2)!];
    expect(cycles.map((c) => c.records)).toEqual([CYCLE_RECORDS, CYCLE_RECORDS]);
    // one anchoring transaction per cycle, holding the ledger's payout root and total
    const anchored = await chain.clients.public.getContractEvents({ address: chain.addresses.settlement, abi: (await import('@cgn/chain')).settlementAbi, eventName: 'CycleAnchored', fromBlock: 0n });
    expect(anchored.map((e) => [e.args.cycleId, e.args.payoutRoot, e.args.total])).toEqual(cycles.map((c) => [BigInt(c.id), c.payoutRoot, c.tokens]));

    // what the ledger owes each address over both cycles
    const owed = new Map<string, bigint>();
    for (const c of cycles) for (const cr of store.credits(c.id)) owed.set(cr.address, (owed.get(cr.address) ?? 0n) + cr.tokens);
    const total = cycles.reduce((a, c) => a + c.tokens, 0n);
    expect([...owed.values()].reduce((a, b) => a + b, 0n)).toBe(total);
    expect(store.debits(1).concat(store.debits(2)).reduce((a, d) => a + d.tokens, 0n)).toBe(total);
    // every credit is paid to a registered, claimable address
    const ours = Object.values(who).map((c) => c.me.toLowerCase());
    for (const address of owed.keys()) expect(ours).toContain(address);

    let claimedMany = false;
    for (const [name, c] of Object.entries(who)) {
      const mine = owed.get(c.me.toLowerCase()) ?? 0n;
      const before = await c.tokenBalance(c.me);
      const r = await cgn(['wallet', 'claim', '--ledger', ledgerPath, '--key', keyOf[name as keyof typeof who], ...chainArgs()]);
      if (mine === 0n) {
        expect(r.code, `${name} is owed nothing`).toBe(1);
        continue;
      }
      expect(r.code, r.stderr).toBe(0);
      if (/2 cycle\(s\)/.test(r.stdout)) claimedMany = true;
      expect((await c.tokenBalance(c.me)) - before, `${name}'s token balance moves by its ledger credits`).toBe(mine);
      // a second claim is refused: the CLI finds nothing, the contract refuses a replayed proof
      expect((await cgn(['wallet', 'claim', '--ledger', ledgerPath, '--key', keyOf[name as keyof typeof who], ...chainArgs()])).code).toBe(1);
      const leaf = store.payouts(1).find((p) => p.address === c.me.toLowerCase());
      if (leaf !== undefined) {
        const err = await c.claim({ cycleId: 1, amount: leaf.amount, proof: leaf.proof as `0x${string}`[] }).then(() => null, (e: unknown) => e);
        expect(revertReason(err)).toBe('AlreadyClaimed');
      }
    }
    expect(claimedMany, 'someone claimed both cycles in one claimMany').toBe(true);
    for (const c of cycles) expect((await chain.contracts.cycleOf(c.id))?.claimed).toBe(c.tokens);
  });

  it('withdraws the unused balance after the cycle closes, leaving the escrow empty', async () => {
    const store = t.node.ledger.store;
    const unused = store.balance('test-account').available;
    expect(unused).toBeGreaterThan(0n);
    const w = await cgn(['ledger', 'withdraw', '--ledger', ledgerPath, '--account', 'test-account', '--address', payer.me, '--amount', 'all', '--json']);
    expect(w.code, w.stderr).toBe(0);
    expect(JSON.parse(w.stdout)).toMatchObject({ amount: unused.toString() });
    await waitFor(async () => (await payer.withdrawableOf(payer.me)) === unused, 'the settler to post the withdrawal');
    const before = await payer.tokenBalance(payer.me);
    const units = unused.toString().padStart(19, '0');
    const r = await cgn(['wallet', 'withdraw', '--amount', `${units.slice(0, -18)}.${units.slice(-18)}`, '--key', keyOf.payer, ...chainArgs()]);
    expect(r.code, r.stderr).toBe(0);
    expect((await payer.tokenBalance(payer.me)) - before).toBe(unused);
    // conservation: deposit = claimed payouts + withdrawn; nothing is left in the contract
    expect(await chain.contracts.tokenBalance(chain.addresses.settlement)).toBe(0n);
    expect(store.balance('test-account').available).toBe(0n);
  });

  it("the outside auditor's attack: a miner lying about CPU and an account with a tiny deposit — charges bounded, no overdraft, nobody else's escrow touched, the contract solvent", async () => {
    const store = t.node.ledger.store;
    await stopSettle(); // one settler per ledger: this test drives its own, closing on demand
    const settler = new Settler({ store, contracts: chain.contracts, watcherStore: new MemoryWatcherStore(), confirmations: 2 });
    // A bystander with a large escrow, as in the report: the pooled total would have covered the liar's claims.
    const bystander = await asAccount(chain, ANVIL_KEYS[8]!);
    await chain.contracts.mint(bystander.me, 50n * T);
    store.linkAddress('bystander', bystander.me);
    await bystander.deposit(50n * T);
    // Only the liar serves: 5,000 s of CPU reported for every echo.
    for (const m of miners) m.kill();
    await Promise.all(miners.map((m) => m.exited));
    const liar = new ScriptedMiner({ ack: true, answer: true, answerWith: () => ({ metering: { execUs: 1, cpuUs: 5_000_000_000 } }) });
    await liar.connect(t.node.minerUrl);
    await waitFor(() => { const m = t.node.broker.snapshot().miners; return m.length === 1 && m[0]!.id === liar.id; }, 'only the liar to serve');
    // test-account deposits a tiny amount: twice one reservation.
    // The node's balance guard reloads every 2 s: wait until it has seen the withdrawal, so the probe
    // is refused by the reservation (with its figures) and never reaches the liar.
    await waitFor(() => t.node.billing.guard!.available('test-account') <= 0n, "the node's balance guard to see the withdrawal", 15_000);
    const probe = await post('probe');
    expect(probe.status).toBe(402);
    const needed = BigInt(((await probe.json()) as { details: { needed: string } }).details.needed);
    await payer.deposit(2n * needed);
    await mine(2);
    await settler.tick();
    await waitFor(async () => (await post('first')).status === 200, 'the node to see the tiny deposit', 10_000);
    // It is served until the balance runs out (402) or the liar is quarantined for its lies (then
    // nobody serves echo: 503 at once, or 504 at the deadline).
    let ok = 1;
    let last = 200;
    for (let i = 0; i < 50 && last === 200; i++) {
      last = (await post(`lie ${i}`)).status;
      if (last === 200) ok++;
    }
    expect([402, 503, 504]).toContain(last);
    const b = store.balance('test-account');
    expect(b.spent).toBeLessThanOrEqual(b.deposited);
    expect(ok).toBeGreaterThanOrEqual(2);
    // Every record the liar earned: CPU within the node's own measurement, both figures kept.
    const rows = liar.workIds().map((id) => store.getRow(id)).filter((r) => r !== undefined) as { record: { cpuUs: number; execUs: number; reportedCpuUs?: number } }[];
    expect(rows.length).toBe(ok);
    for (const r of rows) {
      expect(r.record.reportedCpuUs).toBe(5_000_000_000);
      expect(r.record.cpuUs).toBeLessThanOrEqual(r.record.execUs);
    }
    // The cycle closes and is anchored, paid from test-account's escrow alone.
    const escrowBefore = await chain.contracts.escrowOf(payer.me);
    const report = await settler.tick({ close: true });
    expect(report.errors, String(report.errors[0]?.error)).toEqual([]);
    expect(report.anchored.map((a) => a.status)).toEqual(['anchored']);
    const cycle = report.closed!;
    const { settlementAbi } = await import('@cgn/chain');
    const debited = await chain.clients.public.getContractEvents({ address: chain.addresses.settlement, abi: settlementAbi, eventName: 'EscrowDebited', args: { cycleId: BigInt(cycle.id) }, fromBlock: 0n });
    // The liar gave no payout address: its share is held (owed, still in test-account's escrow), the rest paid.
    expect(cycle.held > 0n).toBe(true);
    expect(debited.map((e) => [e.args.account?.toLowerCase(), e.args.amount])).toEqual([[payer.me.toLowerCase(), payableTokens(cycle)]]);
    expect(await chain.contracts.escrowOf(payer.me)).toBe(escrowBefore - payableTokens(cycle));
    expect(await chain.contracts.escrowOf(bystander.me)).toBe(50n * T);
    const read = (functionName: 'totalEscrow' | 'outstandingPayouts') => chain.clients.public.readContract({ address: chain.addresses.settlement, abi: settlementAbi, functionName });
    expect(await chain.contracts.tokenBalance(chain.addresses.settlement)).toBe((await read('totalEscrow')) + (await read('outstandingPayouts')));
    liar.ws?.close();
  });
});
