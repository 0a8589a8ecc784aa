/**
 * Contract build: compiles `packages/chain/contracts/*.sol` with solc-js (the `solc` npm package,
 * no compiler download) through standard JSON, resolving `@openzeppelin/...` imports from
 * `node_modules` with an import callback, and writes
 *
 *   artifacts/contracts.json          ABI + creation bytecode of every contract, and the source hash
 *   src/generated/<contract>.ts       `xxxAbi` (`as const`, typed for viem) and `xxxBytecode`
 *   src/generated/index.ts            re-exports, and `SOURCE_HASH`
 *
 * The outputs are committed, so a fresh clone builds (`tsc -b`) and tests without compiling. When a
 * contract changes, run `npm run build:contracts -w @cgn/chain` (or `node packages/chain/dist/build.js`);
 * `build.test.ts` fails while the committed outputs are stale. Compilation is skipped when
 * `artifacts/contracts.json` already has the current source hash.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** packages/chain (this file is src/build.ts or dist/build.js). */
export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CONTRACTS_DIR = path.join(PACKAGE_DIR, 'contracts');
export const ARTIFACTS_FILE = path.join(PACKAGE_DIR, 'artifacts', 'contracts.json');
export const GENERATED_DIR = path.join(PACKAGE_DIR, 'src', 'generated');

export const CONTRACT_NAMES = ['CgnToken', 'Settlement', 'Staking', 'ValidatorElection'] as const;
export type ContractName = (typeof CONTRACT_NAMES)[number];

/** Compiler settings. `cancun` runs on anvil and on every current public EVM chain. */
export const SOLC_SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
} as const;

export interface CompiledContract {
  abi: unknown[];
  bytecode: `0x${string}`;
}

export interface Artifacts {
  sourceHash: string;
  solcVersion: string;
  contracts: Record<ContractName, CompiledContract>;
}

function packageVersion(name: string): string {
  return (JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
}

function ozDir(): string {
  return path.dirname(require.resolve('@openzeppelin/contracts/package.json'));
}

function contractFiles(): string[] {
  return fs.readdirSync(CONTRACTS_DIR).filter((f) => f.endsWith('.sol')).sort();
}

/** Hash of everything the artifacts depend on: solc and OpenZeppelin versions, settings, sources. */
export function sourceHash(): string {
  const h = crypto.createHash('sha256');
  h.update(`solc ${packageVersion('solc')}\0oz ${packageVersion('@openzeppelin/contracts')}\0${JSON.stringify(SOLC_SETTINGS)}\0`);
  for (const f of contractFiles()) h.update(`${f}\0`).update(fs.readFileSync(path.join(CONTRACTS_DIR, f))).update('\0');
  return h.digest('hex');
}

/** Import callback: `@openzeppelin/contracts/...` from node_modules, other names from contracts/. */
export function findImport(name: string): { contents: string } | { error: string } {
  try {
    if (name.includes('..')) return { error: `refusing import path ${name}` };
    const prefix = '@openzeppelin/contracts/';
    const file = name.startsWith(prefix) ? path.join(ozDir(), name.slice(prefix.length)) : path.join(CONTRACTS_DIR, name);
    return { contents: fs.readFileSync(file, 'utf8') };
  } catch (err) {
    return { error: `cannot read ${name}: ${(err as Error).message}` };
  }
}

interface SolcOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts?: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>;
}

/** Compiles the contracts now (a few seconds of CPU). */
export async function compile(): Promise<Artifacts> {
  const solc = (await import('solc')).default;
  const sources: Record<string, { content: string }> = {};
  for (const f of contractFiles()) sources[f] = { content: fs.readFileSync(path.join(CONTRACTS_DIR, f), 'utf8') };
  const input = { language: 'Solidity', sources, settings: SOLC_SETTINGS };
  const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }) as string) as SolcOutput;
  const errors = (out.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const contracts = {} as Record<ContractName, CompiledContract>;
  for (const name of CONTRACT_NAMES) {
    const c = out.contracts?.[`${name}.sol`]?.[name];
    if (!c) throw new Error(`solc output has no ${name}`);
    contracts[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
  }
  return { sourceHash: sourceHash(), solcVersion: String(solc.version()), contracts };
}

export function readArtifacts(): Artifacts | null {
  try {
    return JSON.parse(fs.readFileSync(ARTIFACTS_FILE, 'utf8')) as Artifacts;
  } catch {
    return null;
  }
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** The generated TS modules, by file name. */
export function generatedModules(a: Artifacts): Map<string, string> {
  const files = new Map<string, string>();
  const header = `// Generated by packages/chain/src/build.ts from contracts/ (solc ${a.solcVersion}). Do not edit.\n`;
  for (const name of CONTRACT_NAMES) {
    const c = a.contracts[name];
    const v = lowerFirst(name);
    files.set(
      `${name}.ts`,
      `${header}\nexport const ${v}Abi = ${JSON.stringify(c.abi, null, 2)} as const;\n\nexport const ${v}Bytecode = '${c.bytecode}' as const;\n`,
    );
  }
  files.set(
    'index.ts',
    `${header}\nexport const SOURCE_HASH = '${a.sourceHash}';\nexport const SOLC_VERSION = '${a.solcVersion}';\n\n` +
      CONTRACT_NAMES.map((n) => `export { ${lowerFirst(n)}Abi, ${lowerFirst(n)}Bytecode } from './${n}.js';\n`).join(''),
  );
  return files;
}

/** Compiles if the artifacts are stale (or `force`), and writes artifacts and generated modules. */
export async function build(opts: { force?: boolean } = {}): Promise<{ compiled: boolean; artifacts: Artifacts }> {
  const current = readArtifacts();
  const hash = sourceHash();
  let artifacts = current;
  let compiled = false;
  if (opts.force || !artifacts || artifacts.sourceHash !== hash) {
    artifacts = await compile();
    compiled = true;
    fs.mkdirSync(path.dirname(ARTIFACTS_FILE), { recursive: true });
    fs.writeFileSync(ARTIFACTS_FILE, `${JSON.stringify(artifacts)}\n`);
  }
  fs.mkdirSync(GENERATED_DIR, { recursive: true });
  for (const [file, text] of generatedModules(artifacts)) {
    const p = path.join(GENERATED_DIR, file);
    if (!fs.existsSync(p) || fs.readFileSync(p, 'utf8') !== text) fs.writeFileSync(p, text);
  }
  return { compiled, artifacts };
}

const invokedAsScript = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsScript) {
  const force = process.argv.includes('--force');
  build({ force }).then(
    ({ compiled, artifacts }) => {
      console.log(`${compiled ? 'compiled' : 'up to date'}: ${CONTRACT_NAMES.join(', ')} (solc ${artifacts.solcVersion}, ${artifacts.sourceHash.slice(0, 12)})`);
    },
    (err: unknown) => {
      console.error((err as Error).message);
      process.exitCode = 1;
    },
  );
}
