/**
 * The node's side of the central link: the mutual-TLS WebSocket endpoint central dials into, the
 * caching API-key verifier backed by it, offline access-token verification, approved descriptors
 * and the status the node reports.
 *
 * ```ts
 * const link = new CentralLinkServer({ nodeId, tls: { key, cert, ca }, port: 7771, status: () => linkStatusFromSnapshot(broker.snapshot(), routed) });
 * await link.start();
 * const tokens = new NodeTokenVerifier({ getJwks: async () => (await link.request('jwks')) as { keys: Jwk[] } });
 * const keys = new CentralKeyVerifier(link, { ttlMs: 30_000, tokens });
 * // hot path: keys.verify(bearer) ?? await keys.verifyAsync(bearer)
 * ```
 */
export { CentralLinkServer, type CentralLinkServerOptions, type CentralPush } from './link-server.js';
export { CentralKeyVerifier, type CentralKeyVerifierOptions, type CentralPrincipal, type LookupResult, type LookupSource, type KeyLink } from './key-verifier.js';
export { TokenRevocations, type TokenRevocationsOptions, type TokenFacts, type TokenVerdict } from './token-revocations.js';
export { NodeTokenVerifier, looksLikeJwt, type NodeTokenVerifierOptions, type TokenPrincipal, type Jwk } from './token-verifier.js';
export { fetchApprovedDescriptors, parseApprovedDescriptors, type ApprovedDService } from './descriptors.js';
export { linkStatusFromSnapshot, type BrokerSnapshotLike } from './capacity.js';
export { LINK_SUBPROTOCOL, CENTRAL_CERT_NAME, nodeCertName, type NodeLinkStatus, type LinkDescriptor, type KeyPrincipal } from '@cgn/protocol';
