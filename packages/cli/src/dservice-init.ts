/**
 * `cgn dservice init NAME [--dir DIR]`: a new DService package a miner can run as it is, with the
 * SDK linked in from this checkout the way `npm install` links a `file:` dependency.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDescriptor } from '@cgn/protocol';
import { REPO_ROOT } from './paths.js';
import { dserviceTemplate } from './dservice-template.js';

export const DSERVICE_INIT_USAGE = `Usage: cgn dservice init NAME [--dir DIR] [--json]

Creates a working DService in DIR (default ./NAME): package.json (depending on @cgn/sdk),
dservice.json, handler.js (what it answers), server.js (serves it with the SDK), a test
(npm test) and a README. A miner runs it as it is: cgn miner --node URL --dservice DIR.

NAME is the {dservice} in /v1/d/{dservice}/...: a lowercase letter, then lowercase letters,
digits or '-' (at most 63 in all).

  --json    print {"name", "dir", "files"} instead of the next steps
`;

export class InitError extends Error {
  readonly code = 'DSERVICE_INIT';
}

/** Writes the package; returns the files written (relative to `dir`). Refuses a non-empty `dir`. */
export function initDService(name: string, dir: string, repoRoot = REPO_ROOT): string[] {
  try {
    parseDescriptor({ name, version: '0.1.0', entry: 'server.js' }, 'NAME');
  } catch {
    throw new InitError(`"${name}" cannot be a DService name: use a lowercase letter, then lowercase letters, digits or '-' (at most 63), e.g. "thumbnails"`);
  }
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new InitError(`${dir} exists and is not empty: choose another --dir`);
  const sdk = join(repoRoot, 'packages', 'sdk');
  const toSdk = relative(dir, sdk);
  const files = dserviceTemplate({
    name,
    sdkSpec: `file:${toSdk}`,
    schemaPath: relative(dir, join(repoRoot, 'packages', 'protocol', 'dservice.schema.json')),
  });
  for (const [rel, content] of Object.entries(files)) {
    const file = join(dir, rel);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
  // What `npm install` would make of the file: dependency (a relative link, so the package and
  // the checkout may move together); a miner's sandbox follows it to the SDK.
  mkdirSync(join(dir, 'node_modules', '@cgn'), { recursive: true });
  symlinkSync(relative(join(dir, 'node_modules', '@cgn'), sdk), join(dir, 'node_modules', '@cgn', 'sdk'));
  return [...Object.keys(files), 'node_modules/@cgn/sdk'];
}

export async function runDServiceInitFromArgs(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { dir: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`cgn dservice init: ${(err as Error).message}\n\n${DSERVICE_INIT_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(DSERVICE_INIT_USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    process.stderr.write(`cgn dservice init: give one NAME\n\n${DSERVICE_INIT_USAGE}`);
    return 2;
  }
  const name = parsed.positionals[0]!;
  const dir = resolve(parsed.values.dir ?? name);
  try {
    const files = initDService(name, dir);
    if (parsed.values.json) {
      process.stdout.write(JSON.stringify({ name, dir, files }, null, 2) + '\n');
      return 0;
    }
    const rel = relative(process.cwd(), dir);
    const shown = rel === '' ? '.' : rel.startsWith('..') ? dir : rel;
    process.stdout.write(`Created the DService "${name}" in ${dir}:
${files.map((f) => `  ${f}`).join('\n')}

Next:
  cd ${shown} && npm test                  # its tests: the handler, directly and over HTTP
  PORT=8000 npm start                      # on its own: curl 'http://127.0.0.1:8000/hello?name=Ada'
  npx cgn miner --node URL --dservice ${shown}      # offer it from a miner
  npx cgn dservice register --dir ${shown}          # register it at central; an administrator approves it
`);
    return 0;
  } catch (err) {
    process.stderr.write(`cgn dservice init: ${(err as Error).message}\n`);
    return err instanceof InitError ? 2 : 1;
  }
}
