/**
 * Hostile miners against the node's miner port. Each case is one connection with a fresh key:
 * it completes the handshake up to a phase (nothing, hello, auth, advertise) or until it holds a
 * real work unit (a DApp request sent for the purpose), then attacks: random bytes, text, frames
 * with mutated fields, frames out of order, nesting bombs, batches — or, holding real work, a
 * crafted result (interim or absurd status, headers HTTP cannot carry, bad metering, a wrong id,
 * duplicates, a lying error frame, silence). What the node answers is checked: error frames within
 * the protocol's text limit and escaped; the DApp's request always answered, never with a 500.
 */
import { WebSocket } from 'ws';
import { Packr } from 'msgpackr';
import {
  LIMITS, PROTOCOL_VERSION, decodeMessage, encodeMessage, frame, joinBody, minerKeyFromSeed, signChallenge,
  type Frame, type MinerKeyPair, type WorkFrame,
} from '@cgn/protocol';
import { deepArrayBytes, hostileNumber, hostileString, hostileValue, setField } from './hostile.js';
import type { Rng } from './rng.js';

/**
 * How long a handshake answer may take. The fuzz asks whether the node answers at all, not how
 * fast: 48 hostile cases in flight on a loaded 2-core CI machine (load 20) delayed challenges past
 * the 3 s this was, and every case then failed as 'no challenge'.
 */
const NODE_ANSWER_MS = 20_000;

const packr = new Packr({ useRecords: false, variableMapSize: true });

export type TunnelPhase = 'connect' | 'hello' | 'auth' | 'ready' | 'work';

export interface TunnelContext {
  minerUrl: string;
  /** Sends a DApp request to echo in the dedicated tier (for the work phase); resolves with its status (null: no answer). */
  dappRequest: (body: Buffer, deadlineMs: number) => Promise<number | null>;
}

export interface TunnelOutcome {
  what: string;
  /** Problems found (empty: the node behaved). */
  problems: string[];
  /** Status the DApp got in the work phase. */
  dappStatus?: number | null;
  closeCode?: number;
}

const NODE_FRAMES = ['challenge', 'welcome', 'work', 'cancel', 'attest', 'notice'];
const MINER_FRAMES = ['hello', 'auth', 'advertise', 'ack', 'result', 'pong', 'ping', 'drain', 'quote', 'error'];

/** A plausible frame of type `t`, the base for mutations. */
function plausible(t: string, rng: Rng, workId: string): Record<string, unknown> {
  const id = rng.chance(0.7) ? workId : hostileString(rng, 200);
  switch (t) {
    case 'hello':
      return { t, v: 1, publicKey: rng.bytes(32), agent: 'fuzz' };
    case 'auth':
      return { t, v: 1, signature: rng.bytes(64) };
    case 'advertise':
      return { t, v: 1, tier: 'open', slots: 1, dservices: [{ name: rng.pick(['echo', 'fuzz-only']), version: '0', digest: 'x' }], resources: { cpus: 1, memoryMb: 64 } };
    case 'ack':
    case 'cancel':
      return { t, v: 1, id };
    case 'result':
      return { t, v: 1, id, status: 200, headers: ['content-type', 'text/plain'], body: Buffer.from('fuzz'), metering: { execUs: 10, cpuUs: 10 }, resultHash: rng.bytes(32) };
    case 'error':
      return { t, v: 1, code: rng.pick(['miner_failed', 'bad_frame', 'internal', 'draining', 'nope']), message: hostileString(rng, 10_000), id, retryable: rng.chance(0.5) };
    case 'drain':
      return { t, v: 1, reason: hostileString(rng, 10_000) };
    case 'quote':
      return { t, v: 1, nonce: rng.bytes(32), quote: rng.bytes(rng.int(0, 400)), signature: rng.bytes(256), log: [{ kind: 'runtime', name: 'cgn-miner', digest: rng.bytes(32).toString('hex') }] };
    case 'attest':
      return { t, v: 1, nonce: rng.bytes(32) };
    case 'notice':
      return { t, v: 1, kind: 'earnings_held', message: hostileString(rng, 10_000) };
    case 'ping':
    case 'pong':
      return { t, v: 1, ts: Date.now() };
    case 'challenge':
      return { t, v: 1, nonce: rng.bytes(32), nodeId: 'x' };
    case 'welcome':
      return { t, v: 1, minerId: 'x', heartbeatMs: 1000 };
    default:
      return { t, v: 1, id, dservice: 'echo', method: 'GET', path: '/', headers: [], body: Buffer.alloc(0), timeoutMs: 1000 };
  }
}

function mutateFields(o: Record<string, unknown>, rng: Rng): Record<string, unknown> {
  const keys = Object.keys(o);
  for (let n = rng.int(1, 3); n > 0; n--) {
    const action = rng.int(0, 3);
    const k = rng.pick(keys);
    if (action === 0) o[k] = hostileValue(rng);
    else if (action === 1) delete o[k];
    else if (action === 2) setField(o, hostileString(rng, 30), hostileValue(rng));
    else if (typeof o[k] === 'number') o[k] = hostileNumber(rng);
    else if (typeof o[k] === 'string') o[k] = hostileString(rng);
  }
  return o;
}

/** One hostile message (the bytes of one WebSocket message, or text). */
function attackMessage(rng: Rng, workId: string): { what: string; data: Buffer | string } {
  const kind = rng.weighted([[2, 'bytes'], [1, 'text'], [6, 'mutated'], [2, 'hostile-map'], [1, 'deep'], [2, 'batch'], [1, 'truncated'], [3, 'out-of-order']] as const);
  switch (kind) {
    case 'bytes':
      return { what: 'random bytes', data: rng.bytes(rng.size(10_000) + 1) };
    case 'text':
      return { what: 'a text message', data: hostileString(rng, 1000) };
    case 'mutated': {
      const t = rng.pick([...MINER_FRAMES, ...NODE_FRAMES]);
      return { what: `a mutated ${t} frame`, data: packr.pack(mutateFields(plausible(t, rng, workId), rng)) };
    }
    case 'hostile-map': {
      const m = hostileValue(rng);
      const o = typeof m === 'object' && m !== null && !Array.isArray(m) && !(m instanceof Uint8Array) ? (m as Record<string, unknown>) : { x: m };
      o['t'] = rng.chance(0.5) ? rng.pick(MINER_FRAMES) : hostileString(rng, 100_000);
      if (rng.chance(0.7)) o['v'] = rng.chance(0.5) ? PROTOCOL_VERSION : hostileValue(rng);
      return { what: 'a hostile map', data: packr.pack(o) };
    }
    case 'deep': {
      const at = rng.pick(['t', 'v', 'id', 'headers']);
      const head = packr.pack({ t: 'result', v: 1 });
      return { what: `an array nested 5000 deep in ${at}`, data: Buffer.concat([Buffer.from([head[0]! + 1]), head.subarray(1), packr.pack(at), deepArrayBytes(5000)]) };
    }
    case 'batch': {
      const parts = Array.from({ length: rng.int(2, 6) }, () => (rng.chance(0.5) ? packr.pack(plausible('ping', rng, workId)) : packr.pack(mutateFields(plausible(rng.pick(MINER_FRAMES), rng, workId), rng))));
      return { what: `a batch of ${parts.length} frames`, data: Buffer.concat(parts) };
    }
    case 'truncated': {
      const f = packr.pack(plausible(rng.pick(MINER_FRAMES), rng, workId));
      return { what: 'a truncated frame', data: f.subarray(0, rng.int(1, Math.max(1, f.length - 1))) };
    }
    default: {
      const t = rng.pick([...MINER_FRAMES, ...NODE_FRAMES]);
      return { what: `a well-formed ${t} frame out of order`, data: packr.pack(plausible(t, rng, workId)) };
    }
  }
}

/** A crafted answer to a real work unit: result rules broken in one way or another. */
function craftedAnswer(rng: Rng, w: WorkFrame): { what: string; messages: Buffer[]; close: boolean } {
  const base = (): Record<string, unknown> => ({ t: 'result', v: 1, id: w.id, status: 200, headers: ['content-type', 'text/plain'], body: Buffer.from(joinBody(w.body)), metering: { execUs: 100, cpuUs: 100 }, resultHash: Buffer.alloc(32) });
  const kind = rng.weighted([[2, 'status'], [2, 'header-value'], [1, 'header-name'], [1, 'header-size'], [2, 'metering'], [1, 'hash'], [1, 'duplicate'], [1, 'wrong-id'], [2, 'error'], [1, 'silence'], [1, 'hang-up'], [2, 'mutated'], [1, 'valid']] as const);
  const r = base();
  switch (kind) {
    case 'status':
      r['status'] = rng.chance(0.5) ? rng.int(100, 199) : hostileNumber(rng);
      break;
    case 'header-value':
      r['headers'] = ['x-fuzz', rng.pick(['snow \u2603', 'a\r\nset-cookie: x=1', '\u0000', '\u0100', hostileString(rng, 300)])];
      break;
    case 'header-name':
      r['headers'] = [rng.pick(['bad name', '', 'a:b', '\u00e9', hostileString(rng, 50)]), 'v'];
      break;
    case 'header-size':
      r['headers'] = rng.chance(0.5) ? ['x-big', 'a'.repeat(rng.int(16_000, 70_000))] : Array.from({ length: rng.int(250, 300) }, (_, i) => [`x-${i}`, 'v']).flat();
      break;
    case 'metering':
      r['metering'] = rng.chance(0.3) ? hostileValue(rng) : { execUs: hostileNumber(rng), cpuUs: hostileNumber(rng) };
      break;
    case 'hash':
      r['resultHash'] = rng.bytes(rng.pick([0, 31, 33, 64]));
      break;
    case 'duplicate':
      return { what: 'the same result twice', messages: [packr.pack(r), packr.pack(r)], close: false };
    case 'wrong-id':
      r['id'] = rng.chance(0.5) ? `${w.id}x` : hostileString(rng, 200);
      return { what: 'a result for another id', messages: [packr.pack(r)], close: rng.chance(0.5) };
    case 'error':
      return { what: 'an error frame for the unit', messages: [packr.pack(rng.chance(0.5) ? plausible('error', rng, w.id) : mutateFields(plausible('error', rng, w.id), rng))], close: false };
    case 'silence':
      return { what: 'an ack and then nothing', messages: [packr.pack({ t: 'ack', v: 1, id: w.id })], close: false };
    case 'hang-up':
      return { what: 'hanging up while holding the unit', messages: [], close: true };
    case 'mutated':
      mutateFields(r, rng);
      break;
    default:
      return { what: 'a valid result', messages: [packr.pack(r)], close: false };
  }
  return { what: `a result with a broken ${kind}`, messages: [packr.pack(r)], close: false };
}

function printable(s: string): boolean {
  return /^[\x20-\x7e\u2026]*$/.test(s);
}

/**
 * The first draws of a tunnel case: its phase and its key (from the case's seed, so the network can
 * grant the dedicated tier to the keys of cases that advertise before the cases run).
 */
export function tunnelCaseStart(rng: Rng): { phase: TunnelPhase; key: MinerKeyPair } {
  const phase = rng.weighted([[1, 'connect'], [1, 'hello'], [1, 'auth'], [3, 'ready'], [3, 'work']] as const);
  return { phase, key: minerKeyFromSeed(rng.bytes(32)) };
}

/** Phases whose miner advertises: their keys are granted the dedicated tier (`tunnelCaseStart`). */
export const ADVERTISING_PHASES: readonly TunnelPhase[] = ['ready', 'work'];

export async function tunnelCase(rng: Rng, ctx: TunnelContext): Promise<TunnelOutcome> {
  const { phase, key } = tunnelCaseStart(rng);
  const problems: string[] = [];
  const ws = new WebSocket(ctx.minerUrl, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  const received: Frame[] = [];
  let closeCode: number | undefined;
  let onFrame: ((f: Frame) => void) | null = null;
  const closed = new Promise<void>((resolve) => ws.once('close', (code) => {
    closeCode = code;
    resolve();
  }));
  ws.on('error', () => {});
  ws.on('message', (data: Buffer) => {
    let frames: Frame[];
    try {
      frames = decodeMessage(data);
    } catch (err) {
      problems.push(`the node sent a frame that does not decode: ${(err as Error).message.slice(0, 200)}`);
      return;
    }
    for (const f of frames) {
      received.push(f);
      if (f.t === 'error') {
        if (f.message.length > LIMITS.maxMessageLength) problems.push(`error frame of ${f.message.length} characters`);
        if (!printable(f.message)) problems.push(`error frame with unescaped characters: ${JSON.stringify(f.message.slice(0, 80))}`);
      }
      if (f.t === 'ping') ws.send(encodeMessage([frame({ t: 'pong', ts: f.ts })]));
      onFrame?.(f);
    }
  });
  const next = (pred: (f: Frame) => boolean, ms: number): Promise<Frame | null> =>
    new Promise((resolve) => {
      const have = received.find(pred);
      if (have !== undefined) return resolve(have);
      const timer = setTimeout(() => done(null), ms);
      const done = (f: Frame | null): void => {
        clearTimeout(timer);
        onFrame = null;
        resolve(f);
      };
      onFrame = (f) => pred(f) && done(f);
      void closed.then(() => done(null));
    });
  const opened = await new Promise<boolean>((resolve) => {
    ws.once('open', () => resolve(true));
    void closed.then(() => resolve(false));
  });
  if (!opened) return { what: `connect (${phase})`, problems: ['could not open a WebSocket to the miner port'] };
  let what = `at ${phase}: `;
  let dapp: Promise<number | null> | null = null;
  try {
    if (phase !== 'connect') {
      ws.send(encodeMessage([frame({ t: 'hello', publicKey: key.publicKey, agent: 'fuzz' })]));
      const ch = await next((f) => f.t === 'challenge', NODE_ANSWER_MS);
      if (ch === null || ch.t !== 'challenge') return { what: `${what}no challenge`, problems: ['the node sent no challenge'] };
      if (phase !== 'hello') {
        ws.send(encodeMessage([frame({ t: 'auth', signature: signChallenge(key, ch.nonce, ch.nodeId) })]));
        const wel = await next((f) => f.t === 'welcome', NODE_ANSWER_MS);
        if (wel === null) return { what: `${what}no welcome`, problems: ['the node sent no welcome'] };
        if (phase !== 'auth') {
          // Holding work: the dedicated tier, where no real miner competes for the DApp request
          // sent for it (the network granted it to this case's key). Otherwise mostly dedicated
          // too, so the real miner keeps most open-tier work; now and then the open tier, where it
          // steals work from the real miner and never answers it, or attested, which it was not
          // granted (no attestation key): the node must refuse it with an error frame.
          const tier = phase === 'work' ? 'dedicated' : rng.weighted([[16, 'dedicated'], [4, 'open'], [1, 'attested']] as const);
          ws.send(encodeMessage([frame({ t: 'advertise', tier, slots: 1, dservices: [{ name: 'echo', version: '0', digest: 'x' }], resources: { cpus: 1, memoryMb: 64 } })]));
        }
      }
    }
    if (phase === 'work') {
      // Requests until this miner holds one (the real miner may take the first ones).
      let work: WorkFrame | null = null;
      const statuses: Promise<number | null>[] = [];
      for (let i = 0; i < 4 && work === null; i++) {
        statuses.push(ctx.dappRequest(rng.bytes(rng.int(1, 2000)), 800));
        work = (await next((f) => f.t === 'work', 300)) as WorkFrame | null;
      }
      if (work === null) {
        await Promise.all(statuses);
        return { what: `${what}no work reached this miner`, problems };
      }
      const a = craftedAnswer(rng, work);
      what += a.what;
      for (const m of a.messages) ws.send(m);
      if (a.close) ws.terminate();
      dapp = Promise.all(statuses).then((s) => s[s.length - 1] ?? null);
      const results = await Promise.all(statuses);
      for (const s of results) {
        if (s === null) problems.push('the DApp request got no answer (hang)');
        else if (s === 500) problems.push('the DApp request got a 500');
      }
    } else {
      const n = rng.int(1, 3);
      for (let i = 0; i < n && ws.readyState === WebSocket.OPEN; i++) {
        const m = attackMessage(rng, 'w_unknown');
        what += (i > 0 ? ', ' : '') + m.what;
        ws.send(m.data, { binary: typeof m.data !== 'string' });
      }
      // The node answers a bad frame by closing; give it a moment to say why.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 50))]);
    }
  } finally {
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
    await closed;
  }
  return { what, problems, ...(dapp !== null ? { dappStatus: await dapp } : {}), ...(closeCode !== undefined ? { closeCode } : {}) };
}
