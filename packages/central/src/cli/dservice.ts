/** `cgn dservice register|approve|list`. */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DSERVICE_SCHEMA_FILE, parseDescriptor, type DescriptorPrices } from '@cgn/protocol';
import { formatPrice, parseTierPrice, type PriceMicros } from './price-format.js';
import { COMMON_HELP, CommandError, UsageError, finish, parse, print, processIo, run, sessionApi, table, type CliIo } from './common.js';

export const DSERVICE_USAGE = `Usage: cgn dservice <command> [options]

DService descriptors at the Central Service. Nodes route only to approved DServices; miners run
only DServices whose package digest matches the registered one.

Commands:
  register --dir DIR | --file dservice.json --digest HEX
                          register a DService version (developer accounts); it waits for approval.
                          With --dir, the descriptor is DIR/dservice.json and the digest is
                          computed from the package the way miners compute it.
      [--price-request µUSD] [--price-cpu-second µUSD] [--price-mb µUSD]   (1 µUSD = 0.000001 USD)
      [--price-tier TIER=REQUEST/CPU_SECOND/MB]...  another schedule for one tier (open,
                              attested, dedicated), e.g. attested=200/2000/20. Nodes charge these
                              prices once the version is approved; without any, a node's default.
                              dservice.json's "prices" (same fields) are sent too; a flag overrides
      [--developer ACCOUNT]   (administrators registering for a developer)
      [--payout-address 0x...] where the developer's share is paid (sets the developer
                              account's payout address, as cgn account payout-address does);
                              without one it is held until one is given
  publish --dir DIR       register the version (as register --dir, same price and payout flags)
                          and upload its package: a gzip'd tar of exactly the files the digest
                          covers (no node_modules, tests or source maps; at most 64 MiB), so
                          nodes can place it on miners that were not started with it. Central
                          checks the archive's digest against the registered one. Publishing a
                          version registered before uploads its package (same digest only).
  approve NAME@VERSION [--reject] [--reason TEXT]
                          approve (or reject) a DService version (administrators)
  list [--state pending|approved|rejected]

${COMMON_HELP}`;

const OPTIONS = {
  dir: { type: 'string' }, file: { type: 'string' }, digest: { type: 'string' }, developer: { type: 'string' },
  'price-request': { type: 'string' }, 'price-tier': { type: 'string', multiple: true }, 'price-cpu-second': { type: 'string' }, 'price-mb': { type: 'string' },
  reject: { type: 'boolean' }, reason: { type: 'string' }, state: { type: 'string' }, 'payout-address': { type: 'string' },
} as const;

export interface DServiceCliDeps {
  /** The miner's package digest (`digestPackage` from @cgn/miner). */
  digestPackage?: (dir: string) => Promise<string>;
  /** Packs a package directory (`packToBuffer` from @cgn/miner). */
  packPackage?: (dir: string) => Promise<PackedPackage>;
}

interface PackedPackage {
  digest: string;
  sizeBytes: number;
  files: number;
  unpackedBytes: number;
  archive: Buffer;
}

async function defaultPack(dir: string): Promise<PackedPackage> {
  const spec = '@cgn/miner';
  let m: { packToBuffer?: (d: string) => Promise<PackedPackage> };
  try {
    m = (await import(spec)) as typeof m;
  } catch {
    throw new UsageError('cannot pack the package here (@cgn/miner is not installed)');
  }
  if (typeof m.packToBuffer !== 'function') throw new UsageError('cannot pack the package here (@cgn/miner has no packToBuffer)');
  return m.packToBuffer(dir);
}

const mib = (n: number): string => `${(n / (1024 * 1024)).toFixed(n < 1024 * 1024 ? 3 : 1)} MiB`;

async function defaultDigest(dir: string): Promise<string> {
  // @cgn/miner owns the digest algorithm; central does not depend on it, so load it lazily.
  const spec = '@cgn/miner';
  try {
    const m = (await import(spec)) as { digestPackage?: (d: string) => Promise<string> };
    if (typeof m.digestPackage === 'function') return m.digestPackage(dir);
  } catch {
    /* fall through */
  }
  throw new UsageError('cannot compute the package digest here (@cgn/miner is not installed); pass --file and --digest');
}

const micros = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a whole number of µUSD (1 µUSD = 0.000001 USD), 0 or more`);
  return n;
};

export async function runDServiceFromArgs(argv: string[], io?: CliIo, deps: DServiceCliDeps = {}): Promise<number> {
  const cio = io ?? processIo();
  const code = await run('cgn dservice', DSERVICE_USAGE, cio, async () => {
    const { values, positionals } = parse(argv, OPTIONS);
    if (values.help) return void cio.stdout.write(DSERVICE_USAGE);
    const [cmd, ...args] = positionals;
    switch (cmd) {
      case 'publish':
      case 'register': {
        if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
        const publish = cmd === 'publish';
        if (publish && (values.dir === undefined || values.file !== undefined || values.digest !== undefined)) throw new UsageError('publish takes --dir DIR (the package directory); the digest is computed from it');
        if ((values.dir === undefined) === (values.file === undefined)) throw new UsageError('give --dir DIR, or --file FILE with --digest HEX');
        const file = values.dir !== undefined ? join(resolve(cio.cwd, values.dir), 'dservice.json') : resolve(cio.cwd, values.file!);
        if (!existsSync(file)) throw new UsageError(`no descriptor at ${file}`);
        let desc: Record<string, unknown>;
        try {
          desc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
        } catch (err) {
          throw new UsageError(`${file}: ${(err as Error).message}`);
        }
        // The whole file against dservice.json's schema first: central sees only the fields sent.
        let fromFile: DescriptorPrices | undefined;
        try {
          fromFile = parseDescriptor(desc, file).prices;
        } catch (err) {
          throw new UsageError(`${(err as Error).message} (the schema: ${DSERVICE_SCHEMA_FILE})`);
        }
        let digest = values.digest;
        let packed: PackedPackage | null = null;
        if (publish) {
          const dir = resolve(cio.cwd, values.dir!);
          cio.stderr.write(`packing ${dir} ...\n`);
          packed = await (deps.packPackage ?? defaultPack)(dir);
          cio.stderr.write(`packed ${packed.files} files (${mib(packed.unpackedBytes)}) into ${mib(packed.sizeBytes)}; digest ${packed.digest}\n`);
          digest = packed.digest;
        }
        if (digest === undefined) {
          if (values.dir === undefined) throw new UsageError('--digest is required with --file');
          digest = await (deps.digestPackage ?? defaultDigest)(resolve(cio.cwd, values.dir));
        }
        // The file's prices, each overridden by its flag.
        const { tiers: fileTiers, ...fileBase } = fromFile ?? {};
        const price: Record<string, number> = { ...fileBase };
        const pr = micros(values['price-request'], '--price-request');
        const pc = micros(values['price-cpu-second'], '--price-cpu-second');
        const pm = micros(values['price-mb'], '--price-mb');
        if (pr !== undefined) price['perRequestMicros'] = pr;
        if (pc !== undefined) price['perCpuSecondMicros'] = pc;
        if (pm !== undefined) price['perMbMicros'] = pm;
        const tiers = { ...fileTiers, ...Object.fromEntries((values['price-tier'] ?? []).map(parseTierPrice)) };
        if (Object.keys(tiers).length > 0) (price as Record<string, unknown>)['tiers'] = tiers;
        const body: Record<string, unknown> = { digest };
        for (const k of ['name', 'version', 'entry', 'deterministic', 'resources', 'maxBodyBytes', 'concurrency', 'timeouts'] as const) {
          if (desc[k] !== undefined) body[k] = desc[k];
        }
        if (Object.keys(price).length > 0) body['price'] = price;
        if (values.developer !== undefined) body['developer'] = values.developer;
        const payTo = values['payout-address'];
        if (payTo !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(payTo)) throw new UsageError(`--payout-address "${payTo}" is not an EVM address (0x and 40 hex digits); make one with cgn wallet new`);
        const a = sessionApi(values, cio);
        let r: any;
        try {
          r = await a.call('POST', '/v1/dservices', body);
          if (publish) cio.stderr.write(`registered ${r.name}@${r.version}\n`);
        } catch (err) {
          // Publishing again uploads the package of a version registered before (same digest).
          if (!publish || !/^409\b/.test((err as Error).message)) throw err;
          r = await a.call('GET', `/v1/dservices/${encodeURIComponent(String(desc['name']))}/${encodeURIComponent(String(desc['version']))}`).catch(() => null);
          if (r === null) throw err;
          if (r.digest !== digest) throw new CommandError(`${r.name}@${r.version} is registered with digest ${r.digest}, but this package's digest is ${digest}: give the changed package a new version in dservice.json`);
          cio.stderr.write(`${r.name}@${r.version} was registered before with this digest; uploading its package\n`);
        }
        let paid = '';
        if (payTo !== undefined) {
          await a.call('PUT', `/v1/accounts/${encodeURIComponent(r.developer as string)}/payout-address`, { address: payTo });
          paid = `; the developer share is paid to ${payTo.toLowerCase()}`;
        } else {
          const dev = await a.call('GET', `/v1/accounts/${encodeURIComponent(r.developer as string)}`).catch(() => null);
          if (dev !== null && !dev.payoutAddress) paid = '; WARNING: the developer account has no payout address, so its share is held (not paid) until it sets one: cgn account payout-address 0x... (or --payout-address here)';
        }
        if (packed !== null) {
          cio.stderr.write(`uploading ${mib(packed.sizeBytes)} to ${a.url} ...\n`);
          const up = await a.call('PUT', `/v1/dservices/${encodeURIComponent(r.name as string)}/${encodeURIComponent(r.version as string)}/package`, packed.archive);
          const next = r.state === 'approved' ? 'nodes can place it on miners now' : r.state === 'pending' ? 'an administrator must approve it (cgn dservice approve NAME@VERSION) before nodes place it' : 'it was rejected: nodes will not place it';
          print(cio, values.json, { ...r, package: { digest: up.digest, sizeBytes: up.sizeBytes, files: up.files } },
            `published ${r.name}@${r.version}\n  digest   ${up.digest}\n  package  ${up.sizeBytes} bytes (${packed.files} files)\n  state    ${r.state}: ${next}${paid}`);
          return;
        }
        print(cio, values.json, r, `registered ${r.name}@${r.version} (digest ${r.digest}); state ${r.state}: an administrator must approve it${paid}`);
        return;
      }
      case 'approve': {
        if (args.length !== 1) throw new UsageError('approve takes NAME@VERSION');
        const m = /^([a-z][a-z0-9-]{0,62})@(.+)$/.exec(args[0]!);
        if (m === null) throw new UsageError(`"${args[0]}" is not NAME@VERSION`);
        const r = await sessionApi(values, cio).call('PUT', `/v1/dservices/${m[1]}/${encodeURIComponent(m[2]!)}/approval`, {
          state: values.reject ? 'rejected' : 'approved', ...(values.reason ? { reason: values.reason } : {}),
        });
        print(cio, values.json, r, `${r.name}@${r.version}: ${r.state}`);
        return;
      }
      case 'list': {
        if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
        if (values.state !== undefined && !['pending', 'approved', 'rejected'].includes(values.state)) throw new UsageError('--state must be pending, approved or rejected');
        const r = await sessionApi(values, cio).call('GET', `/v1/dservices${values.state ? `?state=${values.state}` : ''}`);
        const rows = (r.dservices as Record<string, unknown>[]).map((d) => ({
          ...d, 'price (µUSD)': formatPrice(d.price as PriceMicros | null),
          package: d.package === null || d.package === undefined ? 'none' : `${(d.package as { sizeBytes: number }).sizeBytes} B`,
        }));
        print(cio, values.json, r, table(rows, ['name', 'version', 'state', 'developer', 'digest', 'deterministic', 'price (µUSD)', 'package']));
        return;
      }
      case undefined:
        throw new UsageError('which command?');
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  });
  return finish(code, io !== undefined);
}
