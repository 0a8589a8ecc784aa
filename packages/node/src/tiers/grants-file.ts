/**
 * A node's own grants, for nodes without central (and tests): a JSON file
 *
 *   { "miners": { "<miner id>": { "tier": "dedicated", "attestationKey": "-----BEGIN PUBLIC KEY-----..." } },
 *     "attestation": { "runtimes": ["<sha256 hex>"], "dservices": { "echo": "<sha256 hex>" } } }
 *
 * `miners` admits those keys with their grant; `attestation` is the allow-list of known-good
 * measurements (with central, central's allow-list and approved digests are used instead).
 */
import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import type { LocalMinerGrant } from './grants.js';

export interface NodeGrants {
  miners: Record<string, LocalMinerGrant>;
  attestation: { runtimes: string[]; dservices: Record<string, string> };
}

export const NO_GRANTS: NodeGrants = { miners: {}, attestation: { runtimes: [], dservices: {} } };

const HEX64 = /^[0-9a-f]{64}$/;
const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

/** Checks a grants value; throws an Error naming the wrong entry. */
export function parseGrants(x: unknown, where = 'grants'): NodeGrants {
  if (!isObj(x)) throw new Error(`${where}: must be a JSON object with "miners" and/or "attestation"`);
  const miners: Record<string, LocalMinerGrant> = {};
  const m = x['miners'] ?? {};
  if (!isObj(m)) throw new Error(`${where}: "miners" must be an object keyed by miner id`);
  for (const [id, g] of Object.entries(m)) {
    if (!HEX64.test(id)) throw new Error(`${where}: miners key "${id.slice(0, 80)}" is not a miner id (64 lower-case hex)`);
    if (!isObj(g)) throw new Error(`${where}: miners.${id.slice(0, 16)}… must be an object`);
    const tier = g['tier'] ?? 'open';
    if (tier !== 'open' && tier !== 'dedicated') throw new Error(`${where}: miners.${id.slice(0, 16)}….tier must be open or dedicated (attested is granted per verified quote)`);
    const entry: LocalMinerGrant = { tier };
    const ak = g['attestationKey'];
    if (ak !== undefined) {
      try {
        if (typeof ak !== 'string') throw new Error('not a string');
        createPublicKey(ak);
      } catch {
        throw new Error(`${where}: miners.${id.slice(0, 16)}….attestationKey must be a PEM public key`);
      }
      entry.attestationKey = ak;
    }
    miners[id] = entry;
  }
  const a = x['attestation'] ?? {};
  if (!isObj(a)) throw new Error(`${where}: "attestation" must be an object`);
  const runtimes = a['runtimes'] ?? [];
  if (!Array.isArray(runtimes) || !runtimes.every((d) => typeof d === 'string' && HEX64.test(d))) throw new Error(`${where}: attestation.runtimes must be a list of sha256 hex digests`);
  const ds = a['dservices'] ?? {};
  if (!isObj(ds) || !Object.values(ds).every((d) => typeof d === 'string' && HEX64.test(d))) throw new Error(`${where}: attestation.dservices must map DService names to sha256 hex digests`);
  return { miners, attestation: { runtimes: runtimes as string[], dservices: ds as Record<string, string> } };
}

export function readGrantsFile(file: string): NodeGrants {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`grants file ${file}: ${(err as Error).message}`);
  }
  return parseGrants(raw, `grants file ${file}`);
}
