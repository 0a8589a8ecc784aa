/** `cgn miner register` (an owner registers a miner key) and `cgn miner grant` (staff grant a tier). */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { importMinerKey, minerIdOf } from '@cgn/protocol';
import { COMMON_HELP, UsageError, finish, parse, print, processIo, run, sessionApi, type CliIo } from './common.js';

export const MINER_REGISTER_USAGE = `Usage: cgn miner register (--key FILE | --public-key HEX) --name NAME [--attestation-key PEM]

Registers a miner's key with the Central Service (owners of miner operator accounts), so nodes let
it join in the open tier. The key file is the miner's PEM key (as "cgn miner --key FILE" uses); only
its public half is sent. Tiers are granted, never claimed: dedicated by CGN staff (cgn miner grant),
attested by a node for each verified TPM quote against the attestation key registered here.

Options:
  --key FILE             the miner's key file
  --public-key HEX       or the miner id (64 hex characters) directly
  --name NAME            a name for this miner
  --attestation-key PEM  the public key of the miner's TPM attestation key (cgn miner --tpm ... prints
                         where it wrote it: <key dir>/attestation-key.pem)
${COMMON_HELP}`;

export const MINER_GRANT_USAGE = `Usage: cgn miner grant --public-key HEX --tier open|dedicated

Grants a registered miner the dedicated tier (an operator under contract), or takes it back to open.
Staff only (administrator, operator); audited. Nodes see it at the miner's next admission.

Options:
  --public-key HEX   the miner id (64 hex characters)
  --tier TIER        dedicated or open
${COMMON_HELP}`;

const OPTIONS = { key: { type: 'string' }, 'public-key': { type: 'string' }, name: { type: 'string' }, tier: { type: 'string' }, 'attestation-key': { type: 'string' } } as const;

export async function runMinerRegisterFromArgs(argv: string[], io?: CliIo): Promise<number> {
  const cio = io ?? processIo();
  const code = await run('cgn miner register', MINER_REGISTER_USAGE, cio, async () => {
    const { values, positionals } = parse(argv, OPTIONS);
    if (values.help) return void cio.stdout.write(MINER_REGISTER_USAGE);
    const args = positionals[0] === 'register' ? positionals.slice(1) : positionals;
    if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
    if ((values.key === undefined) === (values['public-key'] === undefined)) throw new UsageError('give --key FILE or --public-key HEX');
    if (values.name === undefined) throw new UsageError('--name is required');
    if (values.tier !== undefined) throw new UsageError('--tier is not registered by owners: miners start open; staff grant dedicated (cgn miner grant), nodes grant attested for a verified TPM quote');
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
    let attestationKey: string | undefined;
    if (values['attestation-key'] !== undefined) {
      const file = resolve(cio.cwd, values['attestation-key']);
      if (!existsSync(file)) throw new UsageError(`no attestation key file at ${file}`);
      attestationKey = readFileSync(file, 'utf8');
    }
    const r = await sessionApi(values, cio).call('POST', '/v1/miners', { publicKey, name: values.name, ...(attestationKey !== undefined ? { attestationKey } : {}) });
    print(cio, values.json, r, `registered miner ${r.name} (${r.tier}${r.attestationKey ? ', with an attestation key' : ''}) with id ${r.id}`);
  });
  return finish(code, io !== undefined);
}

export async function runMinerGrantFromArgs(argv: string[], io?: CliIo): Promise<number> {
  const cio = io ?? processIo();
  const code = await run('cgn miner grant', MINER_GRANT_USAGE, cio, async () => {
    const { values, positionals } = parse(argv, OPTIONS);
    if (values.help) return void cio.stdout.write(MINER_GRANT_USAGE);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const id = (values['public-key'] ?? '').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(id)) throw new UsageError('--public-key must be 64 hex characters');
    if (values.tier !== 'open' && values.tier !== 'dedicated') throw new UsageError('--tier must be dedicated or open (attested is granted by nodes for a verified TPM quote)');
    const r = await sessionApi(values, cio).call('PUT', `/v1/miners/${id}/tier`, { tier: values.tier });
    print(cio, values.json, r, `miner ${r.name} (${r.id}) is granted ${r.tier}`);
  });
  return finish(code, io !== undefined);
}
