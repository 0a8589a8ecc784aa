/**
 * Who may read the node's `/metrics`. The figures carry no account, key or payload (DService
 * names, tiers, counts and latencies), so by default anyone who reaches the work port may; a node
 * on a public address can require a bearer token (`--metrics-token`, or `CGN_METRICS_TOKEN`) that
 * its Prometheus sends (`authorization.credentials` in the scrape config).
 */
import { timingSafeEqual, createHash } from 'node:crypto';

export function metricsAccess(token: string | null): (authorization: string | undefined) => boolean {
  if (token === null) return () => true;
  const want = createHash('sha256').update(token).digest();
  return (authorization) => {
    if (authorization === undefined || authorization.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    return timingSafeEqual(createHash('sha256').update(authorization.slice(7).trim()).digest(), want);
  };
}
