/**
 * What one state directory of `cgn dev` must remember even when a start fails half way:
 * the passwords it gave central's administrator and the demo accounts' owners (central keeps
 * only their hashes, so a lost password locks the directory), and the chain's port (so its
 * JSON-RPC URL stays the same across restarts). Written to `<dir>/dev-state.json` (0600)
 * before any process starts; `dev.json` holds the facts of the last successful start.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface Credentials {
  login: string;
  password: string;
}

export interface DevState {
  admin: Credentials;
  demoOwner: Credentials;
  /** The owner of the second demo account ("demo-2"). */
  demo2Owner: Credentials;
  attestedOwner: Credentials;
  /** anvil's port; absent until a chain was first started in this directory. */
  chainPort?: number;
}

export const devStateFile = (dir: string): string => join(dir, 'dev-state.json');

const generated = (prefix: string): string => `${prefix}-${randomBytes(12).toString('base64url')}!`;

function readJson(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function credentials(v: unknown): Credentials | null {
  const c = v as Partial<Credentials> | null | undefined;
  return typeof c?.login === 'string' && typeof c.password === 'string' ? { login: c.login, password: c.password } : null;
}

/**
 * The state of `dir`: from dev-state.json, else from the dev.json of a directory made before
 * dev-state.json existed, else new passwords. Pure apart from reading the two files.
 */
export function loadDevState(dir: string): DevState {
  const s = readJson(devStateFile(dir));
  const d = readJson(join(dir, 'dev.json'));
  const attested = d['attestedMiner'] as { owner?: unknown } | null | undefined;
  const owners = Array.isArray(d['demoOwners']) ? (d['demoOwners'] as unknown[]) : [];
  const port = s['chainPort'];
  return {
    admin: credentials(s['admin']) ?? credentials(d['admin']) ?? { login: 'admin', password: generated('Cgn') },
    demoOwner: credentials(s['demoOwner']) ?? credentials(d['demoOwner']) ?? { login: 'demo-owner', password: generated('Demo') },
    demo2Owner: credentials(s['demo2Owner']) ?? credentials(owners[1]) ?? { login: 'demo-2-owner', password: generated('Demo') },
    attestedOwner: credentials(s['attestedOwner']) ?? credentials(attested?.owner) ?? { login: 'dev-miners-owner', password: generated('Rig') },
    ...(typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536 ? { chainPort: port } : {}),
  };
}

export function saveDevState(dir: string, state: DevState): void {
  writeFileSync(devStateFile(dir), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
}

/**
 * What to say when central refuses a saved password: its data was made with
 * another one (a directory from before dev-state.json, or edited by hand), and how to reset it.
 */
export function centralLoginMismatch(dir: string, detail: string): string {
  return `central's data in ${join(dir, 'central')} was made with passwords (administrator, demo owner) that are not the ones in ${devStateFile(dir)} (${detail}). ` +
    `Reset central's state and start again: rm -rf ${join(dir, 'central')} (accounts, keys and approvals are made anew; the ledger and chain are kept), or start over with rm -rf ${dir}`;
}
