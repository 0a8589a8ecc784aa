/**
 * Miner options: one input type, and one function that fills the defaults and validates it,
 * naming the wrong option in its error.
 */
import { availableParallelism, homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { LIMITS, TIERS, plaintextProblem, type Tier } from '@cgn/protocol';
import { normalFingerprint, type NodeTrust } from './tunnel.js';
import { loadDServicePackage, type DServicePackage } from './dservice-package.js';
import type { MinerLogger } from './log.js';

export type SandboxMode = 'auto' | 'bwrap' | 'none';
export const SANDBOX_MODES: readonly SandboxMode[] = ['auto', 'bwrap', 'none'];
/** How DServices' CPU, memory and process limits are enforced: `cgroup` (required), `auto` (cgroups where writable, else a warning), `none`. */
export type LimitsMode = 'auto' | 'cgroup' | 'none';
export const LIMITS_MODES: readonly LimitsMode[] = ['auto', 'cgroup', 'none'];

export interface MinerOptions {
  /** The node's miner endpoint, `ws://host:port/` or `wss://…`. */
  nodeUrl: string;
  /** PEM file of the CA(s) that vouch for a `wss://` node's certificate (default: the system's CAs). */
  caFile?: string;
  /** The node certificate's SHA-256 fingerprint: only that certificate is accepted. */
  pinSha256?: string;
  /** Allow `ws://` to a node that is not on this machine (only behind a TLS-terminating proxy). */
  plaintext?: boolean;
  /** PEM file with the miner's Ed25519 key; created (mode 0600) if missing. Default `~/.cgn/miner-key.pem`. */
  keyFile?: string;
  /** DService package directories, each with a `dservice.json`. */
  dservices: string[];
  /** Work units run at once over all DServices. Default: the sum of the DServices' concurrency (the CPU count if there are none). */
  slots?: number;
  /** Default `open`. The node grants it: dedicated by central, attested for a verified TPM quote (needs `tpm`). */
  tier?: Tier;
  /**
   * The TPM for the attested tier, as a tpm2-tools TCTI: `device:/dev/tpmrm0` (hardware) or
   * `swtpm:port=P` (a software TPM). The miner keeps its attestation key there and measures its
   * runtime and DServices into PCR 23.
   */
  tpm?: string;
  /** `auto` (default): bubblewrap if it works here, else plain processes with a warning. */
  sandbox?: SandboxMode;
  /** `auto` (default): the descriptors' resource limits enforced with cgroups where writable, else a warning. */
  limits?: LimitsMode;
  /** Directory for the DServices' sockets; default a new temporary directory, removed on stop. */
  runDir?: string;
  /** Free-text location advertised to the node (region, city). */
  location?: string;
  /** Data region advertised to the node, e.g. `eu-west` (placement honours an account's regions). */
  region?: string;
  /** The least this miner accepts, µUSD per CPU-second (placement does not give it DServices paying less). */
  priceFloor?: number;
  /** The miner's EVM address (0x + 40 hex): paid there, and in the open tier its stake backs the work. */
  payoutAddress?: string;
  /**
   * 0x + 130 hex: the payout address's EIP-191 signature over `stakeBindingMessage(minerId)`
   * (`cgn wallet stake-proof`). Nodes that check stakes admit the miner to the open tier with it.
   */
  stakeProof?: string;
  /** A pino logger. Default: pino at `$CGN_LOG_LEVEL` (or info), JSON to stderr. */
  logger?: MinerLogger;
  /** DService name -> sha256 hex digest the package must have; a mismatching DService is not run nor advertised. */
  expectedDigests?: Record<string, string>;
  /** Where packages the node places here are unpacked. Default `<key file's dir>/package-cache/<miner id prefix>`. */
  packageCacheDir?: string;
  /** Budget of that cache, MiB: packages not in use are removed, least recently used first, beyond it. Default 1024. */
  packageCacheMb?: number;
  /** Longest a package download may take, ms. Default 120000. */
  packageFetchTimeoutMs?: number;

  // Tuning (defaults suit production; tests shorten them).
  /** Reconnect backoff: first delay bound and cap, ms (full jitter). Default 200 / 10000. */
  reconnectBaseMs?: number;
  reconnectCapMs?: number;
  /** Time from dialling to `welcome` before the attempt is abandoned, ms. Default 10000. */
  handshakeTimeoutMs?: number;
  /** DService health checks: interval, per-check timeout, failures in a row before a restart. Default 5000 / 2000 / 3. */
  healthIntervalMs?: number;
  healthTimeoutMs?: number;
  healthFailures?: number;
  /** Time a DService process has to answer `GET /healthz` after it starts, ms. Default 20000. */
  startTimeoutMs?: number;
  /** Time between SIGTERM and SIGKILL when a DService process is stopped, ms. Default 5000. */
  stopGraceMs?: number;
  /** Restart backoff of a failed DService process, ms. Default 250 / 30000. */
  restartBaseMs?: number;
  restartCapMs?: number;
  /** Longest a graceful stop waits for work in flight before cancelling it, ms. Default 30000. */
  drainTimeoutMs?: number;
  /** Outgoing frames of one event-loop turn are split into messages of about this size. Default 1 MiB. */
  maxMessageBytes?: number;
}

export interface ResolvedMinerOptions {
  nodeUrl: string;
  trust: NodeTrust;
  keyFile: string;
  packages: DServicePackage[];
  slots: number;
  tier: Tier;
  tpm: string | null;
  sandbox: SandboxMode;
  limits: LimitsMode;
  runDir: string | null;
  location: string | undefined;
  region: string | undefined;
  priceFloor: number | undefined;
  payoutAddress: string | undefined;
  stakeProof: Uint8Array | undefined;
  logger: MinerLogger | undefined;
  expectedDigests: Record<string, string>;
  packageCacheDir: string | null;
  packageCacheMb: number;
  packageFetchTimeoutMs: number;
  reconnectBaseMs: number;
  reconnectCapMs: number;
  handshakeTimeoutMs: number;
  healthIntervalMs: number;
  healthTimeoutMs: number;
  healthFailures: number;
  startTimeoutMs: number;
  stopGraceMs: number;
  restartBaseMs: number;
  restartCapMs: number;
  drainTimeoutMs: number;
  maxMessageBytes: number;
}

/** A wrong option; `option` is its name as in `MinerOptions`. */
export class MinerOptionError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`miner option ${option}: ${message}`);
    this.name = 'MinerOptionError';
  }
}

export const DEFAULT_KEY_FILE = join(homedir(), '.cgn', 'miner-key.pem');

const TUNING = {
  reconnectBaseMs: 200,
  reconnectCapMs: 10_000,
  handshakeTimeoutMs: 10_000,
  healthIntervalMs: 5000,
  healthTimeoutMs: 2000,
  healthFailures: 3,
  startTimeoutMs: 20_000,
  stopGraceMs: 5000,
  restartBaseMs: 250,
  restartCapMs: 30_000,
  drainTimeoutMs: 30_000,
  maxMessageBytes: 1024 * 1024,
  packageCacheMb: 1024,
  packageFetchTimeoutMs: 120_000,
} as const;

export const MINER_DEFAULTS = { tier: 'open' as Tier, sandbox: 'auto' as SandboxMode, limits: 'auto' as LimitsMode, keyFile: DEFAULT_KEY_FILE, ...TUNING };

/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
export const MAX_SOCKET_PATH = 107;
/** The socket of a DService below the run directory: `<runDir>/<name>/http.sock`. */
export function socketPathFor(runDir: string, name: string): string {
  return join(runDir, name, 'http.sock');
}
/** The DService link's socket (see `link-client.ts`), next to its HTTP socket. */
export function linkSocketPathFor(httpSocketPath: string): string {
  return join(dirname(httpSocketPath), 'link.sock');
}

/**
 * Fills defaults and validates. Reads each DService's `dservice.json` (so a wrong package is
 * reported here, naming `dservices[i]`), but starts nothing.
 */
export function resolveMinerOptions(input: MinerOptions): ResolvedMinerOptions {
  if (input === null || typeof input !== 'object') throw new MinerOptionError('(options)', 'must be an object');
  const o = input as unknown as Record<string, unknown>;

  const nodeUrl = o['nodeUrl'];
  if (typeof nodeUrl !== 'string' || nodeUrl.length === 0) throw new MinerOptionError('nodeUrl', 'is required (the node miner endpoint, e.g. ws://127.0.0.1:8081/)');
  let url: URL;
  try {
    url = new URL(nodeUrl);
  } catch {
    throw new MinerOptionError('nodeUrl', `"${nodeUrl}" is not a URL (expected ws://host:port/)`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new MinerOptionError('nodeUrl', `"${nodeUrl}" must start with ws:// or wss://`);
  const trust: NodeTrust = {};
  if (url.protocol === 'ws:') {
    const refusal = plaintextProblem(url.hostname, o['plaintext'] === true, `the tunnel to ${nodeUrl}`, 'a wss:// URL');
    if (refusal !== null) throw new MinerOptionError('nodeUrl', refusal);
    if (o['caFile'] !== undefined || o['pinSha256'] !== undefined) throw new MinerOptionError('nodeUrl', 'is ws:// (plaintext): --ca-file and --pin-sha256 need a wss:// URL');
  }
  if (o['caFile'] !== undefined) {
    if (typeof o['caFile'] !== 'string') throw new MinerOptionError('caFile', 'must be a file path');
    try {
      trust.ca = readFileSync(o['caFile']);
    } catch (err) {
      throw new MinerOptionError('caFile', `cannot read ${o['caFile']}: ${(err as Error).message}`);
    }
    if (!trust.ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new MinerOptionError('caFile', `${o['caFile']} holds no PEM certificate`);
  }
  if (o['pinSha256'] !== undefined) {
    try {
      trust.pinSha256 = normalFingerprint(String(o['pinSha256']));
    } catch (err) {
      throw new MinerOptionError('pinSha256', (err as Error).message);
    }
  }

  const keyFile = o['keyFile'] ?? DEFAULT_KEY_FILE;
  if (typeof keyFile !== 'string' || keyFile.length === 0) throw new MinerOptionError('keyFile', 'must be a file path');

  const dirs = o['dservices'];
  if (!Array.isArray(dirs)) throw new MinerOptionError('dservices', 'must be a list of DService package directories');
  const packages: DServicePackage[] = [];
  const names = new Set<string>();
  dirs.forEach((d, i) => {
    if (typeof d !== 'string' || d.length === 0) throw new MinerOptionError(`dservices[${i}]`, 'must be a directory path');
    let pkg: DServicePackage;
    try {
      pkg = loadDServicePackage(d);
    } catch (err) {
      throw new MinerOptionError(`dservices[${i}]`, (err as Error).message);
    }
    if (names.has(pkg.descriptor.name)) throw new MinerOptionError(`dservices[${i}]`, `DService "${pkg.descriptor.name}" is listed twice`);
    names.add(pkg.descriptor.name);
    packages.push(pkg);
  });
  if (packages.length > LIMITS.maxDServices) throw new MinerOptionError('dservices', `at most ${LIMITS.maxDServices} DServices`);

  const concurrency = packages.reduce((s, p) => s + p.descriptor.concurrency, 0);
  const slots = o['slots'] ?? Math.min(LIMITS.maxSlots, concurrency > 0 ? concurrency : availableParallelism());
  if (typeof slots !== 'number' || !Number.isInteger(slots) || slots < 1 || slots > LIMITS.maxSlots) {
    throw new MinerOptionError('slots', `must be an integer from 1 to ${LIMITS.maxSlots}`);
  }

  const tier = o['tier'] ?? MINER_DEFAULTS.tier;
  if (!TIERS.includes(tier as Tier)) throw new MinerOptionError('tier', `must be one of ${TIERS.join(', ')}`);
  const tpm = o['tpm'];
  if (tpm !== undefined && (typeof tpm !== 'string' || !/^(device|swtpm|mssim|tabrmd)(:[\x21-\x7e]*)?$/.test(tpm))) {
    throw new MinerOptionError('tpm', 'must be a tpm2-tools TCTI such as device:/dev/tpmrm0 or swtpm:port=2321');
  }
  if (tier === 'attested' && tpm === undefined) throw new MinerOptionError('tpm', 'the attested tier needs a TPM to quote from: device:/dev/tpmrm0, or swtpm:port=P');

  const sandbox = o['sandbox'] ?? MINER_DEFAULTS.sandbox;
  if (!SANDBOX_MODES.includes(sandbox as SandboxMode)) throw new MinerOptionError('sandbox', `must be one of ${SANDBOX_MODES.join(', ')}`);

  const limits = o['limits'] ?? MINER_DEFAULTS.limits;
  if (!LIMITS_MODES.includes(limits as LimitsMode)) throw new MinerOptionError('limits', `must be one of ${LIMITS_MODES.join(', ')}`);

  const runDir = o['runDir'];
  if (runDir !== undefined) {
    if (typeof runDir !== 'string' || runDir.length === 0) throw new MinerOptionError('runDir', 'must be a directory path');
    for (const p of packages) {
      const sock = socketPathFor(resolve(runDir), p.descriptor.name);
      if (Buffer.byteLength(sock) > MAX_SOCKET_PATH) {
        throw new MinerOptionError('runDir', `is too long: the socket ${sock} exceeds ${MAX_SOCKET_PATH} bytes; use a shorter path`);
      }
    }
  }

  const location = o['location'];
  if (location !== undefined && (typeof location !== 'string' || location.length > LIMITS.maxNameLength)) {
    throw new MinerOptionError('location', `must be a string of at most ${LIMITS.maxNameLength} characters`);
  }

  const region = o['region'];
  if (region !== undefined && (typeof region !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(region))) {
    throw new MinerOptionError('region', 'must be a region name: lower-case letters, digits and dashes, e.g. eu-west');
  }
  const priceFloor = o['priceFloor'];
  if (priceFloor !== undefined && (typeof priceFloor !== 'number' || !Number.isSafeInteger(priceFloor) || priceFloor < 0)) {
    throw new MinerOptionError('priceFloor', 'must be a whole number of µUSD per CPU-second, 0 or more');
  }

  const payoutAddress = o['payoutAddress'];
  if (payoutAddress !== undefined && (typeof payoutAddress !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(payoutAddress))) {
    throw new MinerOptionError('payoutAddress', 'must be an EVM address: 0x and 40 hex digits');
  }
  const stakeProof = o['stakeProof'];
  if (stakeProof !== undefined) {
    if (typeof stakeProof !== 'string' || !/^0x[0-9a-fA-F]{130}$/.test(stakeProof)) throw new MinerOptionError('stakeProof', 'must be a 65-byte signature: 0x and 130 hex digits (cgn wallet stake-proof)');
    if (payoutAddress === undefined) throw new MinerOptionError('stakeProof', 'goes with payoutAddress (the address that signed it)');
  }

  const logger = o['logger'];
  if (logger !== undefined && (logger === null || typeof (logger as MinerLogger).info !== 'function' || typeof (logger as MinerLogger).child !== 'function')) {
    throw new MinerOptionError('logger', 'must be a pino logger');
  }

  const expected = o['expectedDigests'] ?? {};
  if (expected === null || typeof expected !== 'object' || Array.isArray(expected)) throw new MinerOptionError('expectedDigests', 'must map DService names to digests');
  for (const [name, digest] of Object.entries(expected)) {
    if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) {
      throw new MinerOptionError(`expectedDigests.${name}`, 'must be a sha256 hex digest (64 lower-case hex characters)');
    }
  }

  const cacheDir = o['packageCacheDir'];
  if (cacheDir !== undefined && (typeof cacheDir !== 'string' || cacheDir.length === 0)) throw new MinerOptionError('packageCacheDir', 'must be a directory path');

  const tuning = {} as Record<keyof typeof TUNING, number>;
  for (const [name, dflt] of Object.entries(TUNING) as [keyof typeof TUNING, number][]) {
    const v = o[name] ?? dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new MinerOptionError(name, 'must be a positive integer');
    tuning[name] = v;
  }
  if (tuning.reconnectCapMs < tuning.reconnectBaseMs) throw new MinerOptionError('reconnectCapMs', 'must not be below reconnectBaseMs');
  if (tuning.restartCapMs < tuning.restartBaseMs) throw new MinerOptionError('restartCapMs', 'must not be below restartBaseMs');

  return {
    nodeUrl,
    trust,
    keyFile: isAbsolute(keyFile) ? keyFile : resolve(keyFile),
    packages,
    slots,
    tier: tier as Tier,
    tpm: (tpm as string | undefined) ?? null,
    sandbox: sandbox as SandboxMode,
    limits: limits as LimitsMode,
    runDir: runDir === undefined ? null : resolve(runDir as string),
    location: location as string | undefined,
    region: region as string | undefined,
    priceFloor: priceFloor as number | undefined,
    payoutAddress: payoutAddress as string | undefined,
    stakeProof: stakeProof === undefined ? undefined : new Uint8Array(Buffer.from((stakeProof as string).slice(2), 'hex')),
    logger: logger as MinerLogger | undefined,
    expectedDigests: expected as Record<string, string>,
    packageCacheDir: cacheDir === undefined ? null : resolve(cacheDir as string),
    ...tuning,
  };
}
