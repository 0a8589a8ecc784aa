/**
 * Field-by-field validation of decoded frames. Anything off is a `CgnError('bad_frame')` that
 * names the frame type and field; nothing here throws anything else.
 */
import { CgnError, isErrorCode } from './errors.js';
import { PROTOCOL_VERSION, TIERS, type Frame, type Tier } from './frames.js';

export const LIMITS = {
  maxIdLength: 128,
  maxNameLength: 128,
  maxPathLength: 8192,
  maxHeaderCount: 256,
  maxHeaderBytes: 64 * 1024,
  maxDServices: 256,
  maxSlots: 4096,
  maxMessageLength: 4096,
  maxTimeoutMs: 24 * 3600 * 1000,
} as const;

type Obj = Record<string, unknown>;

function bad(t: string, field: string, why: string): CgnError {
  return new CgnError('bad_frame', `bad ${t} frame: ${field} ${why}`, { details: { frame: t, field } });
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

function headers(o: Obj, t: string, f: string): void {
  const h = o[f];
  if (!Array.isArray(h)) throw bad(t, f, 'must be a list');
  if (h.length % 2 !== 0) throw bad(t, f, 'must have an even length (name, value pairs)');
  if (h.length > LIMITS.maxHeaderCount * 2) throw bad(t, f, `has more than ${LIMITS.maxHeaderCount} headers`);
  let size = 0;
  for (const x of h) {
    if (typeof x !== 'string') throw bad(t, f, 'must hold only strings');
    size += x.length;
  }
  if (size > LIMITS.maxHeaderBytes) throw bad(t, f, `exceeds ${LIMITS.maxHeaderBytes} bytes`);
}

function tier(o: Obj, t: string, f: string): void {
  if (!TIERS.includes(o[f] as Tier)) throw bad(t, f, `must be one of ${TIERS.join(', ')}`);
}

const MAX_MS = Number.MAX_SAFE_INTEGER;
const MAX_US = Number.MAX_SAFE_INTEGER;

/** Checks that a decoded MessagePack value is a well-formed frame, and narrows its type. */
export function validateFrame(value: unknown): Frame {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new CgnError('bad_frame', 'bad frame: not a map');
  }
  const o = value as Obj;
  const t = o['t'];
  if (typeof t !== 'string') throw new CgnError('bad_frame', 'bad frame: missing type field t');
  if (o['v'] !== PROTOCOL_VERSION) {
    throw new CgnError('bad_frame', `bad ${t} frame: unsupported protocol version ${String(o['v'])} (this side speaks ${PROTOCOL_VERSION})`, {
      details: { frame: t, field: 'v' },
    });
  }
  switch (t) {
    case 'hello':
      bytes(o, t, 'publicKey', 32);
      str(o, t, 'agent', LIMITS.maxNameLength);
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
      str(o, t, 'location', LIMITS.maxNameLength, true);
      bytes(o, t, 'attestation', undefined, true);
      if (o['payoutAddress'] !== undefined && (typeof o['payoutAddress'] !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(o['payoutAddress']))) {
        throw bad(t, 'payoutAddress', 'must be an EVM address (0x + 40 hex digits)');
      }
      break;
    }
    case 'work':
      nonEmpty(o, t, 'id', LIMITS.maxIdLength);
      nonEmpty(o, t, 'dservice', LIMITS.maxNameLength);
      nonEmpty(o, t, 'method', 32);
      nonEmpty(o, t, 'path', LIMITS.maxPathLength);
      headers(o, t, 'headers');
      bytes(o, t, 'body');
      int(o, t, 'timeoutMs', 1, LIMITS.maxTimeoutMs);
      break;
    case 'ack':
    case 'cancel':
      nonEmpty(o, t, 'id', LIMITS.maxIdLength);
      break;
    case 'result': {
      nonEmpty(o, t, 'id', LIMITS.maxIdLength);
      int(o, t, 'status', 100, 599);
      headers(o, t, 'headers');
      bytes(o, t, 'body');
      const m = o['metering'];
      if (m === null || typeof m !== 'object') throw bad(t, 'metering', 'must be a map');
      int(m as Obj, t, 'execUs', 0, MAX_US);
      int(m as Obj, t, 'cpuUs', 0, MAX_US);
      bytes(o, t, 'resultHash', 32);
      break;
    }
    case 'ping':
    case 'pong':
      int(o, t, 'ts', 0, MAX_MS);
      break;
    case 'drain':
      str(o, t, 'reason', LIMITS.maxMessageLength);
      break;
    case 'error':
      if (!isErrorCode(o['code'])) throw bad(t, 'code', 'is not a known error code');
      str(o, t, 'message', LIMITS.maxMessageLength);
      str(o, t, 'id', LIMITS.maxIdLength, true);
      bool(o, t, 'retryable', true);
      break;
    default:
      throw new CgnError('bad_frame', `bad frame: unknown type ${JSON.stringify(t).slice(0, 40)}`, { details: { frame: t } });
  }
  return o as unknown as Frame;
}
