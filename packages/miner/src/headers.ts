/**
 * Which headers cross between the miner and a DService: the hop's own (connection management,
 * framing) stay behind, whichever transport (HTTP or the link) carried the unit.
 */
import type { HeaderList } from '@cgn/protocol';

/** Response headers that describe the hop between DService and miner, not the result. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection',
  'proxy-authenticate', 'proxy-authorization', 'content-length',
]);

/** Request headers that describe the hop (the miner sets Host and Content-Length itself). */
const DROP_REQUEST = new Set([
  'host', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect',
  'proxy-connection', 'content-length',
]);

/** The work's request headers, copied only when some must go. */
export function dropRequestHeaders(list: HeaderList): HeaderList {
  let clean = true;
  for (let i = 0; i < list.length; i += 2) {
    if (DROP_REQUEST.has(list[i]!.toLowerCase())) {
      clean = false;
      break;
    }
  }
  if (clean) return list;
  const out: HeaderList = [];
  for (let i = 0; i + 1 < list.length; i += 2) {
    if (!DROP_REQUEST.has(list[i]!.toLowerCase())) out.push(list[i]!, list[i + 1]!);
  }
  return out;
}

export function isHopByHop(lowerCaseName: string): boolean {
  return HOP_BY_HOP.has(lowerCaseName);
}
