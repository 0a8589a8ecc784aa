/**
 * `cgn miner`: parses the command line, starts the miner with pino logging to stderr, and on
 * SIGINT/SIGTERM drains gracefully and exits 0 (a second signal exits at once with 1).
 * Wrong arguments print a clear message and exit 2.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { TIERS } from '@cgn/protocol';
import type { MinerLogger } from './log.js';
import { startMiner, type Miner } from './miner.js';
import { minerRegistry, serveMinerMetrics } from './metrics.js';
import { DEFAULT_KEY_FILE, LIMITS_MODES, MinerOptionError, SANDBOX_MODES, type LimitsMode, type MinerOptions, type SandboxMode } from './options.js';
import { measureRuntime } from './attestation/runtime.js';
import { digestPackage } from './digest.js';
import { noPayoutAddressWarning, noticeLine } from './payout-warning.js';
import { DEFAULT_CONTROL_PORT, LogRing, startControlApp, teeLogger, type ControlApp } from './control/index.js';

export const MINER_USAGE = `Usage: cgn miner --node URL [--dservice DIR ...] [options]

Runs a miner: dials a CGN node, runs DServices in sandboxes and does the work the node sends.

Options:
  --node URL        the node's miner endpoint, wss://host:port/ (ws:// only to this
                    machine, or with --plaintext)                          (required)
  --ca-file FILE    CA certificate(s) (PEM) that vouch for the node's certificate
                                                      (default: the system's CAs)
  --pin-sha256 FP   accept only the node certificate with this SHA-256 fingerprint
                    (openssl x509 -noout -fingerprint -sha256 -in node.crt)
  --plaintext       allow ws:// to another machine (only behind a TLS-terminating proxy)
  --dservice DIR    a DService package directory (with a dservice.json) to run from the
                    start; repeat for several. Without any, the miner runs what the node
                    places on it (packages fetched from the node, checked by digest)
  --package-cache-mb N
                    disk budget for placed packages: ones no longer placed are removed,
                    least recently used first, beyond it                    (default 1024)
  --package-cache-dir DIR
                    where placed packages are unpacked
                                   (default <key file's dir>/package-cache/<miner id>)
  --key FILE        the miner's Ed25519 key (PEM); created with mode 0600 if missing
                                                      (default ${DEFAULT_KEY_FILE})
  --slots N         work units run at once   (default: sum of the DServices' concurrency)
  --tier T          ${TIERS.join(' | ')}                       (default open)
                    granted by the node, never taken on the miner's word: dedicated
                    when central registered it so, attested for a verified TPM quote
  --tpm TCTI        the TPM for --tier attested: device:/dev/tpmrm0, or swtpm:port=P;
                    its attestation key is written to <key>.attestation-key.pem
                    (register it: cgn miner register --attestation-key FILE)
  --measure         print the runtime's and the DServices' measurements (what an
                    administrator puts on central's allow-list) and exit
  --sandbox MODE    ${SANDBOX_MODES.join(' | ')}: auto uses bubblewrap if it works here,
                    else plain processes with a warning            (default auto)
  --limits MODE     ${LIMITS_MODES.join(' | ')}: the DServices' CPU, memory and process limits
                    (dservice.json resources) enforced with cgroups; auto warns
                    where no cgroup is writable, cgroup refuses to start then
                                                                   (default auto)
  --location L      free-text location advertised to the node      (default none)
  --region R        data region advertised to the node, e.g. eu-west (placement honours
                    an account's regions)                              (default none)
  --price-floor N   the least it accepts, µUSD per CPU-second        (default 0)
  --run-dir DIR     directory for the DServices' sockets   (default a new temporary dir)
  --payout-address ADDRESS
                    the miner's EVM address: its earnings are paid there (without it they
                    are held in the ledger, not paid, until it gives one; the miner warns
                    at start and at every cycle it earns in); "new" (with cgn miner)
                    makes a wallet: key in <key>.payout.key (0600), address printed;
                    in the open tier its stake backs the work (cgn wallet stake --amount N)
  --stake-proof SIG the payout address's signature binding it to this miner's key, made with
                    cgn wallet stake-proof --key K --miner-key FILE; nodes that check stakes
                    admit the miner to the open tier only with it
  --metrics-port N  serve Prometheus metrics at http://127.0.0.1:N/metrics (loopback only;
                    0 = any free port, its URL is logged)                (default off)
  --control-port N  serve the control app (start, pause, resume, stop; when it may work;
                    work done) at http://127.0.0.1:N/ (loopback only; 0 = any free port;
                    another free port when the default is taken); signed in with the
                    token in <key>.control-token (0600, made if missing)
                                                                   (default ${DEFAULT_CONTROL_PORT})
  --no-control      do not serve the control app
  --chain-rpc URL   with --contracts FILE: the chain the control app reads the payout
                    address's tokens, stake and claims per cycle from  (default: not shown)
  -h, --help        show this help and exit

Environment:
  CGN_LOG_LEVEL     debug | info | warn | error (default info); logs are JSON on stderr

On SIGINT or SIGTERM the miner tells the node it is draining, finishes the work in flight,
stops its DServices and exits 0.
`;

export interface MainIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  exit: (code: number) => void;
  /** Creates the logger; default pino to stderr at `$CGN_LOG_LEVEL`. */
  logger?: () => MinerLogger;
  /** Whether to install SIGINT/SIGTERM handlers (default true). */
  signals?: boolean;
}

const defaultIo: MainIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  exit: (code) => process.exit(code),
};

/** Command-line flag for each option, for error messages. */
const FLAG: Record<string, string> = {
  nodeUrl: '--node', keyFile: '--key', dservices: '--dservice', slots: '--slots', tier: '--tier',
  sandbox: '--sandbox', limits: '--limits', packageCacheMb: '--package-cache-mb', packageCacheDir: '--package-cache-dir', caFile: '--ca-file', pinSha256: '--pin-sha256', location: '--location', region: '--region', priceFloor: '--price-floor', runDir: '--run-dir', payoutAddress: '--payout-address', stakeProof: '--stake-proof',
};

function flagOf(option: string): string {
  const base = option.replace(/\[\d+\]$/, '');
  return FLAG[base] ?? option;
}

/**
 * Runs `cgn miner` with these arguments (without the command name). Resolves once the miner
 * runs (the process then lives until a signal) or after printing help or an error (having
 * called `io.exit`). Returns the miner when it started.
 */
export async function runMinerFromArgs(argv: string[], io: MainIo = defaultIo): Promise<Miner | null> {
  const usageError = (msg: string): null => {
    io.stderr(`cgn miner: ${msg}\n\nRun "cgn miner --help" for the options.\n`);
    io.exit(2);
    return null;
  };
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        node: { type: 'string' },
        dservice: { type: 'string', multiple: true },
        key: { type: 'string' },
        slots: { type: 'string' },
        tier: { type: 'string' },
        tpm: { type: 'string' },
        measure: { type: 'boolean' },
        sandbox: { type: 'string' },
        limits: { type: 'string' },
        location: { type: 'string' },
        region: { type: 'string' },
        'price-floor': { type: 'string' },
        'run-dir': { type: 'string' },
        'payout-address': { type: 'string' },
        'stake-proof': { type: 'string' },
        'ca-file': { type: 'string' },
        'pin-sha256': { type: 'string' },
        plaintext: { type: 'boolean' },
        'metrics-port': { type: 'string' },
        'package-cache-mb': { type: 'string' },
        'package-cache-dir': { type: 'string' },
        'control-port': { type: 'string' },
        'no-control': { type: 'boolean' },
        'chain-rpc': { type: 'string' },
        contracts: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (values.help === true) {
    io.stdout(MINER_USAGE);
    return null;
  }
  if (values.measure === true) {
    const runtime = await measureRuntime();
    const dservices = await Promise.all((values.dservice ?? []).map(async (d) => ({ dir: d, digest: await digestPackage(d) })));
    io.stdout(JSON.stringify({ runtime: runtime.digest, parts: runtime.parts, dservices }, null, 2) + '\n');
    return null;
  }
  if (values.node === undefined) return usageError('--node URL is required (the node miner endpoint, e.g. ws://127.0.0.1:8081/)');
  const options: MinerOptions = { nodeUrl: values.node, dservices: values.dservice ?? [] };
  if (values['package-cache-mb'] !== undefined) {
    if (!/^[1-9][0-9]{0,6}$/.test(values['package-cache-mb'])) return usageError(`--package-cache-mb must be a positive whole number of MiB, not "${values['package-cache-mb']}"`);
    options.packageCacheMb = Number(values['package-cache-mb']);
  }
  if (values['package-cache-dir'] !== undefined) options.packageCacheDir = values['package-cache-dir'];
  if (values.key !== undefined) options.keyFile = values.key;
  if (values.slots !== undefined) {
    if (!/^[1-9][0-9]*$/.test(values.slots)) return usageError(`--slots must be a positive integer, not "${values.slots}"`);
    options.slots = Number(values.slots);
  }
  if (values.tier !== undefined) options.tier = values.tier as MinerOptions['tier'] & string;
  if (values.tpm !== undefined) options.tpm = values.tpm;
  if (values.sandbox !== undefined) options.sandbox = values.sandbox as SandboxMode;
  if (values.limits !== undefined) options.limits = values.limits as LimitsMode;
  if (values.location !== undefined) options.location = values.location;
  if (values.region !== undefined) options.region = values.region;
  if (values['price-floor'] !== undefined) options.priceFloor = Number(values['price-floor']);
  if (values['run-dir'] !== undefined) options.runDir = values['run-dir'];
  if (values['payout-address'] !== undefined) options.payoutAddress = values['payout-address'];
  if (values['stake-proof'] !== undefined) options.stakeProof = values['stake-proof'];
  if (values['ca-file'] !== undefined) options.caFile = values['ca-file'];
  if (values['pin-sha256'] !== undefined) options.pinSha256 = values['pin-sha256'];
  if (values.plaintext === true) options.plaintext = true;
  let metricsPort: number | null = null;
  if (values['metrics-port'] !== undefined) {
    if (!/^[0-9]{1,5}$/.test(values['metrics-port']) || Number(values['metrics-port']) > 65535) return usageError(`--metrics-port must be a port number (0-65535; 0 = any free port), not "${values['metrics-port']}"`);
    metricsPort = Number(values['metrics-port']);
  }

  let controlPort: number | undefined;
  if (values['control-port'] !== undefined) {
    if (values['no-control'] === true) return usageError('--control-port and --no-control exclude each other');
    if (!/^[0-9]{1,5}$/.test(values['control-port']) || Number(values['control-port']) > 65535) return usageError(`--control-port must be a port number (0-65535; 0 = any free port), not "${values['control-port']}"`);
    controlPort = Number(values['control-port']);
  }

  if ((values['chain-rpc'] === undefined) !== (values.contracts === undefined)) return usageError('--chain-rpc URL and --contracts FILE go together');
  const chain = values['chain-rpc'] !== undefined && values.contracts !== undefined ? { rpcUrl: values['chain-rpc'], contractsFile: values.contracts } : null;

  let logger: MinerLogger;
  try {
    logger = io.logger?.() ?? pino({ name: 'cgn-miner', level: process.env['CGN_LOG_LEVEL'] ?? 'info' }, pino.destination(2));
  } catch (err) {
    return usageError(`CGN_LOG_LEVEL: ${(err as Error).message}`);
  }
  // The control app shows the log from its first line: the logger also keeps it in a ring.
  const logRing = values['no-control'] === true ? null : new LogRing(200);
  if (logRing !== null) logger = teeLogger(logger, logRing);
  options.logger = logger;

  // Signals count from now on: one during the start stops the miner as soon as it runs.
  let miner: Miner | null = null;
  let control: ControlApp | null = null;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now without waiting for the work in flight');
      miner?.kill();
      io.exit(1);
      return;
    }
    stopping = true;
    if (miner === null) {
      logger.info({ signal }, 'signal received while starting: stopping once started');
      return;
    }
    logger.info({ signal }, 'signal received: draining');
    // The control app may have stopped the first miner and started another.
    const m = control?.controller.miner ?? miner;
    m.stop().then(
      () => io.exit(0),
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'error while stopping');
        m.kill();
        io.exit(1);
      },
    );
  };
  const signals = io.signals !== false;
  if (signals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  try {
    miner = await startMiner(options);
  } catch (err) {
    if (signals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (err instanceof MinerOptionError) {
      const detail = err.message.replace(/^miner option [^:]+: /, '');
      return usageError(`${flagOf(err.option)}: ${detail}`);
    }
    logger.fatal({ err: (err as Error).message }, 'miner failed to start');
    io.stderr(`cgn miner: ${(err as Error).message}\n`);
    io.exit(1);
    return null;
  }

  // Said on the console in plain words, not only in the JSON log: unpaid work is no surprise.
  if (options.payoutAddress === undefined) io.stderr(`${noPayoutAddressWarning()}\n`);
  if (values['no-control'] !== true) {
    try {
      control = await startControlApp({ miner, restart: () => startMiner(options), keyFile: options.keyFile ?? DEFAULT_KEY_FILE, port: controlPort, payoutAddress: options.payoutAddress, chain, ...(logRing !== null ? { logs: logRing } : {}) });
      logger.info({ controlUrl: control.url, tokenFile: control.tokenFile }, 'serving the miner control app on loopback');
      io.stderr(`miner control app: ${control.signInUrl}\n`);
    } catch (err) {
      // The miner works without it; the owner hears why it is missing.
      logger.error({ err: (err as Error).message, port: controlPort }, 'could not serve the control app (is the port in use?); the miner runs without it');
    }
  }

  // The control app may stop this miner and start another: the console and metrics follow it.
  const current = control?.controller.current ?? miner;
  // The node's periodic standing report is for the control app, not the console.
  current.on('notice', (n) => n.kind === 'reputation' || io.stderr(`${noticeLine(n)}\n`));
  if (metricsPort !== null) {
    try {
      const served = await serveMinerMetrics(minerRegistry(current), metricsPort);
      logger.info({ metricsUrl: served.url }, 'serving Prometheus metrics on loopback');
      // Without the control app the process ends with its miner; with it, metrics follow the next one.
      if (control === null) miner.once('stopped', () => void served.close());
    } catch (err) {
      // The miner works without its metrics; the owner hears why they are missing.
      logger.error({ err: (err as Error).message, port: metricsPort }, 'could not serve metrics (is the port in use?); the miner runs without them');
    }
  }

  if (stopping) {
    // A signal came while starting.
    stopping = false;
    onSignal('SIGTERM');
  }
  return miner;
}
