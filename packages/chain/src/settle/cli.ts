/**
 * `cgn settle`: runs the settler (settler.ts) against a ledger and a chain until SIGINT/SIGTERM,
 * or once with `--once`. Logs JSON lines to stderr; prints `{"event":"ready",...}` on stdout once
 * it runs (for supervisors such as `cgn dev`). Resolves to the exit code.
 */
import { parseArgs } from 'node:util';
import type { Hex } from 'viem';
import { isPrivateKey } from '../clients.js';
import { explainChainError } from '../chain-errors.js';
import { JsonFileWatcherStore } from '../watcher.js';
import { ContractsFileError, openContracts, untilStopped } from '../cli-support.js';
import { openLedgerStore, SettleUsageError } from './open.js';
import { Settler, type SettleLog, type TickReport } from './settler.js';
import { rateFromFlags } from './rate-flags.js';

export const SETTLE_USAGE = `Usage: cgn settle [options]

Moves a ledger's money on chain, every --interval:
  * credits escrow deposits (cgn wallet deposit) to the accounts that own the addresses
    (cgn ledger link-address), once they are --confirmations deep, exactly once each;
  * closes the open billing cycle every --close-every (or at --close-at records);
  * anchors each closed cycle's payout root and batch roots in one transaction, exactly once,
    retrying while the chain is down (the cycle stays pending meanwhile);
  * posts withdrawals the ledger debited (cgn ledger withdraw) for the latest anchored cycle,
    so the address can cgn wallet withdraw;
  * claims for beneficiaries whose address holds no ETH for gas (less than one claim costs):
    the contract's claimFor sends the tokens to the beneficiary, this key pays the gas and keeps
    --relay-fee-bps of the claim (default 0, at most 100 = 1%). Off with --no-relay.
Beneficiaries with gas claim themselves: cgn wallet claim --ledger PATH.

A transaction the contract refuses (a revert such as Overdrawn or a missing role) is not
retried: the same transaction would fail the same way every pass. That step is put on hold,
logged with the contract's reason, and waits for an operator: fix the cause, then send SIGHUP
(kill -HUP <pid>) to try the held steps again, or restart. Transient failures (the chain
unreachable, timeouts) are retried every pass.

Options:
  --ledger PATH           SQLite ledger (default .cgn/node/ledger.sqlite)
  --postgres URL          PostgreSQL ledger instead; --schema NAME (default cgn_ledger)
  --rpc URL               JSON-RPC endpoint (env CGN_CHAIN_RPC)
  --contracts FILE        contract addresses from deployment (env CGN_CHAIN_CONTRACTS)
  --key HEX               key holding the settlement ANCHOR_ROLE (env CGN_SETTLE_KEY)
  --confirmations N       blocks on top of a deposit before it is credited (default 2)
  --close-every DURATION  close the open cycle this often, e.g. 30s, 10m, 1h (default 1h; 0 = never)
  --close-at N            also close as soon as the open cycle holds N records
  --interval DURATION     time between passes (default 2s)
  --cursor FILE           where the deposit watcher keeps its place (default <ledger>.watcher.json)
  --once                  one pass, print its report as JSON, exit (1 if a step failed)
  --close-now             with --once: close the open cycle in this pass
  --anchor-empty          anchor cycles that closed with no records too (default: not; they
                          pay nothing and prove nothing, and cost an anchoring transaction)
  --rate-file FILE        the token rate of each new cycle, read from FILE at every close:
                          {"cgnBaseUnitsPerMicroUsd": "NUM/DEN"} (token base units per µUSD)
  --rate-url URL          the same JSON fetched (GET) from URL at every close
  --rate NUM/DEN          a fixed rate instead (overrides --rate-file/--rate-url)
                          The rate, its source and when it was read are recorded on the cycle
                          (cgn ledger cycles); if the source cannot be read, the cycle stays open
                          and the close is retried next pass. Without any, the rate carries over.

One schedule closes a ledger's cycles: cgn settle holds a lease on it in the ledger while it
runs. A manual cgn ledger close-cycle then asks it to close the open cycle at its next pass
instead of racing it; a second cgn settle on the same ledger leaves closing to the first.
  --no-relay              do not submit claims for beneficiaries without gas
  --relay-fee-bps N       basis points of each relayed claim this key keeps (default 0, max 100)
  -h, --help              this text
`;

function duration(s: string, what: string, allowZero = false): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(s);
  if (m === null) throw new SettleUsageError(`${what} must be a duration like 500ms, 30s, 15m, 1h; not "${s}"`);
  const n = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'];
  if (n === 0 && !allowZero) throw new SettleUsageError(`${what} must be more than 0`);
  return n;
}

const json = (o: unknown) => JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

export function reportJson(r: TickReport): Record<string, unknown> {
  return {
    deposits: r.deposits,
    closed: r.closed === null ? null : { cycle: r.closed.id, records: r.closed.records, tokens: r.closed.tokens, payoutRoot: r.closed.payoutRoot },
    anchored: r.anchored.map((a) => ({ cycle: a.cycleId, status: a.status, ...(a.status === 'anchored' ? { tx: a.tx.hash, gas: a.tx.gasUsed } : {}) })),
    granted: r.granted,
    relayed: r.relayed.map((x) => ({ address: x.address, cycles: x.cycles, amount: x.amount, fee: x.fee, tx: x.tx, gas: x.gasUsed })),
    errors: r.errors.map((e) => ({ step: e.step, error: explainChainError(e.error).message })),
    held: r.held.map((h) => ({ step: h.step, reason: h.reason })),
  };
}

export async function runSettleFromArgs(argv: readonly string[], io: { stdout?: (l: string) => void; stderr?: (l: string) => void; env?: Record<string, string | undefined> } = {}): Promise<number> {
  const stdout = io.stdout ?? ((l: string) => void process.stdout.write(`${l}\n`));
  const stderr = io.stderr ?? ((l: string) => void process.stderr.write(`${l}\n`));
  const env = io.env ?? process.env;
  let v: Record<string, string | boolean | undefined>;
  try {
    ({ values: v } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        ledger: { type: 'string' }, postgres: { type: 'string' }, schema: { type: 'string' }, rpc: { type: 'string' }, contracts: { type: 'string' },
        key: { type: 'string' }, confirmations: { type: 'string' }, 'close-every': { type: 'string' }, 'close-at': { type: 'string' },
        interval: { type: 'string' }, cursor: { type: 'string' }, once: { type: 'boolean' }, 'close-now': { type: 'boolean' }, 'anchor-empty': { type: 'boolean' },
        'no-relay': { type: 'boolean' }, 'relay-fee-bps': { type: 'string' }, help: { type: 'boolean', short: 'h' },
        rate: { type: 'string' }, 'rate-file': { type: 'string' }, 'rate-url': { type: 'string' },
      },
    }));
  } catch (err) {
    stderr(`cgn settle: ${(err as Error).message}\n\n${SETTLE_USAGE}`);
    return 2;
  }
  if (v.help) {
    stdout(SETTLE_USAGE);
    return 0;
  }
  const log: SettleLog = (level, msg, fields) => stderr(json({ level, time: Date.now(), name: 'cgn-settle', msg, ...fields }));
  let settler: Settler | null = null;
  let store: Awaited<ReturnType<typeof openLedgerStore>> | null = null;
  try {
    const rpc = (v.rpc as string | undefined) ?? env.CGN_CHAIN_RPC;
    if (!rpc) throw new SettleUsageError('--rpc URL is required (or CGN_CHAIN_RPC)');
    const contractsFile = (v.contracts as string | undefined) ?? env.CGN_CHAIN_CONTRACTS;
    if (!contractsFile) throw new SettleUsageError('--contracts FILE is required (or CGN_CHAIN_CONTRACTS)');
    const key = (v.key as string | undefined) ?? env.CGN_SETTLE_KEY;
    if (!isPrivateKey(key)) throw new SettleUsageError('--key must be 0x followed by 64 hex digits (or CGN_SETTLE_KEY)');
    const confirmations = Number(v.confirmations ?? 2);
    if (!Number.isInteger(confirmations) || confirmations < 0) throw new SettleUsageError('--confirmations must be a whole number');
    const closeEveryMs = duration((v['close-every'] as string | undefined) ?? '1h', '--close-every', true);
    const closeAt = v['close-at'] === undefined ? null : Number(v['close-at']);
    if (closeAt !== null && !(Number.isInteger(closeAt) && closeAt > 0)) throw new SettleUsageError('--close-at must be a positive whole number of records');
    const intervalMs = duration((v.interval as string | undefined) ?? '2s', '--interval');
    if (v['close-now'] && !v.once) throw new SettleUsageError('--close-now goes with --once');
    const feeBps = v['relay-fee-bps'] === undefined ? 0 : Number(v['relay-fee-bps']);
    if (!Number.isInteger(feeBps) || feeBps < 0 || feeBps > 100) throw new SettleUsageError(`--relay-fee-bps must be a whole number from 0 to 100 (the contract's cap), not "${String(v['relay-fee-bps'])}"`);
    if (v['no-relay'] && v['relay-fee-bps'] !== undefined) throw new SettleUsageError('--relay-fee-bps goes without --no-relay');
    const rate = rateFromFlags({ rate: v.rate as string | undefined, rateFile: v['rate-file'] as string | undefined, rateUrl: v['rate-url'] as string | undefined });
    const cursor = (v.cursor as string | undefined) ?? (v.postgres !== undefined ? '.cgn/settle.watcher.json' : `${(v.ledger as string | undefined) ?? '.cgn/node/ledger.sqlite'}.watcher.json`);
    store = await openLedgerStore({ ledger: v.ledger as string | undefined, postgres: v.postgres as string | undefined, schema: v.schema as string | undefined });
    const contracts = await openContracts({ rpcUrl: rpc, contractsFile, privateKey: key as Hex });
    settler = new Settler({ store, contracts, watcherStore: new JsonFileWatcherStore(cursor), confirmations, closeEveryMs: closeEveryMs === 0 ? null : closeEveryMs, closeAtRecords: closeAt, intervalMs, log, anchorEmpty: v['anchor-empty'] === true, relay: v['no-relay'] ? false : { feeBps }, ...(rate === undefined ? {} : { rate }) });
    if (v.once) {
      const r = await settler.tick({ close: v['close-now'] === true });
      stdout(json(reportJson(r)));
      return r.errors.length === 0 ? 0 : 1;
    }
    settler.start();
    const onHangup = (): void => {
      const held = settler?.retryHeld() ?? [];
      log('info', held.length > 0 ? 'SIGHUP: trying the held steps again' : 'SIGHUP: nothing is on hold', { steps: held.map((h) => h.step) });
    };
    process.on('SIGHUP', onHangup);
    log('info', 'settler running', { settlement: contracts.addresses.settlement, operator: contracts.me, confirmations, closeEveryMs, closeAt, intervalMs, relay: v['no-relay'] ? 'off' : { feeBps } });
    stdout(json({ event: 'ready', pid: process.pid, settlement: contracts.addresses.settlement, operator: contracts.me }));
    await untilStopped();
    process.off('SIGHUP', onHangup);
    log('info', 'settler stopping');
    return 0;
  } catch (err) {
    if (err instanceof SettleUsageError || err instanceof ContractsFileError) {
      stderr(`cgn settle: ${err.message}\n\n${SETTLE_USAGE}`);
      return 2;
    }
    stderr(`cgn settle: ${explainChainError(err).message}`);
    return 1;
  } finally {
    await settler?.stop();
    await store?.close();
  }
}
