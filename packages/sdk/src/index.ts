/**
 * @cgn/sdk — small, dependency-free kits: `serveDService` for DService authors.
 */
export * from './dservice.js';
