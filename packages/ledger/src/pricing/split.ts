/**
 * Fee splits: every payment is divided among the four beneficiaries of an agreement — the miner
 * that did the work, the DService's developer, the node's operator and a charity — by basis
 * points (1/100 of a percent) that sum to exactly 10,000.
 *
 * Remainder rule (largest remainder, deterministic): each part first gets
 * `floor(amount * bps / 10000)`; the few units left over (fewer than the number of
 * beneficiaries) go one each to the parts with the largest dropped fraction
 * (`amount * bps mod 10000`), ties broken in the fixed order miner, developer, operator, charity.
 * So the parts always add up exactly to the amount, none is negative, none differs from its exact
 * share by a unit or more, and a beneficiary with 0 bps always gets 0.
 */

export const BENEFICIARIES = ['miner', 'developer', 'operator', 'charity'] as const;
export type Beneficiary = (typeof BENEFICIARIES)[number];

/** Basis points per beneficiary; integers >= 0 summing to 10,000. */
export type SplitBps = Readonly<Record<Beneficiary, number>>;
/** An amount divided among the beneficiaries; the parts sum to the amount. */
export type SplitParts = Record<Beneficiary, bigint>;

export const TOTAL_BPS = 10_000;

/** An example agreement in the spirit of the whitepapers' fee tables: most to the miner. */
export const DEFAULT_SPLIT: SplitBps = Object.freeze({ miner: 7000, developer: 2000, operator: 900, charity: 100 });

/** Frozen agreements already found valid. */
const GOOD_FROZEN = new WeakSet<object>();

export function splitProblem(bps: SplitBps): string | null {
  if (bps === null || typeof bps !== 'object') return 'must be an object';
  if (GOOD_FROZEN.has(bps)) return null;
  let sum = 0;
  for (const b of BENEFICIARIES) {
    const v = bps[b];
    if (!Number.isInteger(v) || v < 0 || v > TOTAL_BPS) return `${b} must be an integer number of basis points from 0 to 10000`;
    sum += v;
  }
  if (sum !== TOTAL_BPS) return `basis points must sum to 10000, not ${sum}`;
  // A frozen agreement (e.g. DEFAULT_SPLIT, one per DService) cannot change: check it once.
  if (Object.isFrozen(bps)) GOOD_FROZEN.add(bps);
  return null;
}

/** Divides `amount` (>= 0) by `bps` with the largest-remainder rule above. */
export function splitAmount(amount: bigint, bps: SplitBps): SplitParts {
  const problem = splitProblem(bps);
  if (problem !== null) throw new RangeError(`split: ${problem}`);
  if (typeof amount !== 'bigint' || amount < 0n) throw new RangeError('split: amount must be a bigint >= 0');
  return splitChecked(amount, bps);
}

const T = 10_000n;
/**
 * `splitAmount` for an agreement and amount already checked (the stores' hot path): the same
 * rule, without validation or sorting.
 */
export function splitChecked(amount: bigint, bps: SplitBps): SplitParts {
  const em = amount * BigInt(bps.miner);
  const ed = amount * BigInt(bps.developer);
  const eo = amount * BigInt(bps.operator);
  const ec = amount * BigInt(bps.charity);
  const parts: SplitParts = { miner: em / T, developer: ed / T, operator: eo / T, charity: ec / T };
  let left = amount - parts.miner - parts.developer - parts.operator - parts.charity;
  if (left === 0n) return parts;
  // Largest dropped fraction first; ties in the order miner, developer, operator, charity.
  const rem = [em % T, ed % T, eo % T, ec % T];
  const taken = [false, false, false, false];
  while (left > 0n) {
    let best = -1;
    for (let i = 0; i < 4; i++) if (!taken[i] && (best < 0 || rem[i]! > rem[best]!)) best = i;
    taken[best] = true;
    parts[BENEFICIARIES[best]!] += 1n;
    left -= 1n;
  }
  return parts;
}

// Below this, amount * 10,000 stays under 2^53 and the rule runs exactly in doubles.
const EXACT_IN_DOUBLES = 900_719_925_474n;
const Tn = 10_000;

/**
 * `encodeSplit(splitChecked(amount, bps))` ("m/d/o/c" text of the parts), without allocating
 * bigints for the usual amounts: below 2^53 / 10,000 the same rule runs in exact integer
 * doubles (every product, remainder and part is an integer below 2^53); larger amounts take
 * `splitChecked`. For an agreement and amount already checked.
 */
export function splitText(amount: bigint, bps: SplitBps): string {
  if (amount > EXACT_IN_DOUBLES) {
    const p = splitChecked(amount, bps);
    return `${p.miner}/${p.developer}/${p.operator}/${p.charity}`;
  }
  const a = Number(amount);
  const em = a * bps.miner;
  const ed = a * bps.developer;
  const eo = a * bps.operator;
  const ec = a * bps.charity;
  const rm = em % Tn;
  const rd = ed % Tn;
  const ro = eo % Tn;
  const rc = ec % Tn;
  let m = (em - rm) / Tn;
  let d = (ed - rd) / Tn;
  let o = (eo - ro) / Tn;
  let c = (ec - rc) / Tn;
  let left = a - m - d - o - c;
  // Largest dropped fraction first; ties in the order miner, developer, operator, charity. In
  // scalars and a bit mask (no array per record: this runs for most priced records).
  let taken = 0;
  while (left > 0) {
    let best = -1;
    let top = -1;
    if ((taken & 1) === 0 && rm > top) { best = 0; top = rm; }
    if ((taken & 2) === 0 && rd > top) { best = 1; top = rd; }
    if ((taken & 4) === 0 && ro > top) { best = 2; top = ro; }
    if ((taken & 8) === 0 && rc > top) { best = 3; top = rc; }
    taken |= 1 << best;
    if (best === 0) m++;
    else if (best === 1) d++;
    else if (best === 2) o++;
    else c++;
    left--;
  }
  return `${m}/${d}/${o}/${c}`;
}

/** The reference implementation of the rule (kept for the property test that checks `splitChecked` against it). */
export function splitAmountReference(amount: bigint, bps: SplitBps): SplitParts {
  const total = BigInt(TOTAL_BPS);
  const parts: SplitParts = { miner: 0n, developer: 0n, operator: 0n, charity: 0n };
  const rems: { b: Beneficiary; rem: bigint; order: number }[] = [];
  let given = 0n;
  BENEFICIARIES.forEach((b, order) => {
    const exact = amount * BigInt(bps[b]);
    const base = exact / total;
    parts[b] = base;
    given += base;
    rems.push({ b, rem: exact % total, order });
  });
  let left = amount - given;
  if (left > 0n) {
    rems.sort((x, y) => (x.rem === y.rem ? x.order - y.order : x.rem > y.rem ? -1 : 1));
    for (const r of rems) {
      if (left === 0n) break;
      parts[r.b] += 1n;
      left -= 1n;
    }
  }
  return parts;
}
