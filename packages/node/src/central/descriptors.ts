/**
 * Approved DService descriptors from central, for routing (the node routes only to approved
 * DServices) and for miners (who run only DServices whose digest matches).
 */
import { parseDescriptor, type DServiceDescriptor } from '@cgn/protocol';
import type { CentralLinkServer } from './link-server.js';
import { LIMITS, TIERS, type LinkDescriptor, type LinkPrice, type LinkPriceSchedule } from '@cgn/protocol';

export interface ApprovedDService extends DServiceDescriptor {
  /** sha256 hex digest of the DService package (what miners verify and advertise). */
  digest: string;
  /** The prices central approved (µUSD); null: none set, the node prices with its default. */
  price: LinkPrice | null;
  resourcesFull: LinkDescriptor['resources'];
  /** The developer's own payout address, set at central (null: none). */
  developerAddress: string | null;
  /** The package archive uploaded at central for this version (miners are handed it); null: none. */
  package: { digest: string; sizeBytes: number } | null;
}

const DIGEST = /^[0-9a-f]{64}$/;
const PRICE_KEYS = ['perRequestMicros', 'perCpuSecondMicros', 'perMbMicros'] as const;

function parseSchedule(raw: unknown, what: string, base?: LinkPriceSchedule): LinkPriceSchedule {
  if (raw === null || typeof raw !== 'object') throw new Error(`central descriptor ${what}: price must be an object`);
  const r = raw as Record<string, unknown>;
  const out = {} as LinkPriceSchedule;
  for (const k of PRICE_KEYS) {
    const v = r[k] ?? base?.[k] ?? 0;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`central descriptor ${what}: price ${k} must be a whole number of µUSD, 0 or more`);
    out[k] = v;
  }
  return out;
}

/** Central's prices for a DService: null when none were set (the node's default applies). */
function parsePrice(raw: unknown, name: string): LinkPrice | null {
  if (raw === undefined || raw === null) return null;
  const base = parseSchedule(raw, name);
  const tiersRaw = (raw as { tiers?: unknown }).tiers;
  if (tiersRaw === undefined || tiersRaw === null) return base;
  if (typeof tiersRaw !== 'object') throw new Error(`central descriptor ${name}: price.tiers must be an object`);
  const tiers: NonNullable<LinkPrice['tiers']> = {};
  for (const t of TIERS) {
    const v = (tiersRaw as Record<string, unknown>)[t];
    if (v !== undefined) tiers[t] = parseSchedule(v, `${name} (${t})`, base);
  }
  return { ...base, tiers };
}

/** Checks central's answer and converts each entry to the protocol's descriptor (plus digest and price). */
export function parseApprovedDescriptors(result: unknown): ApprovedDService[] {
  const list = (result as { dservices?: unknown } | null)?.dservices;
  if (!Array.isArray(list)) throw new Error('central: descriptors answer has no dservices list');
  return list.map((raw, i) => {
    const d = raw as LinkDescriptor;
    const base = parseDescriptor(
      {
        name: d.name, version: d.version, entry: d.entry, developer: d.developer, deterministic: d.deterministic,
        resources: { cpus: d.resources?.cpus, memoryMb: d.resources?.memoryMb }, maxBodyBytes: d.maxBodyBytes,
        concurrency: d.concurrency, timeouts: { requestMs: d.timeouts?.requestMs },
      },
      `central descriptor #${i}`,
    );
    if (typeof d.digest !== 'string' || !DIGEST.test(d.digest)) throw new Error(`central descriptor ${base.name}: bad digest`);
    const price = parsePrice(d.price, base.name);
    const developerAddress = typeof d.developerAddress === 'string' && /^0x[0-9a-fA-F]{40}$/.test(d.developerAddress) ? d.developerAddress.toLowerCase() : null;
    const pkg = d.package;
    // A package is this version's own: its digest is the approved one, its size within the bound.
    const packageOk = pkg !== null && typeof pkg === 'object' && pkg.digest === d.digest && Number.isSafeInteger(pkg.sizeBytes) && pkg.sizeBytes > 0 && pkg.sizeBytes <= LIMITS.maxPackageBytes;
    return { ...base, digest: d.digest, price, developerAddress, package: packageOk ? { digest: pkg.digest, sizeBytes: pkg.sizeBytes } : null, resourcesFull: { cpus: base.resources.cpus, memoryMb: base.resources.memoryMb, diskMb: d.resources?.diskMb ?? 0, gpus: d.resources?.gpus ?? 0 } };
  });
}

/** Asks central for the approved descriptors over the link. */
export async function fetchApprovedDescriptors(link: Pick<CentralLinkServer, 'request'>, timeoutMs = 5000): Promise<ApprovedDService[]> {
  return parseApprovedDescriptors(await link.request('descriptors', {}, timeoutMs));
}
