/**
 * @cgn/protocol — wire types and codecs shared by node and miner. No I/O.
 *
 * ```ts
 * import { frame, encodeMessage, decodeMessage } from '@cgn/protocol';
 * const bytes = encodeMessage([frame({ t: 'ping', ts: Date.now() })]);
 * const [ping] = decodeMessage(bytes);
 * ```
 */
export * from './errors.js';
export * from './frames.js';
export * from './validate.js';
export * from './excerpt.js';
export * from './codec.js';
export * from './body.js';
export * from './auth.js';
export * from './descriptor.js';
export * from './descriptor-prices.js';
export * from './outbox.js';
export * from './rate-limit.js';
export * from './central-link.js';
export * from './measurement.js';
export * from './tls-files.js';
export * from './units.js';
export * from './terminal.js';
export * from './probe.js';
export * from './web-assets.js';
