/**
 * `cgn central add-node`: everything central's side does to add a node. It issues the node's
 * certificate for the mutual-TLS central link from the network's CA, puts what the node needs
 * (the CA certificate, its certificate and key; never the CA's key) in a directory of its own,
 * adds the node to central's directory (central then dials it), and prints the node's flags.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { ensureNodePki } from '../pki.js';
import { NODE_ID_PATTERN, REGION_PATTERN } from '../registry/descriptors.js';
import { COMMON_HELP, CommandError, UsageError, finish, parse, print, processIo, run, sessionApi, type CliIo } from './common.js';

export const ADD_NODE_USAGE = `Usage: cgn central add-node --id ID --host HOST [options]

Adds a node to the network (administrators and operators, logged in with cgn account login):
  1. issues the node's certificate for the central link (CN node:ID, for HOST) from the CA in --pki;
  2. writes ca.crt, node-ID.crt and node-ID.key to --out, for the node's --pki (not the CA's key);
  3. registers the node in central's directory with its URLs; central then dials it over mutual TLS;
  4. prints the flags to start the node with.

Options:
  --id ID              the node's id (letters, digits, . _ -)
  --host HOST          the name or IP address central, DApps and miners reach the node at
  --work-port PORT     its work and status port                 (default 8080)
  --miner-port PORT    its miner port                           (default 8081)
  --link-port PORT     the port it listens on for central's link (its --central-port; default 7443)
  --region REGION      its region, e.g. eu-central              (default local)
  --lat DEG --lon DEG  where it is, for picking the nearest node (default 0 0)
  --operator ACCOUNT   the account that operates it             (default: yours)
  --pki DIR            central's certificate directory, with the network CA (default .cgn/pki)
  --out DIR            where to put the node's certificate files (default ./node-ID-pki)
${COMMON_HELP}`;

const OPTIONS = {
  id: { type: 'string' }, host: { type: 'string' }, 'work-port': { type: 'string' }, 'miner-port': { type: 'string' }, 'link-port': { type: 'string' },
  region: { type: 'string' }, lat: { type: 'string' }, lon: { type: 'string' }, operator: { type: 'string' }, pki: { type: 'string' }, out: { type: 'string' },
} as const;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

function port(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) throw new UsageError(`${flag} must be a port from 1 to 65535, not "${v}"`);
  return n;
}

function degrees(v: string | undefined, flag: string, max: number): number {
  if (v === undefined) return 0;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || Math.abs(n) > max) throw new UsageError(`${flag} must be a number from -${max} to ${max}, not "${v}"`);
  return n;
}

/** The node's URLs in central's directory, from its host and ports. */
export function nodeUrls(host: string, ports: { work: number; miner: number; link: number }): { work: string; miner: string; status: string; central: string } {
  const h = isIP(host) === 6 ? `[${host}]` : host;
  return { work: `https://${h}:${ports.work}/v1/d/`, status: `https://${h}:${ports.work}/v1/status`, miner: `wss://${h}:${ports.miner}`, central: `wss://${h}:${ports.link}` };
}

export async function runCentralAddNodeFromArgs(argv: string[], io?: CliIo): Promise<number> {
  const cio = io ?? processIo();
  const code = await run('cgn central add-node', ADD_NODE_USAGE, cio, async () => {
    const { values, positionals } = parse(argv, OPTIONS);
    if (values.help) return void cio.stdout.write(ADD_NODE_USAGE);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const id = values.id;
    if (id === undefined || !new RegExp(NODE_ID_PATTERN).test(id)) throw new UsageError('--id is required: letters, digits, . _ - (at most 64)');
    const host = values.host;
    if (host === undefined || !(isIP(host) || /^[A-Za-z0-9.-]{1,253}$/.test(host))) throw new UsageError('--host is required: the DNS name or IP address the node is reached at');
    const region = values.region ?? 'local';
    if (!new RegExp(REGION_PATTERN).test(region)) throw new UsageError(`--region "${region}": lowercase letters, digits and - (at most 32)`);
    const ports = { work: port(values['work-port'], '--work-port', 8080), miner: port(values['miner-port'], '--miner-port', 8081), link: port(values['link-port'], '--link-port', 7443) };
    const lat = degrees(values.lat, '--lat', 90);
    const lon = degrees(values.lon, '--lon', 180);
    const pki = resolve(cio.cwd, values.pki ?? '.cgn/pki');
    if (!existsSync(join(pki, 'ca.crt')) || !existsSync(join(pki, 'ca.key'))) {
      throw new UsageError(`no network CA in ${pki} (ca.crt and ca.key): point --pki at central's certificate directory (cgn central --pki DIR --make-pki makes one)`);
    }
    const out = resolve(cio.cwd, values.out ?? `node-${id}-pki`);

    // Who operates it and whether the caller may add nodes are central's answers: ask before issuing anything.
    const centralApi = sessionApi(values, cio);
    const operator = values.operator ?? ((await centralApi.call('GET', '/v1/me')).account.id as string);
    const known = (await centralApi.call('GET', '/v1/nodes')).nodes as { id: string }[];
    if (known.some((n) => n.id === id)) throw new CommandError(`node ${id} is in central's directory already: choose another --id (or change its entry with PATCH /v1/nodes/${id})`);

    const hosts = LOOPBACK.has(host) ? [...LOOPBACK] : [host];
    ensureNodePki(pki, id, hosts);
    const name = `node-${id}`;
    if (out !== pki) {
      mkdirSync(out, { recursive: true, mode: 0o700 });
      copyFileSync(join(pki, 'ca.crt'), join(out, 'ca.crt'));
      copyFileSync(join(pki, `${name}.crt`), join(out, `${name}.crt`));
      copyFileSync(join(pki, `${name}.key`), join(out, `${name}.key`));
      // The node's private key belongs with the node only.
      rmSync(join(pki, `${name}.key`));
    }
    const urls = nodeUrls(host, ports);
    const node = await centralApi.call('POST', '/v1/nodes', { id, operatorAccount: operator, region, lat, lon, urls });
    const loopback = LOOPBACK.has(host);
    const flags = [
      'cgn node', `--node-id ${id}`, `--central-port ${ports.link}`, `--pki ${out}`, `--work-port ${ports.work}`, `--miner-port ${ports.miner}`,
      ...(loopback ? [] : ['--host 0.0.0.0', '--tls-cert FILE --tls-key FILE']),
    ].join(' ');
    print(cio, values.json, { node, pki: out, files: ['ca.crt', `${name}.crt`, `${name}.key`], flags }, `added node ${id} (${region}, operated by ${operator}); central dials it at ${urls.central}.

Its certificate for the central link (CN node:${id}, for ${hosts.join(', ')}) is in ${out}:
  ca.crt  ${name}.crt  ${name}.key (private: keep it with the node only)
${out === pki ? '' : `Copy that directory to the node's machine, then start the node with:\n`}
  ${flags}
${loopback ? '' : `
(--tls-cert/--tls-key: the node's public certificate for ${host}, for DApps and miners.)`}`);
  });
  return finish(code, io !== undefined);
}
