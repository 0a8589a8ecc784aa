/**
 * `cgn ledger ...`: the ledger's command line, as a function the `cgn` CLI calls:
 *
 * ```ts
 * import { runLedgerFromArgs } from '@cgn/ledger';
 * process.exitCode = await runLedgerFromArgs(process.argv.slice(3)); // argv after "cgn ledger"
 * ```
 *
 * Exit codes: 0 done; 1 the check failed (audit found tampering, a proof does not verify) or
 * the operation failed; 2 bad usage (unknown command or option, missing or malformed value).
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { verifyRecordProof, type RecordProof } from './billing.js';
import { PostgresLedgerStore } from './pg-store.js';
import { BENEFICIARIES, type Beneficiary } from './pricing/split.js';
import { SqliteLedgerStore } from './sqlite-store.js';
import { USAGE_GROUPS, releasableTokens, earningsReport, invoiceReport, parseDay, usageReport, usageTotal } from './reports.js';
import type { BillingLedgerStore, CloseCycleOptions, UsageLine } from './store.js';
import { readRateSource, type RateSourceSpec } from './pricing/rate-source.js';
import { resolve } from 'node:path';
import { beneficiaryId, existingAccount, payingAccount, type CentralAccounts } from './cli-ids.js';
import { closerGone, closerLive, describeCloser, processAlive, type CloserClaim } from './cycle-closer.js';
import type { CycleSummary } from './billing.js';
import { hostname } from 'node:os';
import { PRICE_UNIT, baseUnitsAsCgn, formatCgn, formatPrice, microUsdAsUsd, progressReporter, type ProgressReporter, type TerminalStream } from '@cgn/protocol';

/** What `cgn ledger` may ask beyond its ledger. */
export interface LedgerCliDeps {
  /** Central's accounts (ids and names) when a central is configured: account arguments are checked against them. */
  centralAccounts?: CentralAccounts;
}

export interface LedgerCliIo {
  out?: (line: string) => void;
  err?: (line: string) => void;
  /**
   * Where progress of long work goes (close-cycle reading its records): a bar on a terminal, a
   * line per tenth elsewhere. Default: stderr when `err` is the process's own, else none.
   */
  progress?: TerminalStream | null;
}

export const DEFAULT_LEDGER_PATH = '.cgn/node/ledger.sqlite';

const COMMON = `Ledger options (all commands but verify):
  --ledger PATH     SQLite ledger file (default ${DEFAULT_LEDGER_PATH})
  --postgres URL    use a PostgreSQL ledger instead (postgres://user@host:port/db)
  --schema NAME     PostgreSQL schema (default cgn_ledger)
  --json            machine-readable output (amounts as decimal strings)

Ids: an account is given by its id or its name (names are looked up at central when you are
logged in, cgn account login), a miner by its full 64-hex id, the 16-hex id it logs, or any
unambiguous start of it. An unknown or ambiguous one is an error that lists what exists.`;

const HELP: Record<string, string> = {
  '': `Usage: cgn ledger <command> [options]

Commands:
  usage             usage and cost, grouped per DService, end user or day
  invoice           an account's invoice for a closed billing cycle
  earnings          what each beneficiary earned in a closed cycle (with payout proofs in --json)
  held              earnings held for beneficiaries that gave no payout address (owed, not lost)
  close-cycle       close the open billing cycle: totals, sealed batches, payout tree
  proof             the proof that a work id's record is in a sealed batch (JSON)
  verify            check a proof file offline
  audit             verify the hash chains: is any record changed or missing?
  credit            add prepaid tokens to an account's balance
  balance           show prepaid balances
  register-address  set the EVM address a beneficiary is paid to
  link-address      link an EVM address to an account: its escrow deposits credit the account
  unlink-address    undo a link (refused while deposits credited through it are not withdrawn)
  withdraw          debit unused balance for withdrawal to a linked address (posted on chain
                    by cgn settle after the next cycle is anchored; then cgn wallet withdraw)
  withdrawals       withdrawal requests and whether they are posted on chain

Run "cgn ledger <command> --help" for its options.

Amounts: prices are in µUSD (1 µUSD = 0.000001 USD), shown as USD with 6 decimals; tokens
are CGN (1 CGN = 10^18 base units), shown as CGN with the base units in --json.`,
  usage: `Usage: cgn ledger usage [--account ID] [--by dservice|end-user|day|tier|account] [--dservice NAME]
                        [--cycle N] [--from YYYY-MM-DD] [--to YYYY-MM-DD]
Usage and cost of recorded work, grouped (default per DService). --to is exclusive.

${COMMON}`,
  invoice: `Usage: cgn ledger invoice --account ID [--cycle N]
The account's debit in a closed cycle (default: the last one that holds records), with its usage per DService.

${COMMON}`,
  earnings: `Usage: cgn ledger earnings [--cycle N] [--beneficiary ID] [--role miner|developer|operator|charity]
Credits per beneficiary in a closed cycle (default: the last one that holds records) and the
payout root; a credit held for a beneficiary with no address says so.

${COMMON}`,
  held: `Usage: cgn ledger held [--role miner|developer|operator|charity] [--beneficiary ID] [--all]
Earnings held for beneficiaries that had no payout address when their cycle closed: owed, kept
in the paying accounts' escrow, and paid in the first cycle sealed after the beneficiary
registers an address (cgn miner --payout-address, cgn account payout-address, cgn ledger
register-address). --all lists those already paid too, with the cycle that paid them.

${COMMON}`,
  'close-cycle': `Usage: cgn ledger close-cycle [--rate NUM/DEN | --rate-file FILE | --rate-url URL]
                              [--batch-size N] [--every DURATION] [--allow-empty] [--wait DURATION] [--force]
Closes the open cycle. --rate sets the next cycle's token rate (token base units per fiat
micro-unit, e.g. 20000000000000/1); --rate-file or --rate-url read it, at each close, from a
rate source: JSON like {"cgnBaseUnitsPerMicroUsd": "20000000000000/1"} (--rate overrides them).
The next cycle records the rate with its source and when it was read (cgn ledger invoice shows
it). --every (e.g. 1h, 30m, 10s) keeps closing on that period until interrupted.

An open cycle with no records is not closed unless --allow-empty (an empty cycle is not
anchored on chain either, unless cgn settle --anchor-empty).

One schedule closes a ledger's cycles: while cgn settle (or a close-cycle --every) runs on this
ledger it holds a lease on closing, kept in the ledger. A manual close-cycle then asks it to
close the open cycle at its next pass and waits (--wait, default 60s) for that cycle, instead
of closing it behind the schedule's back; --force closes here anyway. --every refuses to start
while another schedule holds the lease.

${COMMON}`,
  proof: `Usage: cgn ledger proof --work-id ID [--out FILE]
Writes the record proof (JSON) of a work id whose cycle is sealed.

${COMMON}`,
  verify: `Usage: cgn ledger verify FILE [--root HEX]
Checks a proof file offline (no ledger needed). --root pins the cycle's records root (from the
anchor); without it the proof is checked for self-consistency only.`,
  audit: `Usage: cgn ledger audit
Recomputes every node's hash chain and the chain heads. Exit 1 if a record was changed, removed
or inserted.

${COMMON}`,
  credit: `Usage: cgn ledger credit --account ID --amount TOKENS [--memo TEXT] [--new-account]
Adds prepaid tokens (base units) to an account. The account must be one central knows (when
you are logged in to central), else one this ledger has seen or an id shaped like central's
(acc_...); --new-account takes any other id as a new account's.

${COMMON}`,
  balance: `Usage: cgn ledger balance [--account ID]

${COMMON}`,
  'link-address': `Usage: cgn ledger link-address --account ID --address 0x... [--new-account]
Deposits into the settlement contract's escrow for this address (cgn wallet deposit) credit the
account once final (cgn settle follows them); deposits made before the link are credited now.
The account is its id or name. Logged in to central (cgn account login), it must be one of
central's accounts; without central, one this ledger has seen (records, balance, links) or an id
shaped like central's (acc_ and 16 characters); --new-account vouches for any other id.

${COMMON}`,
  'unlink-address': `Usage: cgn ledger unlink-address --account ID --address 0x...
Removes a link (one made by mistake, say). Refused while deposits from the address that were
credited to the account are not withdrawn: they back its balance and the work it paid for, and
the settler debits the account's cycles from its linked addresses. Withdraw them first
(cgn ledger withdraw ... --amount all); an address whose deposits paid for work stays linked.
Later deposits from an unlinked address are held until it is linked again.

${COMMON}`,
  withdraw: `Usage: cgn ledger withdraw --account ID --address 0x... --amount TOKENS|all
Debits unused prepaid balance now (it can no longer pay for work); cgn settle posts it on chain
after the next anchored cycle, then the address withdraws it with cgn wallet withdraw. The amount
(base units) is capped by the account's available balance and by the address's escrow.

${COMMON}`,
  withdrawals: `Usage: cgn ledger withdrawals [--account ID]

${COMMON}`,
  'register-address': `Usage: cgn ledger register-address --role miner|developer|operator|charity --id ID --address 0x...
Credits of cycles sealed afterwards go to this address, and credits held for this beneficiary
(it had no address) are paid in the next cycle sealed. A miner's id may be its 16-hex log id or
any unambiguous start of its id.

${COMMON}`,
};

const OPTIONS: ParseArgsConfig['options'] = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  ledger: { type: 'string' },
  postgres: { type: 'string' },
  schema: { type: 'string' },
  account: { type: 'string' },
  by: { type: 'string' },
  dservice: { type: 'string' },
  cycle: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  beneficiary: { type: 'string' },
  role: { type: 'string' },
  rate: { type: 'string' },
  'rate-file': { type: 'string' },
  'rate-url': { type: 'string' },
  'batch-size': { type: 'string' },
  every: { type: 'string' },
  'work-id': { type: 'string' },
  out: { type: 'string' },
  root: { type: 'string' },
  amount: { type: 'string' },
  memo: { type: 'string' },
  id: { type: 'string' },
  address: { type: 'string' },
  'new-account': { type: 'boolean' },
  all: { type: 'boolean' },
  'allow-empty': { type: 'boolean' },
  wait: { type: 'string' },
  force: { type: 'boolean' },
};

class UsageError extends Error {}

type Values = Record<string, string | boolean | undefined>;

export async function runLedgerFromArgs(argv: readonly string[], io: LedgerCliIo = {}, deps: LedgerCliDeps = {}): Promise<number> {
  const out = io.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = io.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  const progressTo = io.progress !== undefined ? io.progress : io.err === undefined ? process.stderr : null;
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true }) as { values: Values; positionals: string[] });
  } catch (e) {
    err(`cgn ledger: ${(e as Error).message}`);
    err('Run "cgn ledger --help" for usage.');
    return 2;
  }
  const [command = '', ...rest] = positionals;
  if (values.help === true || command === 'help') {
    const topic = command === 'help' ? (rest[0] ?? '') : command;
    out(HELP[topic] ?? HELP['']!);
    return topic in HELP ? 0 : 2;
  }
  if (!(command in HELP) || command === '') {
    err(command === '' ? 'cgn ledger: a command is required' : `cgn ledger: unknown command "${command}"`);
    err(HELP['']!);
    return 2;
  }
  const json = values.json === true;
  let store: BillingLedgerStore | undefined;
  try {
    if (command === 'verify') return verify(rest, values, out, err, json);
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    store = await openStore(values, command);
    switch (command) {
      case 'usage':
        return await usage(store, await withAccount(store, values, deps), out, json);
      case 'invoice':
        return await invoice(store, await withAccount(store, values, deps, true), out, json);
      case 'earnings':
        return await earnings(store, values, out, json);
      case 'held':
        return await held(store, values, out, json);
      case 'close-cycle':
        return await closeCycle(store, values, out, err, json, progressTo === null ? undefined : () => progressReporter(progressTo, 'reading the cycle', 'records'));
      case 'proof':
        return await proof(store, values, out);
      case 'audit':
        return await audit(store, out, json);
      case 'credit':
        creditAmount(values); // bad usage first, then whose account
        return await credit(store, await withPayingAccount(store, values, deps), out, json);
      case 'balance':
        return await balance(store, await withAccount(store, values, deps), out, json);
      case 'register-address':
        return await registerAddress(store, values, out);
      case 'link-address':
        return await linkAddress(store, await withPayingAccount(store, values, deps), out, json);
      case 'unlink-address':
        return await unlinkAddress(store, await withAccount(store, values, deps, true), out, json);
      case 'withdraw':
        return await withdraw(store, await withAccount(store, values, deps, true), out, json);
      case 'withdrawals':
        return await withdrawals(store, await withAccount(store, values, deps), out, json);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`cgn ledger ${command}: ${e.message}`);
      err(`Run "cgn ledger ${command} --help" for usage.`);
      return 2;
    }
    err(`cgn ledger ${command}: ${(e as Error).message}`);
    return 1;
  } finally {
    await store?.close();
  }
}

async function openStore(v: Values, command: string): Promise<BillingLedgerStore> {
  if (typeof v.postgres === 'string') {
    if (v.ledger !== undefined) throw new UsageError('use either --ledger or --postgres, not both');
    return PostgresLedgerStore.open({ url: v.postgres, ...(typeof v.schema === 'string' ? { schema: v.schema } : {}), max: 2 });
  }
  if (v.schema !== undefined) throw new UsageError('--schema goes with --postgres');
  const path = typeof v.ledger === 'string' ? v.ledger : DEFAULT_LEDGER_PATH;
  if (!existsSync(path)) throw new Error(`no ledger at ${path} (pass --ledger PATH or --postgres URL)`);
  const writes = ['close-cycle', 'credit', 'register-address', 'link-address', 'unlink-address', 'withdraw'].includes(command);
  // Reports open read-only when the file is already migrated; otherwise open normally (migrates).
  if (!writes) {
    try {
      return new SqliteLedgerStore({ path, readonly: true });
    } catch {
      // an old schema: fall through and migrate
    }
  }
  return new SqliteLedgerStore({ path });
}

/** `--account` resolved to an account that exists (id or name; see cli-ids.ts). */
async function withAccount(store: BillingLedgerStore, v: Values, deps: LedgerCliDeps, required = false): Promise<Values> {
  const given = str(v, 'account', required as true);
  if (given === undefined) return v;
  return { ...v, account: await existingAccount(store, given, deps.centralAccounts) };
}

/** `--account` of a command that may bring an account to this ledger (link-address, credit). */
async function withPayingAccount(store: BillingLedgerStore, v: Values, deps: LedgerCliDeps): Promise<Values> {
  const given = str(v, 'account', true);
  return { ...v, account: await payingAccount(store, given, deps.centralAccounts, v['new-account'] === true) };
}

function str(v: Values, name: string, required: true): string;
function str(v: Values, name: string, required?: false): string | undefined;
function str(v: Values, name: string, required = false): string | undefined {
  const x = v[name];
  if (x === undefined) {
    if (required) throw new UsageError(`--${name} is required`);
    return undefined;
  }
  if (typeof x !== 'string' || x.length === 0) throw new UsageError(`--${name} needs a value`);
  return x;
}

function int(v: Values, name: string, min = 0): number | undefined {
  const s = str(v, name);
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)) || Number(s) < min) throw new UsageError(`--${name} must be a whole number >= ${min}, not "${s}"`);
  return Number(s);
}

function day(v: Values, name: string): number | undefined {
  const s = str(v, name);
  if (s === undefined) return undefined;
  const t = parseDay(s);
  if (t === undefined) throw new UsageError(`--${name} must be a date YYYY-MM-DD, not "${s}"`);
  return t;
}

/** µUSD as USD with 6 places. */
export const formatMicros = microUsdAsUsd;

function toJson(x: unknown): string {
  return JSON.stringify(x, (_k, val: unknown) => (typeof val === 'bigint' ? val.toString() : val), 2);
}

function table(rows: string[][], out: (l: string) => void): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) out(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
}

function usageTable(lines: UsageLine[], keyName: string, out: (l: string) => void): void {
  const rows = [[keyName, 'records', 'cpu s', 'MB in', 'MB out', 'price USD', 'CGN']];
  for (const x of [...lines, { key: 'TOTAL', ...usageTotal(lines) }]) {
    rows.push([x.key, String(x.records), (x.cpuUs / 1e6).toFixed(3), (x.bytesIn / 1e6).toFixed(3), (x.bytesOut / 1e6).toFixed(3), formatMicros(x.priceMicros), baseUnitsAsCgn(x.tokens)]);
  }
  table(rows, out);
}

async function usage(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const by = str(v, 'by') ?? 'dservice';
  if (!Object.hasOwn(USAGE_GROUPS, by)) throw new UsageError(`--by must be one of ${Object.keys(USAGE_GROUPS).join(', ')}, not "${by}"`);
  const filter = {
    ...(str(v, 'account') !== undefined ? { account: str(v, 'account')! } : {}),
    ...(str(v, 'dservice') !== undefined ? { dservice: str(v, 'dservice')! } : {}),
    ...(int(v, 'cycle', 1) !== undefined ? { cycle: int(v, 'cycle', 1)! } : {}),
    ...(day(v, 'from') !== undefined ? { from: day(v, 'from')! } : {}),
    ...(day(v, 'to') !== undefined ? { to: day(v, 'to')! } : {}),
  };
  const { lines } = await usageReport(store, by, filter);
  if (json) out(toJson({ by, filter, lines }));
  else usageTable(lines, by, out);
  return 0;
}

function cycleOption(v: Values): { cycle?: number } {
  const id = int(v, 'cycle', 1);
  return id === undefined ? {} : { cycle: id };
}

async function invoice(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const account = str(v, 'account', true);
  const inv = await invoiceReport(store, account, cycleOption(v).cycle);
  if (json) {
    out(toJson(inv));
    return 0;
  }
  out(`Invoice: account ${account}, billing cycle ${inv.cycle} (${new Date(inv.openedAt).toISOString()} to ${new Date(inv.closedAt ?? 0).toISOString()})`);
  const from = inv.rateSource === undefined ? '' : ` (from ${inv.rateSource}${inv.rateFetchedAt === undefined ? '' : `, read ${new Date(inv.rateFetchedAt).toISOString()}`})`;
  out(`Rate: ${inv.rate.num}/${inv.rate.den} CGN base units per ${PRICE_UNIT}${from}`);
  usageTable(inv.byDservice, 'dservice', out);
  out(`Amount due: ${formatPrice(inv.priceMicros)} = ${formatCgn(inv.tokens)}, ${inv.records} records`);
  return 0;
}

async function earnings(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const role = str(v, 'role');
  if (role !== undefined && !(BENEFICIARIES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${BENEFICIARIES.join(', ')}`);
  const given = str(v, 'beneficiary');
  const who = given === undefined ? undefined : await beneficiaryId(store, given, role as Beneficiary | undefined);
  const r = await earningsReport(store, { ...cycleOption(v), ...(role === undefined ? {} : { role }), ...(who === undefined ? {} : { beneficiary: who }) });
  if (json) {
    out(toJson(r));
    return 0;
  }
  out(`Earnings, billing cycle ${r.cycle}; payout root ${r.payoutRoot ?? '(nothing owed)'}`);
  table([['role', 'beneficiary', 'address', 'records', 'CGN', 'paid now'], ...r.credits.map((x) => [
    x.role, x.beneficiary, x.held > 0n ? 'HELD: no address yet' : x.address, String(x.records), baseUnitsAsCgn(x.tokens), baseUnitsAsCgn(x.tokens - x.held + x.released),
  ])], out);
  if (r.credits.some((x) => x.held > 0n)) out('Held credits are owed, not lost: they are paid in the first cycle after the beneficiary registers an address (cgn miner --payout-address, cgn account payout-address, cgn ledger register-address).');
  return 0;
}

function parseDuration(s: string, flag = '--every'): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s);
  if (m === null) throw new UsageError(`${flag} must be a duration like 30s, 15m, 1h, 1d; not "${s}"`);
  const n = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  if (n < 1000) throw new UsageError(`${flag} must be at least 1s`);
  return n;
}

async function closeCycle(
  store: BillingLedgerStore, v: Values, out: (l: string) => void, err: (l: string) => void, json: boolean, progress?: () => ProgressReporter,
): Promise<number> {
  const rateS = str(v, 'rate');
  let nextRate: { num: bigint; den: bigint } | undefined;
  if (rateS !== undefined) {
    const m = /^(\d+)(?:\/(\d+))?$/.exec(rateS);
    if (m === null || (m[2] !== undefined && BigInt(m[2]) === 0n)) throw new UsageError(`--rate must be NUM or NUM/DEN (whole numbers, DEN > 0), not "${rateS}"`);
    nextRate = { num: BigInt(m[1]!), den: BigInt(m[2] ?? '1') };
  }
  const rateFile = str(v, 'rate-file');
  const rateUrl = str(v, 'rate-url');
  if (rateFile !== undefined && rateUrl !== undefined) throw new UsageError('give one rate source: --rate-file FILE or --rate-url URL, not both');
  if (rateUrl !== undefined && !/^https?:\/\//.test(rateUrl)) throw new UsageError(`--rate-url must be an http(s) URL, not "${rateUrl}"`);
  const rateSpec: RateSourceSpec | null = nextRate !== undefined ? null : rateFile !== undefined ? { file: resolve(rateFile) } : rateUrl !== undefined ? { url: rateUrl } : null;
  /** The next cycle's rate and its provenance, read now (at each close). */
  const rateNow = async (): Promise<Pick<CloseCycleOptions, 'nextRate' | 'nextRateSource'>> => {
    if (nextRate !== undefined) return { nextRate, nextRateSource: { source: 'manual', fetchedAt: Date.now() } };
    if (rateSpec === null) return {};
    const r = await readRateSource(rateSpec);
    return { nextRate: r.rate, nextRateSource: { source: r.source, fetchedAt: r.fetchedAt } };
  };
  const batchSize = int(v, 'batch-size', 1);
  const every = str(v, 'every');
  const period = every === undefined ? undefined : parseDuration(every);
  const waitS = str(v, 'wait');
  const waitMs = waitS === undefined ? 60_000 : parseDuration(waitS, '--wait');
  const allowEmpty = v['allow-empty'] === true;
  const force = v.force === true;
  const print = (s: CycleSummary, ms: number | null): void => {
    if (json) out(toJson({ ...s, ...(ms === null ? {} : { closeMs: Math.round(ms) }) }));
    else {
      out(`Closed billing cycle ${s.id}: ${s.records} records (${s.pricedRecords} priced) in ${s.batches} batches of up to ${s.batchSize}${ms === null ? '' : `, ${ms.toFixed(0)} ms`}`);
      out(`  billed ${formatPrice(s.priceMicros)} = ${formatCgn(s.tokens)}; debits and credits balance`);
      if (s.held > 0n || s.released > 0n) out(`  held for beneficiaries with no address ${formatCgn(s.held)}; paid now of what was held ${formatCgn(s.released)}`);
      out(`  records root ${s.recordsRoot}`);
      out(`  payout root  ${s.payoutRoot ?? '(nothing owed)'}`);
    }
  };
  /** Closes here; false when the open cycle is empty and empty cycles are not wanted. */
  const once = async (): Promise<boolean> => {
    if (!allowEmpty && (await openRecords(store)) === 0 && (await releasableTokens(store)) === 0n) return false;
    const t = performance.now();
    const bar = progress?.();
    const s = await store.closeCycle({ ...(await rateNow()), ...(batchSize !== undefined ? { batchSize } : {}), ...(bar === undefined ? {} : { onProgress: (d, n) => bar.update(d, n) }) });
    bar?.finish();
    print(s, performance.now() - t);
    return true;
  };
  const empty = async (): Promise<string> => `the open billing cycle ${(await store.currentCycle()).id} has no records: nothing to close (--allow-empty closes it anyway)`;

  if (period === undefined) {
    let closer = await store.cycleCloser();
    // A schedule of this host that is gone (killed) holds nothing: close here.
    if (closerGone(closer, hostname(), processAlive)) {
      await store.releaseCycleCloser(closer!);
      closer = null;
    }
    if (!force && closerLive(closer, Date.now()) && !(closer.holder === CLOSER_HOLDER && closer.pid === process.pid)) {
      if ((await openRecords(store)) === 0 && (await releasableTokens(store)) === 0n) {
        throw new Error(allowEmpty ? `${describeCloser(closer, Date.now())} closes this ledger's cycles and does not close empty ones; --force closes an empty one here` : await empty());
      }
      if (nextRate !== undefined || rateSpec !== null || batchSize !== undefined) throw new UsageError(`${describeCloser(closer, Date.now())} closes this ledger's cycles; --rate, --rate-file, --rate-url and --batch-size go to it, not here (or use --force)`);
      // Coordinated: the schedule closes it at its next pass; wait for that cycle.
      const open = (await store.currentCycle()).id;
      await store.requestCycleClose();
      if (!json) out(`asked ${describeCloser(closer, Date.now())} to close billing cycle ${open}; waiting up to ${Math.round(waitMs / 1000)} s`);
      const until = Date.now() + waitMs;
      while (Date.now() < until) {
        const s = await store.cycleSummary(open);
        if (s !== undefined) {
          print(s, null);
          return 0;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`${closer.holder} (pid ${closer.pid}) did not close cycle ${open} within ${Math.round(waitMs / 1000)} s; is it stuck (its log says why, e.g. an overdrawn account)? --force closes it here`);
    }
    if (!(await once())) throw new Error(await empty());
    return 0;
  }

  // A schedule: hold the closer lease (renewed every 10 s) while it runs.
  const claim: CloserClaim = { holder: CLOSER_HOLDER, pid: process.pid, host: hostname(), everyMs: period, ttlMs: 30_000 };
  const lease = await store.holdCycleCloser(claim);
  if (!lease.held) throw new Error(`${describeCloser(lease.closer, Date.now())} already closes this ledger's cycles; one schedule per ledger`);
  if (!(await once())) err(await empty());
  out(`closing a cycle every ${every}; Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      once().catch((e: unknown) => err(`close-cycle failed: ${(e as Error).message}`));
    }, period);
    const heartbeat = setInterval(() => {
      Promise.resolve(store.holdCycleCloser(claim)).catch((e: unknown) => err(`close-cycle: could not renew its lease: ${(e as Error).message}`));
    }, 10_000);
    const stop = (): void => {
      clearInterval(timer);
      clearInterval(heartbeat);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await store.releaseCycleCloser(claim);
  return 0;
}

const CLOSER_HOLDER = 'cgn ledger close-cycle --every';

/** Records in the open cycle: all records minus those of closed cycles. */
async function openRecords(store: BillingLedgerStore): Promise<number> {
  const closed = (await store.cycles()).reduce((n, c) => n + ('records' in c ? c.records : 0), 0);
  return (await store.count()) - closed;
}

async function proof(store: BillingLedgerStore, v: Values, out: (l: string) => void): Promise<number> {
  const workId = str(v, 'work-id', true);
  const p = await store.recordProof(workId);
  if (p === undefined) throw new Error(`no record of work ${workId} in this ledger`);
  const text = JSON.stringify(p, null, 2);
  const file = str(v, 'out');
  if (file === undefined) out(text);
  else {
    writeFileSync(file, `${text}\n`);
    out(`wrote the proof of ${workId} (cycle ${p.cycle}, batch ${p.batch}, records root ${p.recordsRoot}) to ${file}`);
  }
  return 0;
}

function verify(rest: string[], v: Values, out: (l: string) => void, err: (l: string) => void, json: boolean): number {
  if (rest.length !== 1) throw new UsageError(rest.length === 0 ? 'the proof FILE is required' : `unexpected argument "${rest[1]}"`);
  for (const k of ['ledger', 'postgres', 'schema']) if (v[k] !== undefined) throw new UsageError(`verify works offline; --${k} does not apply`);
  let p: RecordProof;
  try {
    p = JSON.parse(readFileSync(rest[0]!, 'utf8')) as RecordProof;
  } catch (e) {
    err(`cgn ledger verify: cannot read ${rest[0]}: ${(e as Error).message}`);
    return 1;
  }
  const root = str(v, 'root');
  if (root !== undefined && !/^(0x)?[0-9a-fA-F]{64}$/.test(root)) throw new UsageError('--root must be 64 hex digits');
  const r = verifyRecordProof(p, root);
  if (json) out(toJson(r.ok ? { ok: true, workId: r.workId, cycle: r.cycle, recordsRoot: r.recordsRoot, pinned: root !== undefined } : r));
  else if (r.ok) {
    out(`OK: work ${r.workId} is in batch ${p.batch} of billing cycle ${r.cycle}, records root ${r.recordsRoot}`);
    if (root === undefined) out('(self-consistent; pass --root with the anchored records root to pin it)');
  } else err(`FAILED: ${r.reason}`);
  return r.ok ? 0 : 1;
}

async function audit(store: BillingLedgerStore, out: (l: string) => void, json: boolean): Promise<number> {
  const r = await store.verifyChain();
  if (json) out(toJson(r));
  else if (r.ok) out(`OK: ${r.rows} records, every node's hash chain verifies and ends at its stored head`);
  else {
    const what = { hash_mismatch: 'was changed', broken_link: 'no longer links to the one before it (a record was removed or inserted before it)', head_mismatch: 'is not the stored chain head (records were removed at the end, or the head was altered)' }[r.firstBad.reason];
    out(`FAILED after ${r.rows} good records: node ${r.firstBad.node}, record seq ${r.firstBad.seq}${r.firstBad.workId === null ? '' : ` (work ${r.firstBad.workId})`} ${what}`);
  }
  return r.ok ? 0 : 1;
}

function creditAmount(v: Values): string {
  const amountS = str(v, 'amount', true);
  if (!/^\d+$/.test(amountS) || BigInt(amountS) === 0n) throw new UsageError(`--amount must be a positive whole number of token base units, not "${amountS}"`);
  return amountS;
}

async function credit(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const account = str(v, 'account', true);
  const amountS = creditAmount(v);
  const memo = str(v, 'memo');
  const b = await store.credit(account, BigInt(amountS), memo ?? 'cgn ledger credit');
  if (json) out(toJson(b));
  else out(`credited ${amountS} tokens to ${account}: deposited ${b.deposited}, spent ${b.spent}, available ${b.available}`);
  return 0;
}

async function balance(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const account = str(v, 'account');
  const list = account === undefined ? await store.balances() : [await store.balance(account)];
  if (json) out(toJson(list));
  else table([['account', 'deposited CGN', 'spent CGN', 'available CGN'], ...list.map((b) => [b.account, baseUnitsAsCgn(b.deposited), baseUnitsAsCgn(b.spent), baseUnitsAsCgn(b.available)])], out);
  return 0;
}

async function registerAddress(store: BillingLedgerStore, v: Values, out: (l: string) => void): Promise<number> {
  const role = str(v, 'role', true);
  if (!(BENEFICIARIES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${BENEFICIARIES.join(', ')}`);
  const given = str(v, 'id', true);
  const address = str(v, 'address', true);
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new UsageError('--address must be 0x followed by 40 hex digits');
  // A miner may be named by its short id; a full id it has not worked under yet is taken as given.
  const id = role === 'miner' ? await beneficiaryId(store, given, 'miner', { allowUnknownMiner: true }) : given;
  await store.registerAddress(role as Beneficiary, id, address);
  out(`${role} ${id} is paid to ${address.toLowerCase()} in cycles sealed from now on`);
  return 0;
}

async function linkAddress(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const account = str(v, 'account', true);
  const address = str(v, 'address', true);
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new UsageError('--address must be 0x followed by 40 hex digits');
  const r = await store.linkAddress(account, address);
  if (json) out(toJson(r));
  else out(`${r.link.address} is linked to ${account}: its escrow deposits credit the account${r.credited > 0n ? ` (credited ${r.credited} tokens deposited before)` : ''}`);
  return 0;
}

async function withdraw(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const account = str(v, 'account', true);
  const address = str(v, 'address', true);
  const amountS = str(v, 'amount', true);
  if (amountS !== 'all' && (!/^\d+$/.test(amountS) || BigInt(amountS) === 0n)) throw new UsageError(`--amount must be a positive whole number of token base units or "all", not "${amountS}"`);
  const w = await store.requestWithdrawal(account, address, amountS === 'all' ? 'all' : BigInt(amountS));
  if (json) out(toJson(w));
  else out(`withdrawal ${w.id}: ${w.amount} tokens debited from ${account} for ${w.address}; cgn settle posts it after the next anchored cycle, then: cgn wallet withdraw`);
  return 0;
}

async function withdrawals(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const account = str(v, 'account');
  const list = await store.withdrawals(account === undefined ? {} : { account });
  if (json) out(toJson(list));
  else table([['id', 'account', 'address', 'amount', 'cycle', 'posted'], ...list.map((w) => [String(w.id), w.account, w.address, w.amount.toString(), w.cycle === null ? '-' : String(w.cycle), w.postedAt === null ? 'pending' : (w.tx ?? 'yes')])], out);
  return 0;
}

async function unlinkAddress(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const account = str(v, 'account', true);
  const address = str(v, 'address', true);
  if (!/^0x[0-9a-fA-F]{40}$/.test(address)) throw new UsageError('--address must be 0x followed by 40 hex digits');
  const link = await store.unlinkAddress(account, address);
  if (json) out(toJson(link));
  else out(`${link.address} is no longer linked to ${account}: its later escrow deposits are held until it is linked again`);
  return 0;
}

async function held(store: BillingLedgerStore, v: Values, out: (l: string) => void, json: boolean): Promise<number> {
  const role = str(v, 'role');
  if (role !== undefined && !(BENEFICIARIES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${BENEFICIARIES.join(', ')}`);
  const given = str(v, 'beneficiary');
  const who = given === undefined ? undefined : await beneficiaryId(store, given, role as Beneficiary | undefined);
  const list = await store.heldCredits({ ...(v.all === true ? {} : { pending: true }), ...(role === undefined ? {} : { role: role as Beneficiary }), ...(who === undefined ? {} : { beneficiary: who }) });
  const registered = await store.addresses();
  // One line per beneficiary: what is owed, from which cycles, and whether its address is known now.
  const by = new Map<string, { role: Beneficiary; beneficiary: string; tokens: bigint; cycles: Set<number>; paidIn: Set<number> }>();
  for (const h of list) {
    const k = `${h.role}\u0000${h.beneficiary}`;
    let e = by.get(k);
    if (e === undefined) by.set(k, (e = { role: h.role, beneficiary: h.beneficiary, tokens: 0n, cycles: new Set(), paidIn: new Set() }));
    e.tokens += h.tokens;
    e.cycles.add(h.cycle);
    if (h.releasedIn !== null) e.paidIn.add(h.releasedIn);
  }
  const lines = [...by.entries()].map(([k, e]) => ({ ...e, cycles: [...e.cycles].sort((a, b) => a - b), paidIn: [...e.paidIn].sort((a, b) => a - b), address: registered.get(k) ?? null }));
  if (json) {
    out(toJson({ held: lines, credits: list }));
    return 0;
  }
  if (lines.length === 0) {
    out(v.all === true ? 'Nothing was ever held: every beneficiary had an address.' : 'Nothing is held: every beneficiary that earned has an address.');
    return 0;
  }
  table([['role', 'beneficiary', 'CGN', 'from cycles', 'now'], ...lines.map((l) => [
    l.role, l.beneficiary, baseUnitsAsCgn(l.tokens), l.cycles.join(','),
    l.paidIn.length > 0 && v.all === true ? `paid in ${l.paidIn.join(',')}` : l.address === null ? 'no address yet' : `paid to ${l.address} next cycle`,
  ])], out);
  return 0;
}

