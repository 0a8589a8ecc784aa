/**
 * @cgn/miner — the miner daemon: dials a node over a WebSocket tunnel, runs DServices in
 * sandboxes and does the work the node sends.
 *
 * ```ts
 * import { startMiner } from '@cgn/miner';
 * const miner = await startMiner({ nodeUrl: 'ws://127.0.0.1:8081/', dservices: ['dservices/echo'], keyFile: 'miner.pem' });
 * miner.on('connected', ({ minerId }) => console.log('connected as', minerId));
 * await miner.stop();
 * ```
 */
export { startMiner, defaultLogger, type Miner, type MinerStatus, type MinerEvents, type DServiceStatus } from './miner.js';
export { resolveMinerOptions, MinerOptionError, MINER_DEFAULTS, type MinerOptions, type ResolvedMinerOptions, type SandboxMode, type LimitsMode } from './options.js';
export { runMinerFromArgs, MINER_USAGE, type MainIo } from './main.js';
export { minerRegistry, serveMinerMetrics, type MinerMetricsServer } from './metrics.js';
export { digestPackage, digestFiles } from './digest.js';
export { packDirectory, packToFile, packToBuffer, unpackArchive, inspectArchive, ARCHIVE_LIMITS, type ArchiveLimits, type ArchiveSummary, type PackResult } from './package-archive.js';
export { buildSandboxCommand, resolveSandbox, bwrapProblem, type SandboxSpec, type SandboxCommand } from './sandbox.js';
export { detectCgroups, limitsOf, CgroupError, DEFAULT_PIDS, type CgroupSupport, type ResourceLimits } from './cgroup.js';
export { resolveLimits, type ResolvedLimits } from './limits.js';
export { runWork, resultHash, type WorkOutcome, type ProxyRequest, type ProxyLimits } from './proxy.js';
export { DServiceInstance, type InstanceState, type InstanceStatus } from './dservice-instance.js';
export { loadDServicePackage, type DServicePackage } from './dservice-package.js';
export { Tunnel, AGENT, MINER_CLOSE, type TunnelOptions, type DisconnectInfo, type WorkFailure } from './tunnel.js';
export type { LogEntry, LogLevel, MinerLogger } from './log.js';
export { Tpm, TpmError, AK_HANDLE, type TpmQuote } from './attestation/tpm.js';
export { measureRuntime, type RuntimeMeasurement } from './attestation/runtime.js';
export { startAttestation, attestationKeyFileFor, type Attestation } from './attestation/attest.js';
export { parseEarnedNotice } from './control/earnings.js';
