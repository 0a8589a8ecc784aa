/**
 * One account id, one miner id: what a person types on the command line (an account's id or its
 * name; a miner's short 16-hex id from its log, its full 64-hex id, or any unambiguous prefix)
 * resolved to the id the ledger keys on. An unknown or ambiguous one is a `CgnError` that names
 * what exists, never an empty table. Pure: the CLI gathers what is known (from the ledger, and
 * from central when one is configured) and asks here.
 */
import { CgnError } from '@cgn/protocol';

export interface AccountRef {
  id: string;
  /** The name central knows it by, when central was asked. */
  name?: string;
}

/** Central's account ids: `acc_` and 16 base64url characters (`newId('acc')`). */
export const CENTRAL_ACCOUNT_ID = /^acc_[A-Za-z0-9_-]{16}$/;

const LIST_MAX = 12;

function listed(xs: readonly string[]): string {
  if (xs.length === 0) return '(none yet)';
  const shown = xs.slice(0, LIST_MAX).join(', ');
  return xs.length > LIST_MAX ? `${shown}, … (${xs.length} in all)` : shown;
}

function describeAccount(a: AccountRef): string {
  return a.name !== undefined && a.name !== a.id ? `${a.id} (${a.name})` : a.id;
}

/**
 * The account `given` names among `known`: its id, its name (case-insensitive), or an unambiguous
 * prefix of its id. `where` says where `known` came from, for the error.
 */
export function resolveAccount(given: string, known: readonly AccountRef[], where: string): string {
  const byId = known.find((a) => a.id === given);
  if (byId !== undefined) return byId.id;
  const byName = known.filter((a) => a.name !== undefined && a.name.toLowerCase() === given.toLowerCase());
  if (byName.length === 1) return byName[0]!.id;
  if (byName.length > 1) throw new CgnError('bad_request', `"${given}" is the name of several accounts ${where}: ${listed(byName.map(describeAccount))}; give the id`);
  const byPrefix = known.filter((a) => a.id.startsWith(given));
  if (byPrefix.length === 1) return byPrefix[0]!.id;
  if (byPrefix.length > 1) throw new CgnError('bad_request', `"${given}" is the start of several account ids ${where}: ${listed(byPrefix.map(describeAccount))}; give more of it`);
  throw new CgnError('not_found', `no account "${given}" ${where}; accounts: ${listed(known.map(describeAccount))}`);
}

const HEX = /^[0-9a-fA-F]+$/;

/**
 * The miner `given` names among `known` (64-hex ids): the full id, or a hex prefix of it (the
 * 16-digit id miners log is one) that only one known miner has. `allowUnknown`: a full id not
 * (yet) known is taken as given (registering an address before the miner's first work).
 */
export function resolveMiner(given: string, known: readonly string[], where: string, options: { allowUnknown?: boolean } = {}): string {
  const g = given.toLowerCase().replace(/^0x/, '');
  if (!HEX.test(g) || g.length > 64) throw new CgnError('bad_request', `"${given}" is not a miner id: miner ids are hex (64 digits, or the first 16 the miner logs, or any unambiguous start)`);
  const ids = [...new Set(known.map((k) => k.toLowerCase()))].sort();
  const hits = ids.filter((k) => k.startsWith(g));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new CgnError('bad_request', `"${given}" is the start of several miner ids ${where}: ${listed(hits.map((h) => h.slice(0, 16)))}; give more of it`);
  if (g.length === 64 && options.allowUnknown === true) return g;
  throw new CgnError('not_found', `no miner "${given}" ${where}; miners: ${listed(ids.map((k) => k.slice(0, 16)))}`);
}

/** A beneficiary id (a developer, operator or charity: names and account ids) by exact value or unambiguous prefix. */
export function resolveBeneficiary(given: string, known: readonly string[], what: string, where: string): string {
  const ids = [...new Set(known)].sort();
  if (ids.includes(given)) return given;
  const hits = ids.filter((k) => k.startsWith(given));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new CgnError('bad_request', `"${given}" is the start of several ${what} ids ${where}: ${listed(hits)}; give more of it`);
  throw new CgnError('not_found', `no ${what} "${given}" ${where}; ${what}s: ${listed(ids)}`);
}
