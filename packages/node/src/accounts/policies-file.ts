/**
 * `cgn node --accounts FILE`: accounts' weights, quotas and data regions for a node without central,
 * as JSON `{"defaults": {"weight": 1, "maxConcurrent": 100}, "byAccount": {"acme": {"weight": 2,
 * "perSecond": 50, "regions": ["eu"]}}}` (`regions`: where the account's work may run; null: anywhere).
 * Every entry is checked here, so a mistake stops the start naming the file and the field.
 */
import { readFileSync } from 'node:fs';
import { AccountPolicyError, DEFAULT_ACCOUNT_POLICY, parseAccountPolicy, type AccountPolicyInput } from './policies.js';

export function readAccountsFile(path: string): { defaults: AccountPolicyInput; byAccount: Record<string, AccountPolicyInput> } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new AccountPolicyError(`--accounts ${path}: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new AccountPolicyError(`--accounts ${path}: must be an object {"defaults": {...}, "byAccount": {"<account>": {...}}}`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'defaults' && k !== 'byAccount') throw new AccountPolicyError(`--accounts ${path}: "${k}" is not a field (defaults, byAccount)`);
  const defaults = parseAccountPolicy(o['defaults'] ?? {}, `${path}: defaults`, DEFAULT_ACCOUNT_POLICY);
  const byAccount = (o['byAccount'] ?? {}) as Record<string, unknown>;
  if (byAccount === null || typeof byAccount !== 'object' || Array.isArray(byAccount)) throw new AccountPolicyError(`${path}: byAccount must be an object of account -> policy`);
  for (const [a, p] of Object.entries(byAccount)) parseAccountPolicy(p, `${path}: byAccount.${a}`, defaults);
  return { defaults, byAccount: byAccount as Record<string, AccountPolicyInput> };
}
