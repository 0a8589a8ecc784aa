/**
 * The largest frame a miner may send the node over its tunnel, fixed when the node starts (the
 * WebSocket server's limit holds for every connection it opened). Results carry a DService's
 * answer body, so the limit must cover the largest body of any DService the node routes,
 * including those central approves after the start. It covers at least the descriptor default
 * (10 MiB) plus room for the frame around the body, so a node started without DServices of its
 * own carries central's DServices' bodies (it carried 2 MiB, and a larger result closed the
 * miner's tunnel). A DService approved later with a larger limit is routed with the tunnel's
 * (`routableBodyLimit`): its larger requests are refused with 413 naming the limit; restart the
 * node with a local copy of it (or a larger local limit) to carry more.
 */
import { DESCRIPTOR_DEFAULTS } from '@cgn/protocol';

/** Frame bytes beyond the body: headers, ids, timings. */
export const FRAME_OVERHEAD_BYTES = 1024 * 1024;

/** The body bytes the tunnel carries, from the DServices known at start. */
export function tunnelBodyLimit(known: readonly { maxBodyBytes: number }[]): number {
  return Math.max(DESCRIPTOR_DEFAULTS.maxBodyBytes, ...known.map((d) => d.maxBodyBytes));
}

/** A DService's body limit as the node routes it: its own, at most what the tunnel carries. */
export function routableBodyLimit(maxBodyBytes: number, tunnelBody: number): number {
  return Math.min(maxBodyBytes, tunnelBody);
}
