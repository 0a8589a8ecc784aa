/**
 * `cgn dev` (what `npm start` runs): the whole local network on this machine. It starts a node
 * and several miner processes (each running MediaGen and echo in sandboxes), creates a demo API
 * key, writes the facts to `<dir>/dev.json` and prints how to send work. Ctrl-C stops it all.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { parseArgs } from 'node:util';
import { FileApiKeyStore } from '@cgn/node';
import { ensureDevPki, issueCert, setupDevNetwork } from '@cgn/central';
import { rootCertificates } from 'node:tls';
import { Agent, setGlobalDispatcher } from 'undici';
import { digestPackage } from '@cgn/miner';
import { SqliteLedgerStore } from '@cgn/ledger';
import { ANVIL_KEYS, addressesToJson, asAccount, startLocalChain, type LocalChain } from '@cgn/chain';
import { privateKeyToAccount } from 'viem/accounts';
import { dserviceDir } from './paths.js';
import { freeLoopbackPorts, minerMetricsUrl, type MetricsUrls } from './dev-metrics.js';
import { exitAsError, exitWithin, firstJsonLine, readableLogLine, startChild, type Child } from './dev-child.js';
import { checkPorts, parsePort, portFree, type PlannedPort } from './dev-ports.js';
import { makeProgress } from './dev-progress.js';
import { coloursFor } from '@cgn/protocol';
import { centralLoginMismatch, loadDevState, saveDevState } from './dev-state.js';
import { startDevAttestedMiner, swtpmProblem, type DevAttestedMiner } from './dev-attested.js';
import { checkIsolation, isolationNotice } from './isolation-notice.js';

export const DEV_USAGE = `Usage: cgn dev [options]   (npm start runs this)

Starts a local CGN network: the Central Service (accounts, keys, approvals; it dials the node
over mutual TLS with a local CA), one node, several miners running the MediaGen and echo
DServices, and the embedded ledger (SQLite under the state directory). Prints the endpoints, a
demo API key and a ready-to-paste curl; writes the same facts to <dir>/dev.json. Ctrl-C stops
everything. Each part is reported as it comes up; a port in use is named with the flag that moves
it. The passwords central is given are saved in <dir>/dev-state.json before it starts, so a start
that fails half way can simply be run again.

Options:
  --dir DIR           state directory                     (default .cgn)
  --miners N          miner processes to start            (default 3)
  --work-port PORT    node work/status port, 0 = any free (default 8080)
  --miner-port PORT   node miner port, 0 = any free       (default 8081)
  --dservice NAME     DService to run (repeatable)        (default mediagen and echo)
  --sandbox MODE      auto | bwrap | none                 (default auto)
  --central-port PORT central's HTTP port, 0 = any free   (default 7700)
  --no-central        no central: the node checks keys from a local file
  --chain-rpc URL     deploy to this Ethereum JSON-RPC endpoint instead of starting anvil
  --chain-key HEX     the deployer's private key for --chain-rpc
  --no-chain          no chain (the demo account is credited in the ledger directly)
  --chain-port PORT   anvil's port, 0 = any free   (default: the one this --dir used last,
                      else any free; kept in <dir>/dev-state.json so the RPC URL stays put)
  --cycle DURATION    close and anchor a billing cycle this often, e.g. 30s, 5m (default 2m)
  --plaintext         no TLS (every endpoint listens on loopback only; for benchmarks)
  --quiet, --json     print only the ready JSON line (the facts of dev.json)
  -h, --help          show this help
`;

export interface DevInfo {
  /** Central's HTTP API (OpenAPI at /openapi.json); null with --no-central. */
  centralUrl: string | null;
  /** Central's web app: the operator dashboard (sign in as `admin`) and the account pages; null with --no-central. */
  dashboardUrl: string | null;
  /**
   * The chain: JSON-RPC URL, contract addresses (file for `cgn wallet --contracts`) and funded dev
   * wallets: the demo account's, and the payees' (operator, charity, developer, one per miner).
   */
  chain: {
    rpcUrl: string; contractsFile: string; contracts: Record<string, unknown>; demoWallet: Wallet;
    payees?: { operator: Wallet; charity: Wallet; developer: Wallet; miners: Wallet[] };
  } | null;
  /** Central's first administrator, and the demo account's owner (for `cgn account login`). */
  admin: { login: string; password: string } | null;
  demoOwner: { login: string; password: string } | null;
  workUrl: string;
  statusUrl: string;
  minerUrl: string;
  apiKey: string;
  /**
   * Keys of the two prepaid demo accounts ("demo" and "demo-2"; the first is `apiKey`), so that
   * fair shares can be tried: flood with one, time the other.
   */
  apiKeys: string[];
  /** The owners of the demo accounts at central, in the order of `apiKeys` (none without central). */
  demoOwners: { login: string; password: string }[];
  /** The local CA that signed every endpoint's certificate (curl --cacert, cgn miner --ca-file); null with --plaintext. */
  caFile: string | null;
  dir: string;
  pids: { dev: number; central: number | null; node: number; miners: number[]; settle?: number | null; swtpm?: number | null };
  /**
   * The miner in the attested tier on a software TPM (swtpm), with the owner of its operator
   * account at central; null when this machine has no swtpm (or no central), `attestedNote` says why.
   */
  attestedMiner: { minerId: string; tcti: string; keyFile: string; owner: { login: string; password: string } } | null;
  attestedNote: string;
  logs: string;
  /** Prometheus metrics: the node's and central's /metrics, and each miner's loopback port (`miners[i]` is miner-(i+1), the attested miner last). */
  metricsUrls: MetricsUrls;
  /** Each miner's control app on loopback (same order as `metricsUrls.miners`); it signs in with the token in the file at the same index. */
  minerControlUrls: string[];
  minerControlTokenFiles: string[];
}

interface Wallet {
  address: string;
  privateKey: string;
}

function wallet(privateKey: `0x${string}`): Wallet {
  return { address: privateKeyToAccount(privateKey).address, privateKey };
}

/** How long a process of the local network may take to stop after SIGTERM before it is killed. */
const STOP_GRACE_MS = 10_000;

/** Tokens the demo account holds in the local network (the node refuses unfunded work with 402). */
const DEMO_BALANCE = 10n ** 18n;

/** Without a chain: a direct ledger credit. Returns the available balance. */
function prepaid(ledgerPath: string, account: string): void {
  const store = new SqliteLedgerStore({ path: ledgerPath });
  try {
    const b = store.balance(account);
    if (b.deposited - b.spent < DEMO_BALANCE / 2n) store.credit(account, DEMO_BALANCE, 'local network demo top-up');
  } finally {
    store.close();
  }
}

/**
 * With a chain, the demo account prepays the way any account does: its wallet is linked to it in
 * the ledger and deposits tokens into the settlement escrow; `cgn settle` credits the deposit.
 * Returns the tokens deposited now (0 when the balance is still high enough).
 */
async function depositDemo(ledgerPath: string, account: string, chain: LocalChain, demoKey: `0x${string}`): Promise<bigint> {
  const store = new SqliteLedgerStore({ path: ledgerPath });
  let low: boolean;
  try {
    store.linkAddress(account, privateKeyToAccount(demoKey).address);
    low = store.balance(account).available < DEMO_BALANCE / 2n;
  } finally {
    store.close();
  }
  if (!low) return 0n;
  await (await asAccount(chain, demoKey)).deposit(DEMO_BALANCE);
  return DEMO_BALANCE;
}

async function waitForCredit(ledgerPath: string, account: string, atLeast: bigint, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const store = new SqliteLedgerStore({ path: ledgerPath, readonly: true });
    const available = (() => {
      try {
        return store.balance(account).available;
      } finally {
        store.close();
      }
    })();
    if (available >= atLeast) return;
    if (Date.now() > until) throw new Error(`the demo deposit was not credited within ${timeoutMs} ms; see the settle log`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The local network's one server certificate (localhost, 127.0.0.1, ::1), from the local CA in `pkiDir`. */
function devTls(pkiDir: string): { caFile: string; certFile: string; keyFile: string } {
  issueCert(pkiDir, 'public', 'localhost', ['localhost', '127.0.0.1', '::1']);
  return { caFile: join(pkiDir, 'ca.crt'), certFile: join(pkiDir, 'public.crt'), keyFile: join(pkiDir, 'public.key') };
}

/** This process's own fetches (central setup, status polls) trust the local CA too. */
function trustCa(caFile: string): void {
  setGlobalDispatcher(new Agent({ connect: { ca: [readFileSync(caFile, 'utf8'), ...rootCertificates] } }));
}

async function waitForApproved(statusUrl: string, n: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = (await (await fetch(statusUrl)).json()) as { dservices: unknown[] };
      if (s.dservices.length >= n) return;
    } catch {
      /* node not answering yet */
    }
    if (Date.now() > until) throw new Error(`central did not approve the DServices on the node within ${timeoutMs} ms; see ${statusUrl} and the central log`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitForMiners(statusUrl: string, n: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let joined = 0;
  for (;;) {
    try {
      const s = (await (await fetch(statusUrl)).json()) as { miners: unknown[] };
      joined = s.miners.length;
      if (s.miners.length >= n) return;
    } catch {
      /* node not answering yet */
    }
    if (Date.now() > until) throw new Error(`${joined} of the ${n} miners joined within ${timeoutMs / 1000} s; see their logs (miner-*.log)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function runDevFromArgs(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' }, miners: { type: 'string' }, 'work-port': { type: 'string' }, 'miner-port': { type: 'string' },
        dservice: { type: 'string', multiple: true }, sandbox: { type: 'string' }, quiet: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        'central-port': { type: 'string' }, 'no-central': { type: 'boolean' },
        'chain-rpc': { type: 'string' }, 'chain-key': { type: 'string' }, 'no-chain': { type: 'boolean' }, 'chain-port': { type: 'string' }, cycle: { type: 'string' }, plaintext: { type: 'boolean' },
      },
    }));
  } catch (err) {
    process.stderr.write(`cgn dev: ${(err as Error).message}\n\n${DEV_USAGE}`);
    process.exit(2);
  }
  if (values.help) return void process.stdout.write(DEV_USAGE);
  if (values.json) values.quiet = true;
  const dir = resolve(values.dir ?? '.cgn');
  const miners = Number(values.miners ?? 3);
  if (!Number.isInteger(miners) || miners < 0 || miners > 64) {
    process.stderr.write('cgn dev: --miners must be an integer from 0 to 64\n');
    process.exit(2);
  }
  const dservices = (values.dservice ?? ['mediagen', 'echo']).map((n) => {
    const d = dserviceDir(n);
    if (!existsSync(join(d, 'dservice.json'))) {
      process.stderr.write(`cgn dev: no DService "${n}" (looked for ${d}/dservice.json)\n`);
      process.exit(2);
    }
    return d;
  });
  let ports: { central: number; work: number; miner: number; chain: number | undefined };
  try {
    const flag = (name: 'central-port' | 'work-port' | 'miner-port' | 'chain-port', dflt: string) => parsePort(`--${name}`, values[name] ?? dflt);
    ports = { central: flag('central-port', '7700'), work: flag('work-port', '8080'), miner: flag('miner-port', '8081'), chain: values['chain-port'] === undefined ? undefined : flag('chain-port', '0') };
  } catch (err) {
    process.stderr.write(`cgn dev: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  mkdirSync(join(dir, 'miners'), { recursive: true });

  // Facts from the last run: the demo key and passwords are kept so they stay valid.
  const devFile = join(dir, 'dev.json');
  let prev: Partial<DevInfo> = {};
  if (existsSync(devFile)) {
    try {
      prev = JSON.parse(readFileSync(devFile, 'utf8')) as Partial<DevInfo>;
    } catch {
      /* a broken dev.json is rewritten below */
    }
  }
  const withCentral = !values['no-central'];
  const keysFile = join(dir, 'node', 'api-keys.json');
  let apiKey: string | null = null;
  // The second demo account: another account's work, to try fair shares with.
  let apiKey2: string | null = null;
  let demo2: { account: string; owner: { login: string; password: string } | null } = { account: 'demo-2', owner: null };
  if (!withCentral) {
    const keyStore = new FileApiKeyStore(keysFile);
    if (prev.apiKey !== undefined && keyStore.verify(prev.apiKey) !== null) apiKey = prev.apiKey;
    apiKey ??= keyStore.create('demo').key;
    if (prev.apiKeys?.[1] !== undefined && keyStore.verify(prev.apiKeys[1]) !== null) apiKey2 = prev.apiKeys[1];
    apiKey2 ??= keyStore.create('demo-2').key;
  }
  // The passwords this directory's central gets are saved before central starts: a start that
  // fails later leaves a directory the next start can log in to.
  const state = loadDevState(dir);
  saveDevState(dir, state);
  const admin = state.admin;
  const nodeId = 'node-local-1';
  const withChain = !values['no-chain'];
  const embeddedChain = withChain && values['chain-rpc'] === undefined;
  // anvil keeps its port across restarts of one directory (so the RPC URL in wallets stays valid);
  // the first start takes any free port.
  const chainPort = embeddedChain ? ports.chain ?? state.chainPort ?? 0 : 0;
  const planned: PlannedPort[] = [
    ...(withCentral ? [{ role: 'central', port: ports.central, flag: '--central-port' }] : []),
    { role: 'node work endpoint', port: ports.work, flag: '--work-port' },
    { role: 'node miner endpoint', port: ports.miner, flag: '--miner-port' },
    ...(embeddedChain ? [{ role: 'chain (anvil)', port: chainPort, flag: '--chain-port' }] : []),
  ];
  const progress = makeProgress(values.quiet ? null : (line) => process.stdout.write(line), Date.now, coloursFor(process.stdout));
  const startedAt = Date.now();
  if (!values.quiet) process.stdout.write(`Starting the CGN local network in ${dir}…\n`);

  const children: Child[] = [];
  let chain: LocalChain | null = null;
  // One miner in the attested tier, on a software TPM, where this machine has one: central
  // registers its attestation key and the runtime; the node admits it for a verified quote.
  const attestedProblem = miners === 0 ? 'none asked for (--miners 0)' : !withCentral ? 'it needs central (--no-central)' : swtpmProblem();
  let attestedSetup: Promise<DevAttestedMiner | Error> | null = null;
  const env: NodeJS.ProcessEnv = { ...process.env, CGN_LOG_LEVEL: process.env['CGN_LOG_LEVEL'] ?? 'info' };
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    if (!values.quiet) process.stdout.write('\nstopping the local network…\n');
    // Miners first (they drain), then the node, then the settler and central. Each gets
    // STOP_GRACE_MS to stop on its own; one that does not is killed and named, so Ctrl-C always
    // ends the network.
    for (const role of ['miner', 'node', 'settle', 'central', 'swtpm']) {
      const group = children.filter((c) => c.role.startsWith(role));
      for (const c of group) c.proc.kill('SIGTERM');
      await Promise.all(group.map((c) => exitWithin(c, STOP_GRACE_MS, join(logs, `${c.role}.log`))));
    }
    // A software TPM started by a setup the failure cut short is not among the children yet.
    const pending = await attestedSetup;
    if (pending !== null && pending !== undefined && !(pending instanceof Error) && !children.some((c) => c.proc === pending.swtpm)) pending.swtpm.kill('SIGTERM');
    await chain?.stop().catch(() => undefined);
    if (!values.quiet) process.stdout.write('stopped.\n');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  try {
    let chainInfo: DevInfo['chain'] = null;
    let payees: NonNullable<DevInfo['chain']>['payees'] | null = null;
    let settle: Child | null = null;
    const cycle = values.cycle ?? '2m';
    if (!/^\d+(ms|s|m|h)$/.test(cycle)) throw new Error(`--cycle must be a duration like 30s or 5m, not "${cycle}"`);
    await checkPorts(planned);
    if (withChain) {
      // The demo account's wallet and the operator are anvil dev keys (well known: local only).
      const rpc = values['chain-rpc'];
      const key = values['chain-key'];
      if ((rpc === undefined) !== (key === undefined)) throw new Error('--chain-rpc and --chain-key go together');
      const demoKey = ANVIL_KEYS[1]!;
      // Payees are anvil dev keys too, so that their earnings can be claimed: the operator is the
      // deployer (it anchors), miners 1-6 get keys 2-7, the developer 8, the charity 9.
      const minerWallets = Array.from({ length: Math.min(miners, 6) }, (_, i) => wallet(ANVIL_KEYS[2 + i]!));
      payees = { operator: wallet(key === undefined ? ANVIL_KEYS[0]! : (key as `0x${string}`)), developer: wallet(ANVIL_KEYS[8]!), charity: wallet(ANVIL_KEYS[9]!), miners: minerWallets };
      const chainStarted = Date.now();
      let contractsStarted = chainStarted;
      chain = await progress.step('contracts', () => startLocalChain({
        ...(rpc !== undefined ? { rpcUrl: rpc, privateKey: key as `0x${string}` } : { stateDir: join(dir, 'chain'), anvil: chainPort === 0 ? {} : { port: chainPort } }),
        onChainUp: (url) => {
          progress.report('chain', chainStarted, url);
          contractsStarted = Date.now();
        },
        unbondingDelaySeconds: 60,
        fund: [
          { address: wallet(demoKey).address as `0x${string}`, amount: 1_000_000n * 10n ** 18n },
          { address: wallet(ANVIL_KEYS[7]!).address as `0x${string}`, amount: 1_000_000n * 10n ** 18n },
          ...minerWallets.map((w) => ({ address: w.address as `0x${string}`, amount: 1_000n * 10n ** 18n })),
        ],
      }).catch((err: unknown) => {
        // anvil says only that it did not answer; a port taken since the check is the likely cause.
        throw chainPort !== 0 && /anvil/i.test((err as Error).message) ? new Error(`${(err as Error).message} (is port ${chainPort} in use? start with --chain-port 0 to take any free port)`) : err;
      }), () => `deployed ${contractsStarted === chainStarted ? '' : `in ${((Date.now() - contractsStarted) / 1000).toFixed(1)} s `}(token, settlement, staking, election)`);
      if (chain.anvil !== null && chain.anvil.port !== state.chainPort) {
        state.chainPort = chain.anvil.port;
        saveDevState(dir, state);
      }
      const contractsFile = join(dir, 'chain-contracts.json');
      writeFileSync(contractsFile, addressesToJson(chain.addresses) + '\n');
      chainInfo = { rpcUrl: chain.rpcUrl, contractsFile, contracts: JSON.parse(addressesToJson(chain.addresses)) as Record<string, unknown>, demoWallet: wallet(demoKey), payees };
    }
    let central: Child | null = null;
    let centralUrl: string | null = null;
    const pkiDir = join(dir, 'pki');
    // Every public path is TLS: central's API, the work endpoint (HTTPS) and the miner endpoint
    // (WSS), with one certificate for this machine from the local CA; everything started here trusts it.
    const tls = values.plaintext ? null : devTls(pkiDir);
    if (tls !== null) {
      env['NODE_EXTRA_CA_CERTS'] = tls.caFile;
      trustCa(tls.caFile);
    }
    const tlsArgs = tls === null ? [] : ['--tls-cert', tls.certFile, '--tls-key', tls.keyFile];
    const cacert = tls === null ? '' : `--cacert ${tls.caFile} `;
    if (withCentral) {
      ensureDevPki(pkiDir, [nodeId]);
      central = startChild(
        'central',
        ['central', '--port', String(ports.central), '--data-dir', join(dir, 'central'), '--pki', pkiDir, '--ledger', join(dir, 'node', 'ledger.sqlite'), ...tlsArgs,
          // The account pages show where to deposit (the escrow) and the chain in the top-up commands.
          ...(chainInfo !== null ? ['--contracts', chainInfo.contractsFile, '--chain-rpc', chainInfo.rpcUrl] : [])],
        join(logs, 'central.log'),
        { ...env, CGN_ADMIN_PASSWORD: admin.password },
      );
      children.push(central);
    }
    // Central and the node come up side by side (central dials the node only once told of it).
    const c = central;
    const centralReady = c === null ? Promise.resolve(null) : progress.step('central', async () => (await firstJsonLine(c, 30_000, planned))['url'] as string, (url) => url);
    const node = startChild(
      'node',
      [
        'node', '--node-id', nodeId, '--data-dir', join(dir, 'node'), '--work-port', String(ports.work), '--miner-port', String(ports.miner),
        '--accept-any-miner', '--enforce-balance', '--keys', keysFile, ...dservices.flatMap((d) => ['--dservice', d]), ...tlsArgs,
        ...(withCentral ? ['--central-port', '0', '--pki', pkiDir] : []),
        ...(payees ? ['--operator-address', payees.operator.address, '--charity-address', payees.charity.address, '--developer-address', `cgn-examples=${payees.developer.address}`] : []),
      ],
      join(logs, 'node.log'),
      env,
    );
    children.push(node);
    let ready: Record<string, unknown>;
    [centralUrl, ready] = await Promise.all([centralReady, progress.step('node', () => firstJsonLine(node, 20_000, planned), (r) => `${String(r['workUrl'])}  ${String(r['minerUrl'])}`)]);
    let demoOwner: DevInfo['demoOwner'] = null;
    let demoAccountId: string | null = null;
    if (centralUrl !== null) {
      // Central registers the node (and dials it), approves the DServices and makes the demo key.
      const url = centralUrl;
      const setup = await progress.step('accounts', async () => setupDevNetwork({
        centralUrl: url,
        admin,
        nodes: [{ id: nodeId, region: 'local', lat: 0, lon: 0, urls: { work: ready['workUrl'] as string, miner: ready['minerUrl'] as string, status: ready['statusUrl'] as string, central: ready['centralLinkUrl'] as string } }],
        dservices: await Promise.all(dservices.map(async (d) => ({ descriptor: JSON.parse(readFileSync(join(d, 'dservice.json'), 'utf8')) as Record<string, unknown>, digest: await digestPackage(d) }))),
        demo: { ownerLogin: state.demoOwner.login, ownerPassword: state.demoOwner.password, ...(prev.apiKey ? { reuseKey: prev.apiKey } : {}) },
      }).catch((err: unknown) => {
        throw /^401\b/.test((err as Error).message) ? new Error(centralLoginMismatch(dir, (err as Error).message)) : err;
      }), (r) => `node registered, ${r.dservices.length} DServices approved, demo key ready`);
      apiKey = setup.demo.apiKey;
      demoAccountId = setup.demo.accountId;
      demoOwner = { login: setup.demo.ownerLogin, password: setup.demo.ownerPassword };
      const second = await setupDevNetwork({
        centralUrl: url,
        admin,
        demo: { accountName: 'demo-2', ownerLogin: state.demo2Owner.login, ownerPassword: state.demo2Owner.password, ...(prev.apiKeys?.[1] ? { reuseKey: prev.apiKeys[1] } : {}) },
      }).catch((err: unknown) => {
        process.stderr.write(`cgn dev: warning: the second demo account could not be set up (${(err as Error).message}); dev.json lists one key\n`);
        return null;
      });
      if (second !== null) {
        apiKey2 = second.demo.apiKey;
        demo2 = { account: second.demo.accountId, owner: { login: second.demo.ownerLogin, password: second.demo.ownerPassword } };
      }
      await progress.step('approvals', () => waitForApproved(ready['statusUrl'] as string, dservices.length, 30_000), () => `the node serves ${dservices.length} DServices`);
      // The attested miner's TPM and registration take seconds: they go on while the settler starts.
      if (attestedProblem === null) attestedSetup = startDevAttestedMiner({ dir, logs, centralUrl: url, admin, ownerPassword: state.attestedOwner.password }).catch((err: unknown) => err as Error);
    }
    const demoAccount = centralUrl === null ? 'demo' : demoAccountId!;
    const ledgerPath = join(dir, 'node', 'ledger.sqlite');
    if (chain === null) {
      prepaid(ledgerPath, demoAccount);
      if (apiKey2 !== null) prepaid(ledgerPath, demo2.account);
    } else {
      // The settler: credits escrow deposits, closes and anchors cycles, posts withdrawals.
      settle = startChild(
        'settle',
        ['settle', '--ledger', ledgerPath, '--rpc', chain.rpcUrl, '--contracts', chainInfo!.contractsFile, '--confirmations', chain.anvil ? '0' : '2', '--close-every', cycle, '--interval', '1s', '--cursor', join(dir, 'settle.watcher.json')],
        join(logs, 'settle.log'),
        { ...env, CGN_SETTLE_KEY: payees!.operator.privateKey },
      );
      children.push(settle);
      const s = settle;
      await progress.step('settle', () => firstJsonLine(s, 20_000, planned), () => `closes and anchors a cycle every ${cycle}`);
      const ch = chain;
      await progress.step('deposit', async () => {
        const deposited = await depositDemo(ledgerPath, demoAccount, ch, chainInfo!.demoWallet.privateKey as `0x${string}`);
        // demo-2 deposits from anvil key 7 (also the sixth miner's payout wallet, when there are six)
        const deposited2 = apiKey2 === null ? 0n : await depositDemo(ledgerPath, demo2.account, ch, ANVIL_KEYS[7]!);
        if (deposited > 0n || deposited2 > 0n) {
          await Promise.all([
            deposited > 0n ? waitForCredit(ledgerPath, demoAccount, deposited / 2n, 30_000) : null,
            deposited2 > 0n ? waitForCredit(ledgerPath, demo2.account, deposited2 / 2n, 30_000) : null,
          ]).catch((err: unknown) =>
            process.stderr.write(`cgn dev: warning: ${(err as Error).message} (work gets 402 until it is)\n`),
          );
        }
        return deposited + deposited2;
      }, (d) => (d > 0n ? 'the demo accounts deposited into the escrow, credited' : 'the demo accounts are still funded'));
    }
    const minerUrl = ready['minerUrl'] as string;
    const statusUrl = ready['statusUrl'] as string;
    // What the miners will manage (they decide alike): said plainly in the banner when it is not isolation.
    const notice = miners > 0 ? isolationNotice(await checkIsolation(values.sandbox ?? 'auto')) : '';
    const loopbackPorts = await freeLoopbackPorts(2 * (miners + 1));
    const minerMetricsPorts = loopbackPorts.slice(0, miners + 1);
    const minerControlPorts = loopbackPorts.slice(miners + 1);
    for (let i = 1; i <= miners; i++) {
      const m = startChild(
        `miner-${i}`,
        [
          'miner', '--node', minerUrl, ...(tls === null ? [] : ['--ca-file', tls.caFile]), '--key', join(dir, 'miners', `miner-${i}.pem`), '--sandbox', values.sandbox ?? 'auto', ...dservices.flatMap((d) => ['--dservice', d]),
          '--metrics-port', String(minerMetricsPorts[i - 1]), '--control-port', String(minerControlPorts[i - 1]),
          ...(payees?.miners[i - 1] ? ['--payout-address', payees.miners[i - 1]!.address] : []),
          // Its control app shows the payout address's tokens, stake and claims from the chain.
          ...(chainInfo !== null ? ['--chain-rpc', chainInfo.rpcUrl, '--contracts', chainInfo.contractsFile] : []),
        ],
        join(logs, `miner-${i}.log`),
        env,
      );
      children.push(m);
    }
    let attested: DevAttestedMiner | null = null;
    let attestedNote = attestedProblem === null ? '' : `none: ${attestedProblem}`;
    if (attestedSetup !== null) {
      const a = await attestedSetup;
      if (a instanceof Error) {
        attestedNote = `none: setting it up failed (${a.message})`;
      } else {
        attested = a;
        children.push({ role: 'swtpm', proc: attested.swtpm, exited: attested.swtpmExited });
        children.push(startChild(
          'miner-attested',
          ['miner', '--node', minerUrl, ...(tls === null ? [] : ['--ca-file', tls.caFile]), '--key', attested.keyFile, '--sandbox', values.sandbox ?? 'auto', ...dservices.flatMap((d) => ['--dservice', d]), ...attested.minerArgs, '--metrics-port', String(minerMetricsPorts[miners]), '--control-port', String(minerControlPorts[miners])],
          join(logs, 'miner-attested.log'),
          env,
        ));
        attestedNote = `miner-attested on a software TPM (swtpm ${attested.tcti}, state ${join(dir, 'tpm')}): admitted as attested for its verified quote`;
      }
    }
    for (const c of children) {
      void c.exited.then((code) => {
        if (stopping) return;
        const last = (c.tail?.() ?? []).map(readableLogLine).filter((l) => l.trim() !== '').slice(-5);
        process.stderr.write(`cgn dev: ${c.role} exited unexpectedly (code ${code}); see ${join(logs, c.role + '.log')}${last.length === 0 ? '' : `; its last log lines:\n${last.map((l) => `    ${l}`).join('\n')}`}\n`);
        if (c.role === 'node' || c.role === 'central' || c.role === 'settle') void stopAll(1);
      });
    }
    const wanted = miners + (attested !== null ? 1 : 0);
    const minerChildren = children.filter((c) => c.role.startsWith('miner'));
    await progress.step(`miners ${wanted}/${wanted}`, () => Promise.race([
      waitForMiners(statusUrl, wanted, 60_000),
      // A miner that dies on start says why now, not after the 60 s wait.
      ...minerChildren.map((c) => exitAsError(c, planned)),
    ]), () => (attested !== null ? 'one of them attested on a software TPM' : ''));

    const info: DevInfo = {
      chain: chainInfo,
      centralUrl,
      dashboardUrl: centralUrl === null ? null : `${centralUrl}/ui/`,
      admin: withCentral ? admin : null,
      demoOwner,
      workUrl: ready['workUrl'] as string,
      statusUrl,
      minerUrl,
      apiKey: apiKey!,
      apiKeys: apiKey2 === null ? [apiKey!] : [apiKey!, apiKey2],
      demoOwners: demoOwner === null ? [] : [demoOwner, ...(demo2.owner === null ? [] : [demo2.owner])],
      caFile: tls?.caFile ?? null,
      dir,
      attestedMiner: attested === null ? null : { minerId: attested.minerId, tcti: attested.tcti, keyFile: attested.keyFile, owner: attested.owner },
      attestedNote,
      pids: { dev: process.pid, central: central?.proc.pid ?? null, node: node.proc.pid!, miners: children.filter((c) => c.role.startsWith('miner')).map((c) => c.proc.pid!), settle: settle?.proc.pid ?? null, swtpm: attested?.swtpm.pid ?? null },
      logs,
      metricsUrls: {
        node: ready['metricsUrl'] as string,
        central: withCentral ? `${centralUrl}/metrics` : null,
        miners: minerMetricsPorts.slice(0, miners + (attested !== null ? 1 : 0)).map(minerMetricsUrl),
      },
      minerControlUrls: minerControlPorts.slice(0, miners + (attested !== null ? 1 : 0)).map((p) => `http://127.0.0.1:${p}/`),
      minerControlTokenFiles: [
        ...Array.from({ length: miners }, (_, i) => `${join(dir, 'miners', `miner-${i + 1}.pem`)}.control-token`),
        ...(attested !== null ? [`${attested.keyFile}.control-token`] : []),
      ],
    };
    writeFileSync(devFile, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
    if (values.quiet) {
      process.stdout.write(JSON.stringify({ event: 'ready', ...info }) + '\n');
      if (notice !== '') process.stderr.write(`cgn dev:${notice}`);
    } else {
      const sample = join(dserviceDir('mediagen'), 'examples', 'sample.jpg');
      process.stdout.write(`
CGN local network is up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${withCentral ? 'central, ' : ''}1 node, ${miners} miners (${dservices.map((d) => d.split('/').pop()).join(', ')}).
${notice}${centralUrl !== null ? `
  central          ${centralUrl}   (OpenAPI: ${centralUrl}/openapi.json; admin ${admin.login} / ${admin.password})
  dashboard        ${centralUrl}/ui/   (operators: sign in as ${admin.login} / ${admin.password}${demoOwner !== null ? `; the demo account's pages: ${demoOwner.login} / ${demoOwner.password}` : ''})` : ''}${chainInfo !== null ? `
  chain            ${chainInfo.rpcUrl}   (demo wallet ${chainInfo.demoWallet.address}, prepaid through the escrow)
                   token ${String(chainInfo.contracts['token'])}  settlement ${String(chainInfo.contracts['settlement'])}
                   staking ${String(chainInfo.contracts['staking'])}  election ${String(chainInfo.contracts['election'])}
                   cgn settle closes and anchors a billing cycle every ${cycle} (log: ${join(logs, 'settle.log')})
                   npx cgn wallet balance --rpc ${chainInfo.rpcUrl} --contracts ${chainInfo.contractsFile} --address ${chainInfo.demoWallet.address}
                   miner 1 claims its earnings: npx cgn wallet claim --ledger ${join(dir, 'node', 'ledger.sqlite')} --rpc ${chainInfo.rpcUrl} --contracts ${chainInfo.contractsFile} --key <chain.payees.miners[0].privateKey in dev.json>` : ''}
  work endpoint    ${info.workUrl}{dservice}/{path}
  status endpoint  ${info.statusUrl}
  miner endpoint   ${info.minerUrl}      (add a miner: npx cgn miner --node ${info.minerUrl}${tls === null ? '' : ` --ca-file ${tls.caFile}`})
  attested miner   ${attestedNote}
  miner control    ${info.minerControlUrls.length === 0 ? 'none (no miners)' : `${info.minerControlUrls.join('  ')}
                   (loopback only; sign in with the token in <miner key>.control-token, e.g. ${info.minerControlTokenFiles[0]})`}
  TLS              ${tls === null ? 'off (--plaintext): every endpoint listens on loopback only' : `every endpoint above is TLS from the local CA ${tls.caFile}
                   (curl --cacert it; for npx cgn commands: export NODE_EXTRA_CA_CERTS=${tls.caFile})`}
  demo API key     ${apiKey}${apiKey2 === null ? '' : `
  2nd demo key     ${apiKey2}   (another prepaid account: flood with one key, time the other; README "Fair shares")`}
  state and logs   ${dir}  (facts in ${devFile})

Resize an image to 400 px wide WebP:

  curl -sS ${cacert}-H "Authorization: Bearer ${apiKey}" --data-binary @${sample} \\
       "${info.workUrl}mediagen/transform?width=400&format=webp" -o out.webp -D -

Image metadata:

  curl -sS ${cacert}-H "Authorization: Bearer ${apiKey}" --data-binary @${sample} "${info.workUrl}mediagen/info"

Press Ctrl-C to stop.
`);
    }
  } catch (err) {
    process.stderr.write(`cgn dev: ${(err as Error).message}\n`);
    await stopAll(1);
  }
}
