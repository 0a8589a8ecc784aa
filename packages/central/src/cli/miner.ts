/** `cgn miner register`: registers a miner's public key with central. */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { importMinerKey, minerIdOf } from '@cgn/protocol';
import { COMMON_HELP, UsageError, finish, parse, print, processIo, run, sessionApi, type CliIo } from './common.js';

export const MINER_REGISTER_USAGE = `Usage: cgn miner register (--key FILE | --public-key HEX) --name NAME [--tier TIER]

Registers a miner's key with the Central Service (miner operator accounts), so nodes let it join.
The key file is the miner's PEM key (as "cgn miner --key FILE" uses); only its public half is sent.

Options:
  --key FILE         the miner's key file
  --public-key HEX   or the miner id (64 hex characters) directly
  --name NAME        a name for this miner
  --tier TIER        open (default), attested or dedicated
${COMMON_HELP}`;

const OPTIONS = { key: { type: 'string' }, 'public-key': { type: 'string' }, name: { type: 'string' }, tier: { type: 'string' } } as const;

export async function runMinerRegisterFromArgs(argv: string[], io?: CliIo): Promise<number> {
  const cio = io ?? processIo();
  const code = await run('cgn miner register', MINER_REGISTER_USAGE, cio, async () => {
    const { values, positionals } = parse(argv, OPTIONS);
    if (values.help) return void cio.stdout.write(MINER_REGISTER_USAGE);
    const args = positionals[0] === 'register' ? positionals.slice(1) : positionals;
    if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
    if ((values.key === undefined) === (values['public-key'] === undefined)) throw new UsageError('give --key FILE or --public-key HEX');
    if (values.name === undefined) throw new UsageError('--name is required');
    if (values.tier !== undefined && !['open', 'attested', 'dedicated'].includes(values.tier)) throw new UsageError('--tier must be open, attested or dedicated');
    let publicKey: string;
    if (values.key !== undefined) {
      const file = resolve(cio.cwd, values.key);
      if (!existsSync(file)) throw new UsageError(`no key file at ${file}`);
      try {
        publicKey = minerIdOf(importMinerKey(readFileSync(file, 'utf8')).publicKey);
      } catch (err) {
        throw new UsageError(`${file}: ${(err as Error).message}`);
      }
    } else {
      publicKey = values['public-key']!.toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(publicKey)) throw new UsageError('--public-key must be 64 hex characters');
    }
    const r = await sessionApi(values, cio).call('POST', '/v1/miners', { publicKey, name: values.name, ...(values.tier ? { tier: values.tier } : {}) });
    print(cio, values.json, r, `registered miner ${r.name} (${r.tier}) with id ${r.id}`);
  });
  return finish(code, io !== undefined);
}
