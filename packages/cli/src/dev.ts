/**
 * `cgn dev` (what `npm start` runs): the whole local network on this machine. It starts a node
 * and several miner processes (each running MediaGen and echo in sandboxes), creates a demo API
 * key, writes the facts to `<dir>/dev.json` and prints how to send work. Ctrl-C stops it all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { FileApiKeyStore } from '@cgn/node';
import { ensureDevPki, issueCert, setupDevNetwork } from '@cgn/central';
import { rootCertificates } from 'node:tls';
import { Agent, setGlobalDispatcher } from 'undici';
import { digestPackage } from '@cgn/miner';
import { SqliteLedgerStore } from '@cgn/ledger';
import { ANVIL_KEYS, addressesToJson, asAccount, startLocalChain, type LocalChain } from '@cgn/chain';
import { privateKeyToAccount } from 'viem/accounts';
import { CGN_BIN, REPO_ROOT, dserviceDir } from './paths.js';
import { serverNodeArgs } from './server-flags.js';
import { startDevAttestedMiner, swtpmProblem, type DevAttestedMiner } from './dev-attested.js';
import { checkIsolation, isolationNotice } from './isolation-notice.js';

export const DEV_USAGE = `Usage: cgn dev [options]   (npm start runs this)

Starts a local CGN network: the Central Service (accounts, keys, approvals; it dials the node
over mutual TLS with a local CA), one node, several miners running the MediaGen and echo
DServices, and the embedded ledger (SQLite under the state directory). Prints the endpoints, a
demo API key and a ready-to-paste curl; writes the same facts to <dir>/dev.json. Ctrl-C stops
everything.

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
  --cycle DURATION    close and anchor a billing cycle this often, e.g. 30s, 5m (default 2m)
  --plaintext         no TLS (every endpoint listens on loopback only; for benchmarks)
  --quiet             print only the ready JSON line
  -h, --help          show this help
`;

export interface DevInfo {
  /** Central's HTTP API (OpenAPI at /openapi.json); null with --no-central. */
  centralUrl: string | null;
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
}

interface Wallet {
  address: string;
  privateKey: string;
}

function wallet(privateKey: `0x${string}`): Wallet {
  return { address: privateKeyToAccount(privateKey).address, privateKey };
}

interface Child {
  role: string;
  proc: ChildProcess;
  exited: Promise<number | null>;
}

function startChild(role: string, args: string[], logFile: string, env: NodeJS.ProcessEnv): Child {
  const proc = spawn(process.execPath, [...serverNodeArgs(), CGN_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: REPO_ROOT });
  const log = createWriteStream(logFile, { flags: 'a' });
  proc.stderr!.pipe(log);
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { role, proc, exited };
}

/** How long a process of the local network may take to stop after SIGTERM before it is killed. */
const STOP_GRACE_MS = 10_000;

/** Waits for a signalled child to exit; after `graceMs`, says so and SIGKILLs it. */
async function exitWithin(child: Child, graceMs: number, logFile: string): Promise<void> {
  const timer = setTimeout(() => {
    process.stderr.write(`cgn dev: ${child.role} (pid ${child.proc.pid}) did not stop within ${graceMs / 1000} s of SIGTERM; killing it (its log: ${logFile})\n`);
    child.proc.kill('SIGKILL');
  }, graceMs);
  await child.exited;
  clearTimeout(timer);
}

function firstJsonLine(child: Child, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const rl = createInterface({ input: child.proc.stdout! });
    const timer = setTimeout(() => reject(new Error(`${child.role} did not become ready within ${timeoutMs} ms`)), timeoutMs);
    rl.on('line', (line) => {
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        clearTimeout(timer);
        resolvePromise(j);
      } catch {
        /* not JSON: ignore */
      }
    });
    void child.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${child.role} exited with code ${code} before it was ready`));
    });
  });
}

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
  for (;;) {
    try {
      const s = (await (await fetch(statusUrl)).json()) as { miners: unknown[] };
      if (s.miners.length >= n) return;
    } catch {
      /* node not answering yet */
    }
    if (Date.now() > until) throw new Error(`only some of the ${n} miners joined within ${timeoutMs} ms; see the logs`);
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
        dservice: { type: 'string', multiple: true }, sandbox: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        'central-port': { type: 'string' }, 'no-central': { type: 'boolean' },
        'chain-rpc': { type: 'string' }, 'chain-key': { type: 'string' }, 'no-chain': { type: 'boolean' }, cycle: { type: 'string' }, plaintext: { type: 'boolean' },
      },
    }));
  } catch (err) {
    process.stderr.write(`cgn dev: ${(err as Error).message}\n\n${DEV_USAGE}`);
    process.exit(2);
  }
  if (values.help) return void process.stdout.write(DEV_USAGE);
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
  if (!withCentral) {
    const keyStore = new FileApiKeyStore(keysFile);
    if (prev.apiKey !== undefined && keyStore.verify(prev.apiKey) !== null) apiKey = prev.apiKey;
    apiKey ??= keyStore.create('demo').key;
  }
  const admin = prev.admin ?? { login: 'admin', password: `Cgn-${randomBytes(12).toString('base64url')}!` };
  const nodeId = 'node-local-1';

  const children: Child[] = [];
  let chain: LocalChain | null = null;
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
    if (!values['no-chain']) {
      // The demo account's wallet and the operator are anvil dev keys (well known: local only).
      const rpc = values['chain-rpc'];
      const key = values['chain-key'];
      if ((rpc === undefined) !== (key === undefined)) throw new Error('--chain-rpc and --chain-key go together');
      const demoKey = ANVIL_KEYS[1]!;
      // Payees are anvil dev keys too, so that their earnings can be claimed: the operator is the
      // deployer (it anchors), miners 1-6 get keys 2-7, the developer 8, the charity 9.
      const minerWallets = Array.from({ length: Math.min(miners, 6) }, (_, i) => wallet(ANVIL_KEYS[2 + i]!));
      payees = { operator: wallet(key === undefined ? ANVIL_KEYS[0]! : (key as `0x${string}`)), developer: wallet(ANVIL_KEYS[8]!), charity: wallet(ANVIL_KEYS[9]!), miners: minerWallets };
      chain = await startLocalChain({
        ...(rpc !== undefined ? { rpcUrl: rpc, privateKey: key as `0x${string}` } : { stateDir: join(dir, 'chain') }),
        unbondingDelaySeconds: 60,
        fund: [
          { address: wallet(demoKey).address as `0x${string}`, amount: 1_000_000n * 10n ** 18n },
          ...minerWallets.map((w) => ({ address: w.address as `0x${string}`, amount: 1_000n * 10n ** 18n })),
        ],
      });
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
        ['central', '--port', values['central-port'] ?? '7700', '--data-dir', join(dir, 'central'), '--pki', pkiDir, '--ledger', join(dir, 'node', 'ledger.sqlite'), ...tlsArgs],
        join(logs, 'central.log'),
        { ...env, CGN_ADMIN_PASSWORD: admin.password },
      );
      children.push(central);
      centralUrl = (await firstJsonLine(central, 30_000))['url'] as string;
    }
    const node = startChild(
      'node',
      [
        'node', '--node-id', nodeId, '--data-dir', join(dir, 'node'), '--work-port', values['work-port'] ?? '8080', '--miner-port', values['miner-port'] ?? '8081',
        '--accept-any-miner', '--enforce-balance', '--keys', keysFile, ...dservices.flatMap((d) => ['--dservice', d]), ...tlsArgs,
        ...(withCentral ? ['--central-port', '0', '--pki', pkiDir] : []),
        ...(payees ? ['--operator-address', payees.operator.address, '--charity-address', payees.charity.address, '--developer-address', `cgn-examples=${payees.developer.address}`] : []),
      ],
      join(logs, 'node.log'),
      env,
    );
    children.push(node);
    const ready = await firstJsonLine(node, 20_000);
    let demoOwner: DevInfo['demoOwner'] = null;
    let demoAccountId: string | null = null;
    if (centralUrl !== null) {
      // Central registers the node (and dials it), approves the DServices and makes the demo key.
      const setup = await setupDevNetwork({
        centralUrl,
        admin,
        nodes: [{ id: nodeId, region: 'local', lat: 0, lon: 0, urls: { work: ready['workUrl'] as string, miner: ready['minerUrl'] as string, status: ready['statusUrl'] as string, central: ready['centralLinkUrl'] as string } }],
        dservices: await Promise.all(dservices.map(async (d) => ({ descriptor: JSON.parse(readFileSync(join(d, 'dservice.json'), 'utf8')) as Record<string, unknown>, digest: await digestPackage(d) }))),
        demo: { ...(prev.demoOwner ? { ownerPassword: prev.demoOwner.password } : {}), ...(prev.apiKey ? { reuseKey: prev.apiKey } : {}) },
      });
      apiKey = setup.demo.apiKey;
      demoAccountId = setup.demo.accountId;
      demoOwner = { login: setup.demo.ownerLogin, password: setup.demo.ownerPassword };
      await waitForApproved(ready['statusUrl'] as string, dservices.length, 30_000);
    }
    const demoAccount = centralUrl === null ? 'demo' : demoAccountId!;
    const ledgerPath = join(dir, 'node', 'ledger.sqlite');
    if (chain === null) {
      prepaid(ledgerPath, demoAccount);
    } else {
      // The settler: credits escrow deposits, closes and anchors cycles, posts withdrawals.
      settle = startChild(
        'settle',
        ['settle', '--ledger', ledgerPath, '--rpc', chain.rpcUrl, '--contracts', chainInfo!.contractsFile, '--confirmations', chain.anvil ? '0' : '2', '--close-every', cycle, '--interval', '1s', '--cursor', join(dir, 'settle.watcher.json')],
        join(logs, 'settle.log'),
        { ...env, CGN_SETTLE_KEY: payees!.operator.privateKey },
      );
      children.push(settle);
      await firstJsonLine(settle, 20_000);
      const deposited = await depositDemo(ledgerPath, demoAccount, chain, chainInfo!.demoWallet.privateKey as `0x${string}`);
      if (deposited > 0n) {
        await waitForCredit(ledgerPath, demoAccount, deposited / 2n, 30_000).catch((err: unknown) =>
          process.stderr.write(`cgn dev: warning: ${(err as Error).message} (work gets 402 until it is)\n`),
        );
      }
    }
    const minerUrl = ready['minerUrl'] as string;
    const statusUrl = ready['statusUrl'] as string;
    // What the miners will manage (they decide alike): said plainly in the banner when it is not isolation.
    const notice = miners > 0 ? isolationNotice(await checkIsolation(values.sandbox ?? 'auto')) : '';
    for (let i = 1; i <= miners; i++) {
      const m = startChild(
        `miner-${i}`,
        [
          'miner', '--node', minerUrl, ...(tls === null ? [] : ['--ca-file', tls.caFile]), '--key', join(dir, 'miners', `miner-${i}.pem`), '--sandbox', values.sandbox ?? 'auto', ...dservices.flatMap((d) => ['--dservice', d]),
          ...(payees?.miners[i - 1] ? ['--payout-address', payees.miners[i - 1]!.address] : []),
        ],
        join(logs, `miner-${i}.log`),
        env,
      );
      children.push(m);
    }
    // One miner in the attested tier, on a software TPM, where this machine has one: central
    // registers its attestation key and the runtime; the node admits it for a verified quote.
    const attestedProblem = miners === 0 ? 'none asked for (--miners 0)' : !withCentral ? 'it needs central (--no-central)' : swtpmProblem();
    let attested: DevAttestedMiner | null = null;
    let attestedNote = attestedProblem === null ? '' : `none: ${attestedProblem}`;
    if (attestedProblem === null) {
      try {
        attested = await startDevAttestedMiner({ dir, logs, centralUrl: centralUrl!, admin, ...(prev.attestedMiner ? { ownerPassword: prev.attestedMiner.owner.password } : {}) });
        children.push({ role: 'swtpm', proc: attested.swtpm, exited: attested.swtpmExited });
        children.push(startChild(
          'miner-attested',
          ['miner', '--node', minerUrl, ...(tls === null ? [] : ['--ca-file', tls.caFile]), '--key', attested.keyFile, '--sandbox', values.sandbox ?? 'auto', ...dservices.flatMap((d) => ['--dservice', d]), ...attested.minerArgs],
          join(logs, 'miner-attested.log'),
          env,
        ));
        attestedNote = `miner-attested on a software TPM (swtpm ${attested.tcti}, state ${join(dir, 'tpm')}): admitted as attested for its verified quote`;
      } catch (err) {
        attestedNote = `none: setting it up failed (${(err as Error).message})`;
      }
    }
    for (const c of children) {
      void c.exited.then((code) => {
        if (stopping) return;
        process.stderr.write(`cgn dev: ${c.role} exited unexpectedly (code ${code}); see ${join(logs, c.role + '.log')}\n`);
        if (c.role === 'node' || c.role === 'central' || c.role === 'settle') void stopAll(1);
      });
    }
    await waitForMiners(statusUrl, miners + (attested !== null ? 1 : 0), 60_000);

    const info: DevInfo = {
      chain: chainInfo,
      centralUrl,
      admin: withCentral ? admin : null,
      demoOwner,
      workUrl: ready['workUrl'] as string,
      statusUrl,
      minerUrl,
      apiKey: apiKey!,
      caFile: tls?.caFile ?? null,
      dir,
      attestedMiner: attested === null ? null : { minerId: attested.minerId, tcti: attested.tcti, keyFile: attested.keyFile, owner: attested.owner },
      attestedNote,
      pids: { dev: process.pid, central: central?.proc.pid ?? null, node: node.proc.pid!, miners: children.filter((c) => c.role.startsWith('miner')).map((c) => c.proc.pid!), settle: settle?.proc.pid ?? null, swtpm: attested?.swtpm.pid ?? null },
      logs,
    };
    writeFileSync(devFile, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
    if (values.quiet) {
      process.stdout.write(JSON.stringify({ event: 'ready', ...info }) + '\n');
      if (notice !== '') process.stderr.write(`cgn dev:${notice}`);
    } else {
      const sample = join(dserviceDir('mediagen'), 'examples', 'sample.jpg');
      process.stdout.write(`
CGN local network is up: ${withCentral ? 'central, ' : ''}1 node, ${miners} miners (${dservices.map((d) => d.split('/').pop()).join(', ')}).
${notice}${centralUrl !== null ? `
  central          ${centralUrl}   (OpenAPI: ${centralUrl}/openapi.json; admin ${admin.login} / ${admin.password})` : ''}${chainInfo !== null ? `
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
  TLS              ${tls === null ? 'off (--plaintext): every endpoint listens on loopback only' : `every endpoint above is TLS from the local CA ${tls.caFile}
                   (curl --cacert it; for npx cgn commands: export NODE_EXTRA_CA_CERTS=${tls.caFile})`}
  demo API key     ${apiKey}
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
