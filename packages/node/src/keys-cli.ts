/**
 * `cgn node keys add|list|revoke`: the API keys of a node that runs without central, kept in its
 * keys file (`<data-dir>/api-keys.json`, or `--keys FILE`). A running node picks changes up
 * within a second; with central, keys are made at central instead (`cgn account keys`).
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { FileApiKeyStore } from './auth/api-keys.js';
import { NODE_DEFAULTS } from './options.js';

export const NODE_KEYS_USAGE = `Usage: cgn node keys <command> [--keys FILE | --data-dir DIR] [--json]

API keys of a node that runs without central (a node with --central-port takes its keys from
central: make them with cgn account keys). The file is <data-dir>/api-keys.json unless the node
runs with --keys FILE; give the same here. A running node sees changes within a second.

Commands:
  add --account NAME [--name LABEL]   make a key that bills NAME; the key is printed once
  list                                the keys: id, account, label, made, revoked
  revoke ID                           refuse the key with this id (or an unambiguous start of it)

Options:
  --keys FILE       the keys file                  (default <data-dir>/api-keys.json)
  --data-dir DIR    the node's data directory      (default ${NODE_DEFAULTS.dataDir})
  --json            machine-readable output
  -h, --help        show this help

The file is JSON, mode 0600: { "keys": [ { "id", "hash", "account", "createdAt", "name"?,
"revokedAt"? } ] }; "hash" is the SHA-256 (hex) of the key, which itself is never stored.
`;

export interface KeysIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  cwd: string;
}

const ACCOUNT = /^[A-Za-z0-9._@:-]{1,128}$/;

export function runNodeKeysFromArgs(argv: string[], io: KeysIo = { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() }): number {
  const usage = (msg: string): number => {
    io.stderr.write(`cgn node keys: ${msg}\n\n${NODE_KEYS_USAGE}`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { keys: { type: 'string' }, 'data-dir': { type: 'string' }, account: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(NODE_KEYS_USAGE);
    return 0;
  }
  if (values.keys !== undefined && values['data-dir'] !== undefined) return usage('give --keys or --data-dir, not both');
  const file = values.keys !== undefined ? resolve(io.cwd, values.keys) : join(resolve(io.cwd, values['data-dir'] ?? NODE_DEFAULTS.dataDir), 'api-keys.json');
  const [cmd, ...args] = positionals;
  try {
    const store = new FileApiKeyStore(file);
    switch (cmd) {
      case 'add': {
        if (args.length > 0) return usage(`unexpected argument "${args[0]}"`);
        if (values.account === undefined) return usage('add needs --account NAME (the account the key bills)');
        if (!ACCOUNT.test(values.account)) return usage(`--account "${values.account}": use letters, digits and . _ @ : - (at most 128)`);
        const k = store.create(values.account, values.name);
        if (values.json) io.stdout.write(JSON.stringify({ key: k.key, id: k.id, account: values.account, file }) + '\n');
        else io.stdout.write(`${k.key}\n\nkey ${k.id} for account ${values.account}, saved (hashed) in ${file}.\nThis is the only time the key is shown. Use it as: Authorization: Bearer <key>\n`);
        return 0;
      }
      case 'list': {
        if (args.length > 0) return usage(`unexpected argument "${args[0]}"`);
        const keys = store.list().map(({ hash: _hash, ...k }) => k);
        if (values.json) {
          io.stdout.write(JSON.stringify({ file, keys }) + '\n');
          return 0;
        }
        if (keys.length === 0) {
          io.stdout.write(`no keys in ${file}: make one with cgn node keys add --account NAME${values.keys ? ` --keys ${values.keys}` : ''}\n`);
          return 0;
        }
        const rows = [['ID', 'ACCOUNT', 'NAME', 'CREATED', 'REVOKED'], ...keys.map((k) => [k.id, k.account, k.name ?? '', k.createdAt, k.revokedAt ?? ''])];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        io.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n');
        return 0;
      }
      case 'revoke': {
        if (args.length !== 1) return usage('revoke takes one key ID (see cgn node keys list)');
        const k = store.revoke(args[0]!);
        if (values.json) io.stdout.write(JSON.stringify({ id: k.id, account: k.account, revokedAt: k.revokedAt }) + '\n');
        else io.stdout.write(`revoked key ${k.id} (account ${k.account}) at ${k.revokedAt}; a running node refuses it within a second\n`);
        return 0;
      }
      case undefined:
        return usage('give a command: add, list or revoke');
      default:
        return usage(`unknown command "${cmd}"`);
    }
  } catch (err) {
    io.stderr.write(`cgn node keys: ${(err as Error).message}\n`);
    return 1;
  }
}
