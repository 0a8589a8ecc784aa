/**
 * Tiers are granted, never claimed. A miner's grant comes from central's registry (or this node's
 * own grants file): `open` for every admitted key, `dedicated` only where staff granted it. The
 * `attested` tier is granted per connection, for a TPM quote the node verified (see
 * `../attestation/`), and only to a miner with a registered attestation key.
 *
 * `tierRefusal` is the rule, pure: what a miner advertised against what it was granted.
 */
import type { Tier } from '@cgn/protocol';

export type GrantedTier = 'open' | 'dedicated';

export interface MinerGrant {
  tier: GrantedTier;
  /** SPKI PEM of the attestation key in the miner's TPM, or null (the miner cannot be attested). */
  attestationKey: string | null;
  /** Who granted it, for logs and status: central's registry, this node's grants, or a dev node taking any key. */
  by: 'central' | 'node' | 'any-miner';
}

/** Entries of a node's own grants (`--grants FILE`, or options in tests), by miner id. */
export interface LocalMinerGrant {
  tier?: GrantedTier;
  attestationKey?: string;
}

/**
 * Why a miner may not serve in the tier it advertised, or null when it may (for `attested`: may
 * try, with a quote). The reason is what the miner's operator reads in the error frame.
 */
export function tierRefusal(minerId: string, advertised: Tier, grant: MinerGrant): string | null {
  const who = `miner ${minerId.slice(0, 16)}`;
  switch (advertised) {
    case 'open':
      return null;
    case 'dedicated':
      if (grant.tier === 'dedicated') return null;
      return `tier dedicated refused: ${who} is not registered as dedicated (it is granted ${grant.tier}); ` +
        'dedicated is granted by CGN staff to operators under contract (cgn miner grant); advertise open, or attested with a TPM';
    case 'attested':
      if (grant.attestationKey !== null) return null;
      return `tier attested refused: ${who} has no attestation key registered; register its TPM attestation key with central ` +
        '(cgn miner register --attestation-key FILE) and run the miner with --tpm';
  }
}

/** Resolves a grant from this node's own grants; `any` is the grant a dev node gives unknown keys. */
export function localGrant(grants: Readonly<Record<string, LocalMinerGrant>>, minerId: string): MinerGrant | null {
  const g = grants[minerId];
  if (g === undefined) return null;
  return { tier: g.tier ?? 'open', attestationKey: g.attestationKey ?? null, by: 'node' };
}
