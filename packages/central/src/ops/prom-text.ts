/**
 * Just enough of the Prometheus text format to read a node's request totals and latency
 * histogram: `cgn_node_requests_total` by status, and `cgn_node_request_duration_seconds`
 * buckets, sum and count, each summed over their other labels. Lines it does not need are skipped;
 * a malformed value is skipped too (a node's metrics are its own word, not trusted input).
 */

export interface RequestTotals {
  /** Answers by HTTP status class: 2xx, 4xx, 5xx... */
  byClass: Record<string, number>;
  answered: number;
  /** Cumulative bucket counts by upper bound (seconds; Infinity last), summed over labels. */
  buckets: [number, number][];
  sumS: number;
  count: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/;

function label(labels: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|,)\\s*${name}="((?:[^"\\\\]|\\\\.)*)"`).exec(labels);
  return m?.[1];
}

export function parseRequestTotals(text: string): RequestTotals {
  const byClass: Record<string, number> = {};
  const buckets = new Map<number, number>();
  let sumS = 0;
  let count = 0;
  let answered = 0;
  for (const line of text.split('\n')) {
    if (line.length === 0 || line.startsWith('#') || !line.startsWith('cgn_node_request')) continue;
    const m = LINE.exec(line);
    if (m === null) continue;
    const value = Number(m[4]);
    if (!Number.isFinite(value) || value < 0) continue;
    const name = m[1]!;
    const labels = m[3] ?? '';
    if (name === 'cgn_node_requests_total') {
      const status = label(labels, 'status');
      if (status === undefined || !/^[1-5]\d\d$/.test(status)) continue;
      const cls = `${status[0]}xx`;
      byClass[cls] = (byClass[cls] ?? 0) + value;
      answered += value;
    } else if (name === 'cgn_node_request_duration_seconds_bucket') {
      const le = label(labels, 'le');
      const bound = le === '+Inf' ? Infinity : Number(le);
      if (le === undefined || Number.isNaN(bound)) continue;
      buckets.set(bound, (buckets.get(bound) ?? 0) + value);
    } else if (name === 'cgn_node_request_duration_seconds_sum') sumS += value;
    else if (name === 'cgn_node_request_duration_seconds_count') count += value;
  }
  return { byClass, answered, buckets: [...buckets.entries()].sort((a, b) => a[0] - b[0]), sumS, count };
}

/**
 * The q-quantile (0..1) of the observations between two cumulative histograms, in seconds, by
 * linear interpolation inside the bucket (as Prometheus' histogram_quantile does); null when no
 * observation fell in between. A quantile in the +Inf bucket is the highest finite bound.
 */
export function quantileBetween(before: [number, number][], after: [number, number][], q: number): number | null {
  const prev = new Map(before);
  const deltas = after.map(([le, c]) => [le, Math.max(0, c - (prev.get(le) ?? 0))] as [number, number]);
  const total = deltas.length === 0 ? 0 : deltas[deltas.length - 1]![1];
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, c] of deltas) {
    if (c >= rank) {
      if (le === Infinity) return lower;
      const inBucket = c - below;
      return inBucket <= 0 ? le : lower + (le - lower) * ((rank - below) / inBucket);
    }
    if (le !== Infinity) lower = le;
    below = c;
  }
  return lower;
}
