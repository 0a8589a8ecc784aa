/**
 * Attaches a node to the Central Service: starts the mutual-TLS link endpoint central dials
 * into, checks API keys with central (cached), and routes only to the DServices central approved
 * (refreshed when central connects or says they changed).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAttestationPolicy, parseMinerGrant, type AdvertiseFrame } from '@cgn/protocol';
import type { AttestationPolicy } from '../attestation/verifier.js';
import type { MinerGrant } from '../tiers/grants.js';
import type { DServiceRegistry } from '../registry.js';
import type { Logger } from '../log.js';
import type { NodeOptions } from '../options.js';
import { CentralLinkServer } from './link-server.js';
import { CentralKeyVerifier } from './key-verifier.js';
import { NodeTokenVerifier, type Jwk } from './token-verifier.js';
import { TokenRevocations } from './token-revocations.js';
import { fetchApprovedDescriptors, type ApprovedDService } from './descriptors.js';
import { linkStatusFromSnapshot, type BrokerSnapshotLike } from './capacity.js';

export interface AttachedCentral {
  link: CentralLinkServer;
  keys: CentralKeyVerifier;
  /** wss URL central dials (put it in central's node directory). */
  url: string;
  /** What central's registry grants this miner key (null: not registered, or revoked). */
  minerGrant(minerId: string): Promise<MinerGrant | null>;
  /** The attestation allow-list: central's known-good runtimes and the approved DService digests. */
  attestationPolicy(): Promise<AttestationPolicy>;
  /** Drops advertised DServices whose digest is not the approved one (miners only run what was approved). */
  admitDServices(ad: AdvertiseFrame): AdvertiseFrame;
  stop(): Promise<void>;
}

function readPem(dir: string, file: string): Buffer {
  try {
    return readFileSync(join(dir, file));
  } catch (err) {
    throw new Error(`central link: cannot read ${join(dir, file)} (${(err as Error).message}); create the network's certificates first (cgn dev does)`);
  }
}

export async function startCentralLink(
  options: NodeOptions,
  central: NonNullable<NodeOptions['central']>,
  registry: DServiceRegistry,
  snapshot: () => BrokerSnapshotLike,
  isDraining: () => boolean,
  log: Logger,
  onApprovalsChanged: () => void,
  /** Central says a miner key was revoked or its grant changed. */
  onMinerChanged: (minerId: string) => void = () => {},
  /** A developer's own payout address, as central has it (called when it is new or changed). */
  onDeveloperAddress: (developer: string, address: string) => void = () => {},
  /** Accounts' weights and quotas as central has them (on connecting, and when they change). */
  onAccountPolicies: (byAccount: Record<string, unknown>) => void = () => {},
  /** Central's approved list, with each DService's approved prices (on connecting, and when it changes). */
  onApproved: (approved: ApprovedDService[]) => void = () => {},
): Promise<AttachedCentral> {
  const tls = {
    key: readPem(central.pkiDir, `node-${options.nodeId}.key`),
    cert: readPem(central.pkiDir, `node-${options.nodeId}.crt`),
    ca: readPem(central.pkiDir, 'ca.crt'),
  };
  // Until central has said which DServices are approved, route to none of them.
  registry.restrictTo([]);
  const link = new CentralLinkServer({
    nodeId: options.nodeId,
    host: options.host,
    port: central.port,
    tls,
    log,
    status: () => linkStatusFromSnapshot(snapshot(), registry.list().map((d) => d.name), { draining: isDraining() }),
  });
  // Listening before central can connect, so the set it sends on connecting is not missed.
  const revocations = new TokenRevocations({ graceMs: central.keyTtlMs }).attach(link);
  const { url } = await link.start();
  const tokens = new NodeTokenVerifier({ getJwks: async () => (await link.request('jwks')) as { keys: Jwk[] } });
  const keys = new CentralKeyVerifier(link, { ttlMs: central.keyTtlMs, tokens, revocations });

  let digests = new Map<string, string>();
  const developerAddresses = new Map<string, string>();
  const refresh = (): void => {
    fetchApprovedDescriptors(link).then(
      (approved) => {
        const names = approved.map((d) => d.name);
        digests = new Map(approved.map((d) => [d.name, d.digest]));
        for (const d of approved) {
          if (d.developerAddress === null || developerAddresses.get(d.developer) === d.developerAddress) continue;
          developerAddresses.set(d.developer, d.developerAddress);
          onDeveloperAddress(d.developer, d.developerAddress);
        }
        onApproved(approved);
        registry.restrictTo(names);
        log.info({ approved: names }, 'central: approved DServices');
        onApprovalsChanged();
      },
      (err: unknown) => log.warn({ err: (err as Error).message }, 'central: could not fetch approved DServices; keeping the last list'),
    );
  };
  let runtimes: Promise<ReadonlySet<string>> | null = null;
  const fetchRuntimes = (): Promise<ReadonlySet<string>> => {
    const p = link.request('attestation_policy', {}).then((r) => new Set(parseAttestationPolicy(r).runtimes) as ReadonlySet<string>);
    // A failed fetch is not cached: the next attestation asks again.
    p.catch(() => {
      if (runtimes === p) runtimes = null;
    });
    return (runtimes = p);
  };
  const refreshAccounts = (): void => {
    link.request('account_policies', {}).then(
      (r) => {
        const byAccount = (r as { byAccount?: unknown }).byAccount;
        if (byAccount === null || typeof byAccount !== 'object') throw new Error('account_policies: no byAccount object');
        onAccountPolicies(byAccount as Record<string, unknown>);
        log.info({ accounts: Object.keys(byAccount).length }, 'central: account weights and quotas');
      },
    ).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'central: could not apply account weights and quotas; keeping the last ones'));
  };
  link.on('connected', (id) => {
    log.info({ central: id }, 'central connected');
    refresh();
    refreshAccounts();
    runtimes = null;
  });
  link.on('disconnected', (id, reason) => log.warn({ central: id, reason }, 'central disconnected; serving cached keys until they expire'));
  link.on('push', (p) => {
    if (p.kind === 'dservices_changed') refresh();
    if (p.kind === 'attestation_changed') runtimes = null;
    if (p.kind === 'miner_changed') onMinerChanged(p.id);
    if (p.kind === 'accounts_changed') refreshAccounts();
  });
  return {
    link,
    keys,
    url,
    minerGrant: async (minerId) => {
      const r = parseMinerGrant(await link.request('miner', { id: minerId }));
      return r.allowed ? { tier: r.tier ?? 'open', attestationKey: r.attestationKey, by: 'central' } : null;
    },
    attestationPolicy: async () => ({ runtimes: await (runtimes ?? fetchRuntimes()), dservices: digests }),
    admitDServices: (ad) => {
      const kept = ad.dservices.filter((d) => digests.get(d.name) === d.digest);
      const dropped = ad.dservices.filter((d) => !kept.includes(d));
      if (dropped.length > 0) log.warn({ dropped: dropped.map((d) => `${d.name}@${d.digest.slice(0, 12)}`) }, 'miner advertises DServices whose digest is not the approved one; not routing them to it');
      return { ...ad, dservices: kept };
    },
    stop: async () => {
      keys.close();
      revocations.detach();
      await link.stop();
    },
  };
}
