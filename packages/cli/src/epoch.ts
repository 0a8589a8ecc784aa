/**
 * `cgn epoch ...`: the validator election's operator side. Service levels come from the ledger's
 * reputation (@cgn/ledger `ledgerServiceLevels`, miners mapped to their payout addresses), and the
 * epoch scheduler (@cgn/chain `EpochScheduler`) puts them on chain and elects each epoch's set.
 *
 *   cgn epoch levels   what the ledger says now, per miner (nothing is sent)
 *   cgn epoch once     handle the current epoch once and exit (for cron)
 *   cgn epoch run      keep handling epochs until interrupted
 *
 * Resolves to the exit code: 0 done, 1 failed, 2 bad usage.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  ContractsFileError, EpochScheduler, explainChainError, isPrivateKey, openContracts, untilStopped,
  type EpochClock, type EpochOutcome, type EpochSchedulerOptions,
} from '@cgn/chain';
import {
  DEFAULT_LEDGER_PATH, PostgresLedgerStore, SqliteLedgerStore, ledgerAddressLookup, ledgerServiceLevels, levelsByAddress,
  type BillingLedgerStore, type LedgerServiceLevelOptions,
} from '@cgn/ledger';

export const EPOCH_USAGE = `usage: cgn epoch <command> [options]

commands:
  levels        the service level of each miner from the ledger now (records, success ratio,
                latency and volume scores, smoothed level, payout address); sends nothing
  once          handle the current epoch: write changed service levels of the validator
                candidates (ORACLE_ROLE), then elect the epoch's set (ELECTOR_ROLE); exit
  run           the same for every new epoch until Ctrl-C

ledger options:
  --ledger PATH         SQLite ledger (default ${DEFAULT_LEDGER_PATH})
  --postgres URL        a PostgreSQL ledger instead; --schema NAME (default cgn_ledger)
  --window DURATION     length of one reputation window (default 1h; e.g. 15m, 6h, 1d)
  --windows N           windows smoothed together, newest weighted most (default 4)
  --alpha X             weight of the newest window, 0 < X <= 1 (default 0.5)

chain options (once, run):
  --rpc URL             JSON-RPC endpoint (env CGN_CHAIN_RPC)
  --key HEX             key holding ORACLE_ROLE and ELECTOR_ROLE (env CGN_EPOCH_KEY)
  --contracts FILE      contract addresses written at deployment (env CGN_CHAIN_CONTRACTS)
  --epoch-blocks N      epochs of N blocks, counted from the deployment block, or
  --epoch-seconds N     epochs of N seconds of this host's clock (default 3600)

  --json                machine-readable output
  -h, --help            this text

A miner's level counts only once its payout address is known to the ledger
(cgn ledger register-address --role miner --id MINER_ID --address 0x...). Candidates register
on chain themselves (stake, then ValidatorElection.register()); a candidate the ledger does not
know, or a banned one, gets level 0 and is not elected. Read the result with
cgn wallet validators [--epoch N].`;

export interface EpochIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env?: Record<string, string | undefined>;
  /** run: stops when aborted (default: on SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

const defaultIo: EpochIo = {
  stdout: (t) => void process.stdout.write(`${t}\n`),
  stderr: (t) => void process.stderr.write(`${t}\n`),
};

class UsageError extends Error {}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function duration(v: string | undefined, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  const m = /^(\d+)(s|m|h|d)$/.exec(v);
  if (m === null || Number(m[1]) === 0) throw new UsageError(`${what} must be a positive duration like 30s, 15m, 1h or 1d, got "${v}"`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

function posInt(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) <= 0 || !Number.isSafeInteger(Number(v))) throw new UsageError(`${what} must be a positive integer, got "${v}"`);
  return Number(v);
}

async function openLedger(v: Record<string, string | boolean | undefined>): Promise<BillingLedgerStore> {
  if (typeof v.postgres === 'string') {
    if (v.ledger !== undefined) throw new UsageError('use either --ledger or --postgres, not both');
    return PostgresLedgerStore.open({ url: v.postgres, ...(typeof v.schema === 'string' ? { schema: v.schema } : {}), max: 2 });
  }
  if (v.schema !== undefined) throw new UsageError('--schema goes with --postgres');
  const path = typeof v.ledger === 'string' ? v.ledger : DEFAULT_LEDGER_PATH;
  if (!existsSync(path)) throw new Error(`no ledger at ${path} (pass --ledger PATH or --postgres URL)`);
  return new SqliteLedgerStore({ path, readonly: true });
}

const jsonOut = (o: unknown) => JSON.stringify(o, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2);

function describeOutcome(o: EpochOutcome): string {
  switch (o.status) {
    case 'not-started':
      return 'epoch 0: the first epoch has not started';
    case 'already-elected':
      return `epoch ${o.epoch}: already elected (${o.validators.length} validators)`;
    case 'no-candidates':
      return `epoch ${o.epoch}: no candidate has stake and a service level above 0; nothing elected (${o.levels.length} levels written)`;
    case 'elected':
      return [
        `epoch ${o.epoch}: elected ${o.validators.length} validators (seed ${o.seed} from block ${o.seedBlock}, gas ${o.electGas})`,
        ...o.levels.map((l) => `  service level ${l.candidate}: ${l.from} -> ${l.to} bps (gas ${l.gasUsed})`),
        ...o.validators.map((a, i) => `  ${i + 1}. ${a}`),
      ].join('\n');
  }
}

export async function runEpochFromArgs(argv: readonly string[], io: EpochIo = defaultIo): Promise<number> {
  const env = io.env ?? process.env;
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        ledger: { type: 'string' },
        postgres: { type: 'string' },
        schema: { type: 'string' },
        window: { type: 'string' },
        windows: { type: 'string' },
        alpha: { type: 'string' },
        rpc: { type: 'string' },
        key: { type: 'string' },
        contracts: { type: 'string' },
        'epoch-blocks': { type: 'string' },
        'epoch-seconds': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr(`cgn epoch: ${(err as Error).message}\n\n${EPOCH_USAGE}`);
    return 2;
  }
  const cmd = positionals[0];
  if (values.help || cmd === 'help') {
    io.stdout(EPOCH_USAGE);
    return 0;
  }
  let store: BillingLedgerStore | undefined;
  let scheduler: EpochScheduler | undefined;
  try {
    if (cmd === undefined) throw new UsageError('a command is required');
    if (!['levels', 'once', 'run'].includes(cmd)) throw new UsageError(`unknown command "${cmd}"`);
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    const alpha = values.alpha === undefined ? undefined : Number(values.alpha);
    if (alpha !== undefined && !(alpha > 0 && alpha <= 1)) throw new UsageError(`--alpha must be a number in (0, 1], got "${String(values.alpha)}"`);
    const windows = posInt(values.windows as string | undefined, '--windows');
    const levelOpts: LedgerServiceLevelOptions = {
      by: 'miner',
      windowMs: duration(values.window as string | undefined, '--window', 3_600_000),
      ...(windows !== undefined ? { windows } : {}),
      ...(alpha !== undefined ? { alpha } : {}),
    };

    // Chain options are checked before anything is opened.
    let chain: { rpc: string; key: `0x${string}`; contractsFile: string; clock: EpochClock } | undefined;
    if (cmd !== 'levels') {
      const rpc = (values.rpc as string | undefined) ?? env.CGN_CHAIN_RPC;
      if (!rpc) throw new UsageError('--rpc URL is required (or CGN_CHAIN_RPC)');
      const key = (values.key as string | undefined) ?? env.CGN_EPOCH_KEY;
      if (key === undefined) throw new UsageError(`${cmd} signs transactions: --key HEX is required (or CGN_EPOCH_KEY)`);
      if (!isPrivateKey(key)) throw new UsageError('--key must be 0x followed by 64 hex digits');
      const contractsFile = (values.contracts as string | undefined) ?? env.CGN_CHAIN_CONTRACTS;
      if (!contractsFile) throw new UsageError('--contracts FILE is required (or CGN_CHAIN_CONTRACTS)');
      const blocks = posInt(values['epoch-blocks'] as string | undefined, '--epoch-blocks');
      const seconds = posInt(values['epoch-seconds'] as string | undefined, '--epoch-seconds');
      if (blocks !== undefined && seconds !== undefined) throw new UsageError('give either --epoch-blocks or --epoch-seconds');
      const clock: EpochClock = blocks !== undefined ? { unit: 'blocks', length: BigInt(blocks) } : { unit: 'seconds', length: seconds ?? 3600 };
      chain = { rpc, key, contractsFile, clock };
    }

    store = await openLedger(values);
    const ledger = store;
    if (cmd === 'levels') {
      const r = await ledgerServiceLevels(ledger, levelOpts);
      const lookup = await ledgerAddressLookup(ledger, 'miner');
      const rows = r.subjects.map((s) => {
        const latest = r.latest.find((l) => l.subject === s.subject);
        return { miner: s.subject, address: lookup(s.subject) ?? null, records: s.records, success: latest?.success ?? 0, latency: latest?.latency ?? 0, volume: latest?.volume ?? 0, latestBps: latest?.bps ?? 0, bps: s.bps };
      });
      if (values.json) {
        io.stdout(jsonOut({ from: r.from, to: r.to, miners: rows }));
      } else if (rows.length === 0) {
        io.stdout(`no work recorded from ${new Date(r.from).toISOString()} to ${new Date(r.to).toISOString()}`);
      } else {
        io.stdout(`service levels from ${new Date(r.from).toISOString()} to ${new Date(r.to).toISOString()} (latest window: success, latency, volume)`);
        for (const x of rows) {
          io.stdout(
            `${x.miner.slice(0, 16).padEnd(16)}  ${String(x.records).padStart(8)} rec  ${(x.success * 100).toFixed(1).padStart(5)}%  ${x.latency.toFixed(2)}  ${x.volume.toFixed(2)}  ${String(x.bps).padStart(5)} bps  ${x.address ?? '(no payout address: not pushed)'}`,
          );
        }
      }
      return 0;
    }

    const c = chain!;
    const opts: EpochSchedulerOptions = {
      contracts: await openContracts({ rpcUrl: c.rpc, contractsFile: c.contractsFile, privateKey: c.key }),
      clock: c.clock,
      serviceLevels: async () => {
        const r = await ledgerServiceLevels(ledger, levelOpts);
        return levelsByAddress(r.subjects, await ledgerAddressLookup(ledger, 'miner')).levels;
      },
      onEpoch: (o) => io.stdout(values.json ? jsonOut(o) : describeOutcome(o)),
      onError: (err) => io.stderr(`cgn epoch run: ${describeError(err)} (will try again)`),
      onRetry: (err, attempt, step) => io.stderr(`cgn epoch: ${step} failed (attempt ${attempt}): ${describeError(err)}; retrying`),
    };
    scheduler = new EpochScheduler(opts);
    if (cmd === 'once') {
      const o = await scheduler.runOnce();
      io.stdout(values.json ? jsonOut(o) : describeOutcome(o));
      return 0;
    }
    io.stdout(values.json ? JSON.stringify({ running: true, epoch: String(await scheduler.currentEpoch()) }) : `cgn epoch run: epoch ${await scheduler.currentEpoch()} now; Ctrl-C stops`);
    scheduler.start();
    await untilStopped(io.signal);
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ContractsFileError) {
      io.stderr(`cgn epoch: ${err.message}\n\n${EPOCH_USAGE}`);
      return 2;
    }
    io.stderr(`cgn epoch ${cmd}: ${describeError(err)}`);
    return 1;
  } finally {
    await scheduler?.stop();
    await store?.close();
  }
}

function describeError(err: unknown): string {
  return explainChainError(err).message;
}
