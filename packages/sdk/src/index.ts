/**
 * @cgn/sdk — small, dependency-free kits: `serveDService` for DService authors.
 */
export * from './dservice.js';
export * from './link-frames.js';
export { serveLink, headerRecord, type RunningLink } from './link-server.js';
export { CpuAttribution, processCpuClock, type CpuClock } from './cpu-attribution.js';
