/** `cgn central`: runs the Central Service until SIGINT/SIGTERM. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { startCentral, type CentralOptions, type RunningCentral } from '../central.js';
import { passwordProblems } from '../auth/passwords.js';
import { defaultCommonPasswords, loadCommonPasswords } from '../auth/common-passwords.js';
import { ensureCentralPki } from '../pki.js';
import { postgresLedger, sqliteLedger } from '../billing.js';
import { UsageError, processIo, type CliIo } from './common.js';
import { runCentralAddNodeFromArgs } from './add-node.js';
import { isExplorerTxUrl } from '../ops/routes.js';
import { plaintextProblem } from '@cgn/protocol';

export const CENTRAL_USAGE = `Usage: cgn central [options]
       cgn central add-node --id ID --host HOST ...   add a node: its link certificate, its
                                                      directory entry (cgn central add-node --help)

Runs the Central Service: accounts, credentials, API keys, OAuth2 tokens, DService and node
registries, node selection and the audit log, over HTTP (OpenAPI at /openapi.json). It dials
every node of its directory over WebSocket with mutual TLS (it accepts no inbound link).

Options:
  --host HOST              interface to listen on                 (default 127.0.0.1)
  --port PORT              HTTP port, 0 = any free                (default 7700)
  --data-dir DIR           SQLite database directory              (default .cgn/central)
  --postgres URL           keep the data in PostgreSQL instead (postgres://user@host:5432/db);
                           the password may come from PGPASSWORD rather than the URL
  --postgres-schema NAME   PostgreSQL schema for central's tables (default cgn_central)
  --ledger PATH            the node's SQLite ledger (ledger.sqlite) to serve usage, invoices and
                           earnings from; opened read-only on first use (it may not exist yet)
  --ledger-postgres URL    ... or a PostgreSQL ledger (postgres://user@host:5432/db)
  --ledger-schema NAME     its schema                              (default cgn_ledger)
                           (without a ledger, the usage/invoice/earnings routes answer 503)
  --pki DIR                network certificates: ca.crt, central.crt, central.key
                                                                  (default .cgn/pki)
  --make-pki               create a local CA and central's certificate in --pki if missing
                           (development networks; production uses the network's CA)
  --no-link                do not dial nodes (HTTP API only)
  --admin-login NAME       first administrator, created if there are no users (default admin);
                           password from CGN_ADMIN_PASSWORD, else generated and printed once
  --geoip FILE             GeoIP CSV (start_ip,end_ip,lat,lon,region[,label]); default: the shipped table
  --password-list FILE     more common passwords to refuse (one a line), besides the shipped breached list
  --token-ttl SECONDS      access token lifetime                  (default 300)
  --issuer NAME            token issuer                           (default cgn-central)
  --status-interval MS     how often to ask nodes for status      (default 5000)
  --trust-proxy            take client addresses from X-Forwarded-For (behind your own proxy only)
  --tls-cert FILE          serve the API over HTTPS with this certificate (PEM) ...
  --tls-key FILE           ... and this key (PEM; both reloaded when the files change)
  --plaintext              plain HTTP on a non-loopback --host: only behind a TLS-terminating proxy
                           (without TLS flags central listens on loopback only)
  --metrics-token TOKEN    GET /metrics (Prometheus) needs Authorization: Bearer TOKEN
                           (or CGN_METRICS_TOKEN; default: open, it holds no account data)
  --explorer-tx-url URL    the dashboard links anchor transactions to a block explorer:
                           URL with {tx} where the hash goes (default: hashes shown as text)
  --node-metrics-token T   the token the nodes' GET /metrics needs (their --metrics-token), so the
                           dashboard has latency (or CGN_NODE_METRICS_TOKEN; default: none)
  --contracts FILE         the chain deployment's contracts file (chainId, token, settlement): the
                           account pages show its escrow as where to deposit (cgn dev writes one)
  --chain-rpc URL          the chain's JSON-RPC URL, shown in the account pages' top-up commands
  -h, --help               show this help

Prints one JSON line {"event":"ready","url":...} when it is up.
`;

export async function runCentralFromArgs(argv: string[], io?: CliIo): Promise<RunningCentral | null> {
  if (argv[0] === 'add-node') {
    await runCentralAddNodeFromArgs(argv.slice(1), io);
    return null;
  }
  const cio = io ?? processIo();
  const fail = (code: number, msg: string): null => {
    cio.stderr.write(`cgn central: ${msg}\n${code === 2 ? `\n${CENTRAL_USAGE}` : ''}`);
    if (io === undefined) process.exitCode = code;
    return null;
  };
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: 'string' }, port: { type: 'string' }, 'data-dir': { type: 'string' }, ledger: { type: 'string' }, 'ledger-postgres': { type: 'string' }, 'ledger-schema': { type: 'string' }, postgres: { type: 'string' }, 'postgres-schema': { type: 'string' }, pki: { type: 'string' }, 'make-pki': { type: 'boolean' },
        'no-link': { type: 'boolean' }, 'admin-login': { type: 'string' }, geoip: { type: 'string' }, 'password-list': { type: 'string' },
        'token-ttl': { type: 'string' }, issuer: { type: 'string' }, 'status-interval': { type: 'string' }, 'trust-proxy': { type: 'boolean' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, plaintext: { type: 'boolean' }, 'metrics-token': { type: 'string' }, 'explorer-tx-url': { type: 'string' }, 'node-metrics-token': { type: 'string' }, contracts: { type: 'string' }, 'chain-rpc': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    return fail(2, (err as Error).message);
  }
  if (values.help) {
    cio.stdout.write(CENTRAL_USAGE);
    return null;
  }
  const int = (v: string | undefined, name: string, min: number, max: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${v}"`);
    return n;
  };
  const options: CentralOptions = {};
  let generatedPassword: string | null = null;
  try {
    options.host = values.host ?? '127.0.0.1';
    options.port = int(values.port, 'port', 0, 65535) ?? 7700;
    if (values.postgres !== undefined) {
      if (values['data-dir'] !== undefined) throw new UsageError('--postgres and --data-dir do not go together (the data is in one or the other)');
      if (!/^postgres(ql)?:\/\//.test(values.postgres)) throw new UsageError('--postgres must be a URL like postgres://user@host:5432/db');
      const schema = values['postgres-schema'];
      if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new UsageError('--postgres-schema must be a lowercase SQL identifier');
      options.postgres = { url: values.postgres, ...(schema === undefined ? {} : { schema }) };
    } else {
      if (values['postgres-schema'] !== undefined) throw new UsageError('--postgres-schema needs --postgres');
      options.dataDir = resolve(cio.cwd, values['data-dir'] ?? '.cgn/central');
    }
    if (values.ledger !== undefined && values['ledger-postgres'] !== undefined) throw new UsageError('use either --ledger or --ledger-postgres, not both');
    if (values['ledger-schema'] !== undefined && values['ledger-postgres'] === undefined) throw new UsageError('--ledger-schema goes with --ledger-postgres');
    if (values.ledger !== undefined) options.ledger = sqliteLedger(resolve(cio.cwd, values.ledger));
    if (values['ledger-postgres'] !== undefined) {
      if (!/^postgres(ql)?:\/\//.test(values['ledger-postgres'])) throw new UsageError('--ledger-postgres must be a URL like postgres://user@host:5432/db');
      const schema = values['ledger-schema'];
      options.ledger = postgresLedger({ url: values['ledger-postgres'], ...(schema === undefined ? {} : { schema }) });
    }
    const ttl = int(values['token-ttl'], 'token-ttl', 30, 24 * 3600);
    options.tokens = { ...(ttl === undefined ? {} : { ttlS: ttl }), ...(values.issuer === undefined ? {} : { issuer: values.issuer }) };
    if (values.geoip !== undefined) {
      const f = resolve(cio.cwd, values.geoip);
      if (!existsSync(f)) throw new UsageError(`--geoip: no file ${f}`);
      options.geoipFile = f;
    }
    if (values['password-list'] !== undefined) {
      const f = resolve(cio.cwd, values['password-list']);
      if (!existsSync(f)) throw new UsageError(`--password-list: no file ${f}`);
      options.service = { commonPasswords: new Set([...defaultCommonPasswords(), ...loadCommonPasswords(f)]) };
    }
    if (values['trust-proxy']) options.http = { trustProxy: true };
    const metricsToken = values['metrics-token'] ?? cio.env?.['CGN_METRICS_TOKEN'];
    if (metricsToken !== undefined && metricsToken !== '') options.http = { ...options.http, metricsToken };
    if (values.contracts !== undefined || values['chain-rpc'] !== undefined) {
      const rpc = values['chain-rpc'];
      if (rpc !== undefined && !/^(https?|wss?):\/\/[^\s]+$/.test(rpc)) throw new UsageError(`--chain-rpc must be an http(s) or ws(s) URL, got "${rpc.slice(0, 200)}"`);
      const cf = values.contracts === undefined ? undefined : resolve(cio.cwd, values.contracts);
      if (cf !== undefined && !existsSync(cf)) throw new UsageError(`--contracts: no file ${cf}`);
      options.http = { ...options.http, accountPages: { ...(cf === undefined ? {} : { contractsFile: cf }), ...(rpc === undefined ? {} : { rpcUrl: rpc }) } };
    }
    const explorer = values['explorer-tx-url'];
    if (explorer !== undefined) {
      if (!isExplorerTxUrl(explorer)) throw new UsageError(`--explorer-tx-url must be an http(s) URL with {tx} where the transaction hash goes, e.g. https://etherscan.io/tx/{tx}; got "${explorer.slice(0, 200)}"`);
      options.ops = { explorerTxUrl: explorer };
    }
    const nodeMetricsToken = values['node-metrics-token'] ?? cio.env?.['CGN_NODE_METRICS_TOKEN'];
    if (nodeMetricsToken !== undefined && nodeMetricsToken !== '') options.ops = { ...(options.ops || {}), metricsToken: nodeMetricsToken };
    if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
    if (values['tls-cert'] !== undefined) {
      if (values.plaintext) throw new UsageError('--plaintext and --tls-cert contradict each other: choose one');
      const cf = resolve(cio.cwd, values['tls-cert']);
      const kf = resolve(cio.cwd, values['tls-key']!);
      for (const f of [cf, kf]) if (!existsSync(f)) throw new UsageError(`no file ${f}`);
      options.tls = { certFile: cf, keyFile: kf };
    } else {
      const refusal = plaintextProblem(options.host ?? '127.0.0.1', values.plaintext === true, "central's API", '--tls-cert FILE --tls-key FILE');
      if (refusal !== null) throw new UsageError(refusal);
    }
    const login = values['admin-login'] ?? 'admin';
    let password = cio.env['CGN_ADMIN_PASSWORD'];
    if (password === undefined || password === '') {
      password = `Cgn-${randomBytes(12).toString('base64url')}!`;
      generatedPassword = password;
    } else {
      const problems = passwordProblems(password, { login });
      if (problems.length > 0) throw new UsageError(`CGN_ADMIN_PASSWORD: password ${problems.join('; ')}`);
    }
    options.bootstrapAdmin = { login, password };
    if (!values['no-link']) {
      const dir = resolve(cio.cwd, values.pki ?? '.cgn/pki');
      const have = ['ca.crt', 'central.crt', 'central.key'].every((f) => existsSync(join(dir, f)));
      if (!have && !values['make-pki']) {
        throw new UsageError(`no certificates in ${dir} (ca.crt, central.crt, central.key): pass --make-pki to create a local CA (development), point --pki at the network's, or use --no-link`);
      }
      const p = ensureCentralPki(dir);
      const si = int(values['status-interval'], 'status-interval', 100, 3_600_000);
      options.link = { tls: { key: p.central.key, cert: p.central.cert, ca: p.ca.cert }, ...(si === undefined ? {} : { statusIntervalMs: si }) };
    }
  } catch (err) {
    return fail(err instanceof UsageError ? 2 : 1, (err as Error).message);
  }
  const log = pino({ name: 'cgn-central', level: cio.env['CGN_LOG_LEVEL'] ?? 'info', base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
  options.log = log;
  let central: RunningCentral;
  try {
    central = await startCentral(options);
  } catch (err) {
    return fail(1, (err as Error).message);
  }
  const ready: Record<string, unknown> = { event: 'ready', url: central.url, openapi: `${central.url}/openapi.json`, pid: process.pid, link: central.links !== null, ledger: options.ledger === undefined ? null : (options.ledger as { description?: string }).description ?? 'given' };
  // A generated password is shown once: only by the run that created the administrator.
  if (generatedPassword !== null && central.adminCreated) ready['admin'] = { login: options.bootstrapAdmin!.login, password: generatedPassword };
  cio.stdout.write(JSON.stringify(ready) + '\n');
  if (io === undefined) {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'shutting down');
      central.stop().then(
        () => log.flush(() => process.exit(0)),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  }
  return central;
}
