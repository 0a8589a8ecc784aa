/**
 * Which headers cross the node in each direction. Credentials and hop-by-hop headers stop at
 * the node; CGN's own `cgn-*` headers are the node's to set.
 */
const DROP_REQUEST = new Set([
  'authorization', 'cookie', 'host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length',
  'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect', 'idempotency-key',
]);

/** Hop-by-hop headers, cookies, and `idempotent-replayed`, which only the node may say (a replayed answer). */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'trailer', 'upgrade', 'proxy-connection', 'set-cookie', 'idempotent-replayed']);

/** Request headers for the DService, as a flat lower-case [name, value, ...] list. */
export function forwardRequestHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (DROP_REQUEST.has(name) || name.startsWith('cgn-')) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

/**
 * DService response headers the DApp may see. Every name and value already passed the frame
 * validator's result rule (`@cgn/protocol` validate.ts: token names, Latin-1 values), so only the
 * hop's own headers and the node's are dropped here.
 */
export function forwardResponseHeaders(list: readonly string[], out: string[]): void {
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i]!;
    if (DROP_RESPONSE.has(name) || name.startsWith('cgn-')) continue;
    out.push(name, list[i + 1]!);
  }
}
