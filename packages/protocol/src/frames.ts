/**
 * Tunnel frames between a node and a miner. One WebSocket per miner, binary messages; each
 * message carries one or more MessagePack-encoded frames back to back (senders batch the frames
 * of one event-loop turn into one message). Every frame is a map with `t` (type) and `v`
 * (protocol version). Bodies are raw bytes (MessagePack bin), never base64.
 *
 * Handshake: miner `hello` -> node `challenge` -> miner `auth` (Ed25519 signature over
 * `authPayload(nonce, nodeId, publicKey)`) -> node `welcome` -> miner `advertise`.
 */
import type { ErrorCode } from './errors.js';

import type { Body } from './body.js';
import type { MeasurementEvent } from './measurement.js';

export const PROTOCOL_VERSION = 1;

export type Tier = 'open' | 'attested' | 'dedicated';
export const TIERS: readonly Tier[] = ['open', 'attested', 'dedicated'];

/** Flat header list: [name0, value0, name1, value1, ...], names lower-case. */
export type HeaderList = string[];

export interface HelloFrame {
  t: 'hello';
  v: number;
  /** Raw 32-byte Ed25519 public key: the miner's identity. */
  publicKey: Uint8Array;
  /** Free text: software and version, e.g. "cgn-miner/0.1.0". */
  agent: string;
  /**
   * The miner sends `beat` frames when the node's welcome asks for them (`beatMs`): the node then
   * does not ping it. Absent from older miners, which the node pings.
   */
  beats?: boolean;
}

export interface ChallengeFrame {
  t: 'challenge';
  v: number;
  nonce: Uint8Array;
  nodeId: string;
}

export interface AuthFrame {
  t: 'auth';
  v: number;
  /** Ed25519 signature (64 bytes) over authPayload(nonce, nodeId, publicKey). */
  signature: Uint8Array;
}

export interface WelcomeFrame {
  t: 'welcome';
  v: number;
  /** The node's id for this miner (hex of its public key). */
  minerId: string;
  /**
   * Interval at which the miner should expect to hear from the node (pings, or for a beating miner
   * the node's own beats); silence for 3x this means a dead tunnel.
   */
  heartbeatMs: number;
  /**
   * Present when the miner said it beats (`hello.beats`): it sends a frame at least this often
   * (a `beat` when it has nothing else to say), and a miner silent for 3x this is dropped. The node
   * then writes nothing to an idle miner but a `beat` of its own about every `heartbeatMs`.
   * Absent from older nodes (they ping).
   */
  beatMs?: number;
  /**
   * The largest message the node accepts from this miner over the tunnel, bytes: a larger one
   * closes the tunnel. A miner answers a unit whose result would not fit with an error instead.
   * Absent from older nodes.
   */
  maxFrameBytes?: number;
}

/** Room a result frame needs beyond its body: headers (16 KiB of characters, up to 2 bytes each), id, metering, hash. */
export const RESULT_FRAME_ROOM_BYTES = 64 * 1024;

/** Whether a result with a body of `bodyBytes` fits in a frame of at most `maxFrameBytes`. */
export function resultFits(bodyBytes: number, maxFrameBytes: number): boolean {
  return bodyBytes + RESULT_FRAME_ROOM_BYTES <= maxFrameBytes;
}

export interface AdvertisedDService {
  name: string;
  version: string;
  /** sha256 hex digest of the DService package as the miner verified it. */
  digest: string;
  /** Work units of this DService the miner runs at once (default: the miner's slots). */
  slots?: number;
}

export interface Resources {
  cpus: number;
  memoryMb: number;
  /** Disk the miner offers DService packages and their scratch space, MB. */
  diskMb?: number;
  /** GPUs it offers (0 or more). */
  gpus?: number;
  /** Its own estimate of its bandwidth, megabits per second (the node's probe measures it too). */
  bandwidthMbps?: number;
}

export interface AdvertiseFrame {
  t: 'advertise';
  v: number;
  tier: Tier;
  /** How many work units the miner runs at once (over all its DServices). */
  slots: number;
  dservices: AdvertisedDService[];
  resources: Resources;
  location?: string;
  /** Data region the miner sits in, e.g. `eu-west` (placement honours an account's regions). */
  region?: string;
  /** The least the miner accepts, in µUSD per CPU-second (placement refuses DServices paying less). */
  priceFloor?: number;
  /** Opaque attestation evidence for the `attested` tier. */
  attestation?: Uint8Array;
  /**
   * The miner's EVM address (0x + 40 hex): where it is paid and, in the `open` tier, whose stake
   * backs its work (slashed when it is proven to return wrong results).
   */
  payoutAddress?: string;
  /**
   * Proof that `payoutAddress` belongs to this miner: the address's EIP-191 `personal_sign`
   * signature (65 bytes) over `stakeBindingMessage(minerId)`. Required for the `open` tier when the
   * node checks stakes, so nobody can borrow (and get slashed) another miner's stake.
   */
  stakeProof?: Uint8Array;
}

/** The text a stake address signs to vouch for a miner key (see `AdvertiseFrame.stakeProof`). */
export function stakeBindingMessage(minerId: string): string {
  return `CGN open-tier stake binding v1\nminer ${minerId.toLowerCase()}`;
}

export interface WorkFrame {
  t: 'work';
  v: number;
  id: string;
  dservice: string;
  method: string;
  /** Path below the DService root, with query string, e.g. "/transform?width=400". */
  path: string;
  headers: HeaderList;
  /**
   * The request body: one buffer, or the pieces it travels in (the chunks of the upload at the
   * node, the WebSocket fragments at the miner; see `Body`).
   */
  body: Body;
  /** Milliseconds the miner may spend before the node gives up on this unit. */
  timeoutMs: number;
}

export interface AckFrame {
  t: 'ack';
  v: number;
  id: string;
}

export interface Metering {
  /** Wall time the DService took, microseconds. */
  execUs: number;
  /** CPU time the DService reported (or the miner measured), microseconds. */
  cpuUs: number;
}

export interface ResultFrame {
  t: 'result';
  v: number;
  id: string;
  status: number;
  headers: HeaderList;
  body: Uint8Array;
  metering: Metering;
  /** sha256 of status and body, used for redundant-execution checks. */
  resultHash: Uint8Array;
}

export interface CancelFrame {
  t: 'cancel';
  v: number;
  id: string;
}

export interface PingFrame {
  t: 'ping';
  v: number;
  ts: number;
}

export interface PongFrame {
  t: 'pong';
  v: number;
  ts: number;
}

/**
 * A heartbeat that asks for no answer: a beating miner's sign of life, and the node's rare sign
 * of life to such a miner (see `WelcomeFrame.beatMs`).
 */
export interface BeatFrame {
  t: 'beat';
  v: number;
}

export interface DrainFrame {
  t: 'drain';
  v: number;
  reason: string;
}

/**
 * Node -> miner, `attested` tier: a fresh nonce to quote over (at admission and periodically).
 * The miner answers with a `quote` within the node's attestation timeout.
 */
export interface AttestFrame {
  t: 'attest';
  v: number;
  nonce: Uint8Array;
}

/** Miner -> node: a TPM 2.0 quote over the attestation PCR and the node's nonce, with the event log. */
export interface QuoteFrame {
  t: 'quote';
  v: number;
  /** The nonce of the `attest` frame this answers. */
  nonce: Uint8Array;
  /** TPMS_ATTEST as the TPM signed it (tpm2_quote -m). */
  quote: Uint8Array;
  /** The signature over `quote` (tpm2_quote -f plain: RSASSA PKCS#1 v1.5 bytes, or a DER ECDSA signature). */
  signature: Uint8Array;
  /** What was extended into the PCR since its reset, in order (runtime first, then DServices). */
  log: MeasurementEvent[];
}

/**
 * Node -> miner: something its owner should know that is not about one work unit, e.g. earnings
 * held because the miner gave no payout address. The miner shows `message` on its console.
 */
export interface NoticeFrame {
  t: 'notice';
  v: number;
  /** What it is about (`earnings_held`), for programs; `message` is for people. */
  kind: string;
  message: string;
}

/**
 * Node -> miner: run an instance of an approved DService. The miner fetches the package archive
 * (gzip'd tar) with an HTTP GET of `packagePath` on the node's miner endpoint (the host, port and
 * TLS trust of the tunnel itself) unless it has `digest` cached, checks the unpacked package's digest, starts it in the
 * sandbox and answers `placed`. When ready, it advertises again with the DService in its list.
 */
export interface PlaceFrame {
  t: 'place';
  v: number;
  /** The node's id for this instance; `placed` and `unplace` name it. */
  instanceId: string;
  name: string;
  version: string;
  /** sha256 hex package digest (see miner/src/digest.ts) the unpacked package must have. */
  digest: string;
  /** Path on the node's miner endpoint serving the archive, e.g. `/v1/packages/<digest>`. */
  packagePath: string;
  /** Size of the archive in bytes; a larger download is cut off. */
  sizeBytes: number;
}

/** Node -> miner: stop an instance (scaled down, or the DService was withdrawn). */
export interface UnplaceFrame {
  t: 'unplace';
  v: number;
  instanceId: string;
  reason: string;
}

/** Miner -> node: how a `place` went. */
export interface PlacedFrame {
  t: 'placed';
  v: number;
  instanceId: string;
  digest: string;
  ok: boolean;
  /** Why it failed (ok false), for the node's log and `explain`. */
  message?: string;
  /** From the `place` frame to the instance answering its health check, ms. */
  coldStartMs: number;
  /** Whether the archive was downloaded (false: it was in the miner's cache). */
  fetched: boolean;
}

/**
 * Node -> miner: the capability probe a newly joined miner runs (the node does not take its
 * advertised CPUs and bandwidth on trust). `chains` sha256 hash chains of `steps` steps each,
 * computed in parallel, from `seed` (see `probe.ts`); the miner returns every `every`-th link of
 * each chain, which the node spot-checks, and echoes `payload` (the node times the round trip).
 * A probe with `chains` 0 only echoes.
 */
export interface ProbeFrame {
  t: 'probe';
  v: number;
  id: string;
  /** 32 random bytes: the chains cannot be computed before the probe arrives. */
  seed: Uint8Array;
  chains: number;
  steps: number;
  /** Checkpoint interval; divides `steps`. */
  every: number;
  payload: Uint8Array;
}

/** Miner -> node: the answer to a `probe`. */
export interface ProbedFrame {
  t: 'probed';
  v: number;
  id: string;
  /** Chain-major, 32 bytes per checkpoint: chain 0's links every, 2 every, ..., steps, then chain 1's, ... */
  checkpoints: Uint8Array;
  /** The probe's payload, echoed. */
  payload: Uint8Array;
  /** What the miner says of itself, not verifiable by the node: memory free for DServices, disk, GPUs. */
  memoryMb: number;
  diskMb: number;
  gpus: number;
}

export interface ErrorFrame {
  t: 'error';
  v: number;
  code: ErrorCode;
  message: string;
  /** Set when the error is about one work unit (the miner could not run it). */
  id?: string;
  retryable?: boolean;
}

export type Frame =
  | HelloFrame
  | ChallengeFrame
  | AuthFrame
  | WelcomeFrame
  | AdvertiseFrame
  | WorkFrame
  | AckFrame
  | ResultFrame
  | CancelFrame
  | PingFrame
  | PongFrame
  | BeatFrame
  | DrainFrame
  | AttestFrame
  | QuoteFrame
  | NoticeFrame
  | PlaceFrame
  | UnplaceFrame
  | PlacedFrame
  | ProbeFrame
  | ProbedFrame
  | ErrorFrame;

export type FrameType = Frame['t'];

/** A work frame as the node sends it (its body may be the chunks the upload arrived in). */
export type OutgoingWorkFrame = WorkFrame;

/** What a sender may queue. */
export type OutgoingFrame = Frame;

/** Frames a miner may send to a node, and a node to a miner. */
export const MINER_TO_NODE: ReadonlySet<FrameType> = new Set<FrameType>([
  'hello', 'auth', 'advertise', 'ack', 'result', 'pong', 'ping', 'beat', 'drain', 'quote', 'placed', 'probed', 'error',
]);
export const NODE_TO_MINER: ReadonlySet<FrameType> = new Set<FrameType>([
  'challenge', 'welcome', 'work', 'cancel', 'ping', 'pong', 'beat', 'drain', 'attest', 'notice', 'place', 'unplace', 'probe', 'error',
]);

/** Distributive Omit so frame constructors can leave out `v`. */
export type FrameInput = OutgoingFrame extends infer F ? (F extends OutgoingFrame ? Omit<F, 'v'> : never) : never;
