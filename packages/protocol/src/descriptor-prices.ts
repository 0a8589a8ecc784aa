/**
 * The optional `prices` of dservice.json: what the developer asks per request, per CPU-second
 * and per MB (µUSD, see units.ts), with another schedule per tier if wanted. Central records them
 * with the version (`cgn dservice register`; its --price-* flags override) and nodes charge them
 * once it is approved. A field left out is 0 in the base schedule, and the base's in a tier's.
 */
export interface DescriptorPriceSchedule {
  perRequestMicros?: number;
  perCpuSecondMicros?: number;
  perMbMicros?: number;
}

export interface DescriptorPrices extends DescriptorPriceSchedule {
  tiers?: { open?: DescriptorPriceSchedule; attested?: DescriptorPriceSchedule; dedicated?: DescriptorPriceSchedule };
}

/** Largest price central accepts (µUSD): 1,000,000 USD. */
export const MAX_DESCRIPTOR_PRICE_MICROS = 1e12;
const KEYS = ['perRequestMicros', 'perCpuSecondMicros', 'perMbMicros'] as const;
const TIER_KEYS = ['open', 'attested', 'dedicated'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Checks `prices` as dservice.schema.json does; `fail(field, why)` throws, naming the field as the schema would. */
export function parseDescriptorPrices(v: unknown, fail: (field: string, why: string) => never): DescriptorPrices {
  const unknown = (o: Record<string, unknown>, at: string, fields: readonly string[]) => {
    for (const k of Object.keys(o)) if (!fields.includes(k) && o[k] !== undefined) fail(`${at}.${k}`, `is not a field of dservice.json (known: ${fields.join(', ')})`);
  };
  const schedule = (o: unknown, at: string, extra: readonly string[]): DescriptorPriceSchedule => {
    if (!isObject(o)) return fail(at, `must be an object { ${[...KEYS, ...extra].join(', ')} } of whole µUSD`);
    unknown(o, at, [...KEYS, ...extra]);
    const out: DescriptorPriceSchedule = {};
    for (const k of KEYS) {
      const n = o[k];
      if (n === undefined) continue;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_DESCRIPTOR_PRICE_MICROS) fail(`${at}.${k}`, `must be a whole number of µUSD from 0 to ${MAX_DESCRIPTOR_PRICE_MICROS}`);
      out[k] = n as number;
    }
    return out;
  };
  const base: DescriptorPrices = schedule(v, 'prices', ['tiers']);
  const tiers = (v as Record<string, unknown>)['tiers'];
  if (tiers === undefined) return base;
  if (!isObject(tiers)) return fail('prices.tiers', `must be an object { ${TIER_KEYS.join(', ')} }`);
  unknown(tiers, 'prices.tiers', TIER_KEYS);
  base.tiers = {};
  for (const t of TIER_KEYS) if (tiers[t] !== undefined) base.tiers[t] = schedule(tiers[t], `prices.tiers.${t}`, []);
  return base;
}
