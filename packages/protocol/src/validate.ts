/**
 * Field-by-field validation of decoded frames. Anything off is a `CgnError('bad_frame')` that
 * names the frame type and field; nothing here throws anything else, whatever the value (a
 * value that cannot even be described is still a `bad_frame`). Messages quote the peer's data
 * only as bounded, escaped excerpts.
 *
 * The limits are the protocol's, on both sides: the node checks a DApp's request against them
 * before it becomes a work frame (`workFrameProblem`), so it never forwards a frame a miner must
 * refuse; a result must be something a Node HTTP server can write to the DApp as it is (a final
 * status, token header names, header values of Latin-1 text without control characters, at most
 * `maxResultHeaderBytes` of headers), so a miner's answer can never hang, crash or fail a response
 * after it was charged.
 */
import { CgnError, isErrorCode } from './errors.js';
import { PROTOCOL_VERSION, TIERS, type Frame, type Tier } from './frames.js';
import { describeValue } from './excerpt.js';

export const LIMITS = {
  maxIdLength: 128,
  maxNameLength: 128,
  maxPathLength: 8192,
  maxHeaderCount: 256,
  /** Bytes of a work frame's headers, counted as on the wire (`name: value\r\n`). */
  maxHeaderBytes: 64 * 1024,
  /** Bytes of a result's headers, counted as on the wire; what Node's own HTTP client accepts. */
  maxResultHeaderBytes: 16 * 1024,
  maxTypeLength: 32,
  maxDServices: 256,
  maxSlots: 4096,
  maxMessageLength: 4096,
  /** The least frame limit a node may announce in `welcome` (a result's room beyond its body, and some). */
  minAnnouncedFrameBytes: 128 * 1024,
  maxTimeoutMs: 24 * 3600 * 1000,
  /** Most CPU time one result may report, µs: a whole day on 1,024 cores. More is not a measurement. */
  maxCpuUs: 24 * 3600 * 1_000_000 * 1024,
  /** Capability probe: parallel hash chains, steps per chain, checkpoints per chain, echoed payload bytes. */
  maxProbeChains: 64,
  maxProbeSteps: 1 << 22,
  maxProbeCheckpoints: 1024,
  maxProbePayloadBytes: 4 * 1024 * 1024,
  /** Largest DService package archive, bytes (central refuses larger uploads). */
  maxPackageBytes: 64 * 1024 * 1024,
} as const;

type Obj = Record<string, unknown>;

function bad(t: string, field: string, why: string): CgnError {
  return new CgnError('bad_frame', `bad ${t} frame: ${field} ${why}`, { details: { frame: t, field, why } });
}

function str(o: Obj, t: string, f: string, max: number, optional = false): void {
  const x = o[f];
  if (x === undefined && optional) return;
  if (typeof x !== 'string') throw bad(t, f, 'must be a string');
  if (x.length > max) throw bad(t, f, `is longer than ${max}`);
}

function nonEmpty(o: Obj, t: string, f: string, max: number): void {
  str(o, t, f, max);
  if ((o[f] as string).length === 0) throw bad(t, f, 'must not be empty');
}

function int(o: Obj, t: string, f: string, min: number, max: number): void {
  const x = o[f];
  if (typeof x !== 'number' || !Number.isInteger(x)) throw bad(t, f, 'must be an integer');
  if (x < min || x > max) throw bad(t, f, `must be between ${min} and ${max}`);
}

function bytes(o: Obj, t: string, f: string, exactLength?: number, optional = false): void {
  const x = o[f];
  if (x === undefined && optional) return;
  if (!(x instanceof Uint8Array)) throw bad(t, f, 'must be binary');
  if (exactLength !== undefined && x.length !== exactLength) throw bad(t, f, `must be ${exactLength} bytes`);
}

function bool(o: Obj, t: string, f: string, optional = false): void {
  const x = o[f];
  if (x === undefined && optional) return;
  if (typeof x !== 'boolean') throw bad(t, f, 'must be a boolean');
}

/** An HTTP token (RFC 9110), as Node's `validateHeaderName` accepts it. */
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header value Node's HTTP server writes: Latin-1 text, tab allowed, no other control character. */
const HTTP_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Whether a Node HTTP server can write this header as it is. */
export function isWritableHeader(name: string, value: string): boolean {
  return HTTP_TOKEN.test(name) && HTTP_VALUE.test(value);
}

function headers(o: Obj, t: string, f: string, maxBytes: number, http: boolean): void {
  const h = o[f];
  if (!Array.isArray(h)) throw bad(t, f, 'must be a list');
  if (h.length % 2 !== 0) throw bad(t, f, 'must have an even length (name, value pairs)');
  if (h.length > LIMITS.maxHeaderCount * 2) throw bad(t, f, `has more than ${LIMITS.maxHeaderCount} headers`);
  let size = 0;
  for (let i = 0; i < h.length; i++) {
    const x: unknown = h[i];
    if (typeof x !== 'string') throw bad(t, f, 'must hold only strings');
    size += x.length + 2; // "name: " or "value\r\n"
    if (size > maxBytes) throw bad(t, f, `exceed ${maxBytes} bytes`);
    if (!http) continue;
    if (i % 2 === 0 && !HTTP_TOKEN.test(x)) throw bad(t, f, `name ${describeValue(x)} is not an HTTP token`);
    if (i % 2 === 1 && !HTTP_VALUE.test(x)) throw bad(t, f, `value of ${describeValue(h[i - 1])} holds a character HTTP cannot carry`);
  }
}

function tier(o: Obj, t: string, f: string): void {
  if (!TIERS.includes(o[f] as Tier)) throw bad(t, f, `must be one of ${TIERS.join(', ')}`);
}

const MAX_MS = Number.MAX_SAFE_INTEGER;

function hexDigest(o: Obj, t: string, f: string): void {
  if (typeof o[f] !== 'string' || !/^[0-9a-f]{64}$/.test(o[f] as string)) throw bad(t, f, 'must be 64 lower-case hex (a sha256 digest)');
}

/** Checks that a decoded MessagePack value is a well-formed frame, and narrows its type. */
export function validateFrame(value: unknown): Frame {
  try {
    return checkFrame(value);
  } catch (err) {
    if (err instanceof CgnError) throw err;
    // A getter, a proxy, a stack overflow: whatever it was, the frame is not one.
    throw new CgnError('bad_frame', 'bad frame: a value that cannot be read', { cause: err });
  }
}

/** The reason `value` is not a valid frame, or null when it is one (for checks that do not throw). */
export function frameProblem(value: unknown): CgnError | null {
  try {
    validateFrame(value);
    return null;
  } catch (err) {
    return err as CgnError;
  }
}

const NO_BODY = new Uint8Array(0);

/**
 * Whether a request's method, path and (forwarded) headers fit in a work frame a miner accepts:
 * null, or the `bad_frame` error naming the field (`details.field`: method, path or headers).
 */
export function workRequestProblem(method: string, path: string, headerList: readonly string[]): CgnError | null {
  return frameProblem({ t: 'work', v: PROTOCOL_VERSION, id: 'w', dservice: 'd', method, path, headers: headerList, body: NO_BODY, timeoutMs: 1 });
}

function checkFrame(value: unknown): Frame {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new CgnError('bad_frame', 'bad frame: not a map');
  }
  const o = value as Obj;
  const t = o['t'];
  if (typeof t !== 'string') throw new CgnError('bad_frame', 'bad frame: missing type field t');
  if (t.length > LIMITS.maxTypeLength || !/^[a-z]+$/.test(t)) {
    throw new CgnError('bad_frame', `bad frame: unknown type ${describeValue(t)}`, { details: { field: 't' } });
  }
  if (o['v'] !== PROTOCOL_VERSION) {
    throw new CgnError('bad_frame', `bad ${t} frame: unsupported protocol version ${describeValue(o['v'])} (this side speaks ${PROTOCOL_VERSION})`, {
      details: { frame: t, field: 'v' },
    });
  }
  switch (t) {
    case 'hello':
      bytes(o, t, 'publicKey', 32);
      str(o, t, 'agent', LIMITS.maxNameLength);
      if (o['beats'] !== undefined && typeof o['beats'] !== 'boolean') throw bad(t, 'beats', 'must be true or false');
      break;
    case 'challenge':
      bytes(o, t, 'nonce', 32);
      nonEmpty(o, t, 'nodeId', LIMITS.maxIdLength);
      break;
    case 'auth':
      bytes(o, t, 'signature', 64);
      break;
    case 'welcome':
      nonEmpty(o, t, 'minerId', LIMITS.maxIdLength);
      int(o, t, 'heartbeatMs', 1, MAX_MS);
      if (o['beatMs'] !== undefined) int(o, t, 'beatMs', 1, MAX_MS);
      if (o['maxFrameBytes'] !== undefined) int(o, t, 'maxFrameBytes', LIMITS.minAnnouncedFrameBytes, 2 ** 32);
      break;
    case 'advertise': {
      tier(o, t, 'tier');
      int(o, t, 'slots', 1, LIMITS.maxSlots);
      const ds = o['dservices'];
      if (!Array.isArray(ds)) throw bad(t, 'dservices', 'must be a list');
      if (ds.length > LIMITS.maxDServices) throw bad(t, 'dservices', `has more than ${LIMITS.maxDServices} entries`);
      for (const d of ds) {
        if (d === null || typeof d !== 'object') throw bad(t, 'dservices', 'must hold maps');
        nonEmpty(d as Obj, t, 'name', LIMITS.maxNameLength);
        str(d as Obj, t, 'version', LIMITS.maxNameLength);
        nonEmpty(d as Obj, t, 'digest', LIMITS.maxNameLength);
        if ((d as Obj)['slots'] !== undefined) int(d as Obj, t, 'slots', 1, LIMITS.maxSlots);
      }
      const r = o['resources'];
      if (r === null || typeof r !== 'object') throw bad(t, 'resources', 'must be a map');
      int(r as Obj, t, 'cpus', 0, 1 << 20);
      int(r as Obj, t, 'memoryMb', 0, MAX_MS);
      for (const k of ['diskMb', 'gpus', 'bandwidthMbps']) if ((r as Obj)[k] !== undefined) int(r as Obj, t, k, 0, MAX_MS);
      str(o, t, 'location', LIMITS.maxNameLength, true);
      str(o, t, 'region', LIMITS.maxNameLength, true);
      if (o['priceFloor'] !== undefined) int(o, t, 'priceFloor', 0, MAX_MS);
      bytes(o, t, 'attestation', undefined, true);
      if (o['payoutAddress'] !== undefined && (typeof o['payoutAddress'] !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(o['payoutAddress']))) {
        throw bad(t, 'payoutAddress', 'must be an EVM address (0x and 40 hex digits)');
      }
      bytes(o, t, 'stakeProof', 65, true);
      break;
    }
    case 'work':
      nonEmpty(o, t, 'id', LIMITS.maxIdLength);
      nonEmpty(o, t, 'dservice', LIMITS.maxNameLength);
      nonEmpty(o, t, 'method', 32);
      nonEmpty(o, t, 'path', LIMITS.maxPathLength);
      headers(o, t, 'headers', LIMITS.maxHeaderBytes, false);
      bytes(o, t, 'body');
      int(o, t, 'timeoutMs', 1, LIMITS.maxTimeoutMs);
      break;
    case 'ack':
    case 'cancel':
      nonEmpty(o, t, 'id', LIMITS.maxIdLength);
      break;
    case 'result': {
      nonEmpty(o, t, 'id', LIMITS.maxIdLength);
      // A final status: an interim 1xx would leave the DApp waiting for an answer that never comes.
      int(o, t, 'status', 200, 599);
      headers(o, t, 'headers', LIMITS.maxResultHeaderBytes, true);
      bytes(o, t, 'body');
      const m = o['metering'];
      if (m === null || typeof m !== 'object') throw bad(t, 'metering', 'must be a map');
      // Whole non-negative microseconds within what a unit can take: anything else is no measurement.
      int(m as Obj, t, 'execUs', 0, LIMITS.maxTimeoutMs * 1000);
      int(m as Obj, t, 'cpuUs', 0, LIMITS.maxCpuUs);
      bytes(o, t, 'resultHash', 32);
      break;
    }
    case 'ping':
    case 'pong':
      int(o, t, 'ts', 0, MAX_MS);
      break;
    case 'beat':
      break;
    case 'drain':
      str(o, t, 'reason', LIMITS.maxMessageLength);
      break;
    case 'attest':
      bytes(o, t, 'nonce', 32);
      break;
    case 'quote': {
      bytes(o, t, 'nonce', 32);
      bytes(o, t, 'quote');
      bytes(o, t, 'signature');
      if ((o['quote'] as Uint8Array).length > 2048) throw bad(t, 'quote', 'is longer than 2048 bytes (a TPMS_ATTEST is a few hundred)');
      if ((o['signature'] as Uint8Array).length > 1024) throw bad(t, 'signature', 'is longer than 1024 bytes');
      const log = o['log'];
      if (!Array.isArray(log)) throw bad(t, 'log', 'must be a list');
      if (log.length > LIMITS.maxDServices + 1) throw bad(t, 'log', `has more than ${LIMITS.maxDServices + 1} events`);
      for (const e of log) {
        if (e === null || typeof e !== 'object' || Array.isArray(e)) throw bad(t, 'log', 'must hold maps');
        const ev = e as Obj;
        if (ev['kind'] !== 'runtime' && ev['kind'] !== 'dservice') throw bad(t, 'log', 'event kind must be runtime or dservice');
        nonEmpty(ev, t, 'name', LIMITS.maxNameLength);
        if (typeof ev['digest'] !== 'string' || !/^[0-9a-f]{64}$/.test(ev['digest'])) throw bad(t, 'log', 'event digest must be 64 lower-case hex');
      }
      break;
    }
    case 'notice':
      nonEmpty(o, t, 'kind', LIMITS.maxNameLength);
      str(o, t, 'message', LIMITS.maxMessageLength);
      break;
    case 'place':
      nonEmpty(o, t, 'instanceId', LIMITS.maxIdLength);
      nonEmpty(o, t, 'name', LIMITS.maxNameLength);
      str(o, t, 'version', LIMITS.maxNameLength);
      hexDigest(o, t, 'digest');
      nonEmpty(o, t, 'packagePath', LIMITS.maxPathLength);
      if (!(o['packagePath'] as string).startsWith('/')) throw bad(t, 'packagePath', 'must be a path starting with /');
      int(o, t, 'sizeBytes', 1, LIMITS.maxPackageBytes);
      break;
    case 'unplace':
      nonEmpty(o, t, 'instanceId', LIMITS.maxIdLength);
      str(o, t, 'reason', LIMITS.maxMessageLength);
      break;
    case 'placed':
      nonEmpty(o, t, 'instanceId', LIMITS.maxIdLength);
      hexDigest(o, t, 'digest');
      bool(o, t, 'ok');
      str(o, t, 'message', LIMITS.maxMessageLength, true);
      int(o, t, 'coldStartMs', 0, LIMITS.maxTimeoutMs);
      bool(o, t, 'fetched');
      break;
    case 'probe': {
      nonEmpty(o, t, 'id', LIMITS.maxIdLength);
      bytes(o, t, 'seed', 32);
      int(o, t, 'chains', 0, LIMITS.maxProbeChains);
      int(o, t, 'steps', 0, LIMITS.maxProbeSteps);
      int(o, t, 'every', 1, LIMITS.maxProbeSteps);
      const steps = o['steps'] as number;
      const every = o['every'] as number;
      if (steps % every !== 0) throw bad(t, 'every', 'must divide steps');
      if (steps / every > LIMITS.maxProbeCheckpoints) throw bad(t, 'every', `must leave at most ${LIMITS.maxProbeCheckpoints} checkpoints per chain`);
      bytes(o, t, 'payload');
      if ((o['payload'] as Uint8Array).length > LIMITS.maxProbePayloadBytes) throw bad(t, 'payload', `is longer than ${LIMITS.maxProbePayloadBytes} bytes`);
      break;
    }
    case 'probed':
      nonEmpty(o, t, 'id', LIMITS.maxIdLength);
      bytes(o, t, 'checkpoints');
      if ((o['checkpoints'] as Uint8Array).length > LIMITS.maxProbeChains * LIMITS.maxProbeCheckpoints * 32) throw bad(t, 'checkpoints', 'holds more checkpoints than any probe asks for');
      if ((o['checkpoints'] as Uint8Array).length % 32 !== 0) throw bad(t, 'checkpoints', 'must be a whole number of 32-byte hashes');
      bytes(o, t, 'payload');
      if ((o['payload'] as Uint8Array).length > LIMITS.maxProbePayloadBytes) throw bad(t, 'payload', `is longer than ${LIMITS.maxProbePayloadBytes} bytes`);
      int(o, t, 'memoryMb', 0, MAX_MS);
      int(o, t, 'diskMb', 0, MAX_MS);
      int(o, t, 'gpus', 0, 1 << 16);
      break;
    case 'error':
      if (!isErrorCode(o['code'])) throw bad(t, 'code', 'is not a known error code');
      str(o, t, 'message', LIMITS.maxMessageLength);
      str(o, t, 'id', LIMITS.maxIdLength, true);
      bool(o, t, 'retryable', true);
      break;
    default:
      throw new CgnError('bad_frame', `bad frame: unknown type ${describeValue(t)}`, { details: { field: 't' } });
  }
  return o as unknown as Frame;
}
