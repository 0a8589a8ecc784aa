/**
 * A closing cycle's batch trees built on a worker thread while the store keeps reading rows: the
 * close's wall time was its read plus about a million sha256 calls one after the other; with a
 * second core they overlap. The close is synchronous, so the roots come back through a
 * MessagePort read with `receiveMessageOnPort`, waited for with `Atomics.wait`.
 *
 * The worker runs the very source of `rootInPlace` (merkle.ts), so both threads build the same
 * tree by the same code.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { CgnError } from '@cgn/protocol';
import { rootInPlace } from './merkle.js';

/** Seqs a closing cycle spans from which the stores build its batch trees on a worker thread, by default. */
export const TREE_WORKER_FROM = 65_536;

/** How long the close waits for a batch root without any arriving before it gives up. */
const STALL_MS = 30_000;

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const rootInPlace = ${rootInPlace.toString()};
const hash = typeof crypto.hash === 'function' ? (d) => crypto.hash('sha256', d, 'buffer') : (d) => crypto.createHash('sha256').update(d).digest();
const s = Buffer.alloc(65);
s[0] = 1;
const { port, signal } = workerData;
const posted = new Int32Array(signal);
parentPort.on('message', ({ index, leaves }) => {
  let msg;
  try {
    const buf = Buffer.from(leaves.buffer, leaves.byteOffset, leaves.byteLength);
    msg = { index, root: rootInPlace(buf, buf.length / 32, hash, s).toString('hex') };
  } catch (err) {
    msg = { index, error: String((err && err.message) || err) };
  }
  port.postMessage(msg);
  Atomics.add(posted, 0, 1);
  Atomics.notify(posted, 0);
});
`;

export class TreeHasher {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  /** [0]: results the worker has posted. */
  private readonly posted = new Int32Array(new SharedArrayBuffer(4));
  private sent = 0;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(SOURCE, { eval: true, workerData: { port: port2, signal: this.posted.buffer }, transferList: [port2] });
    this.worker.unref();
  }

  /** Queues the tree of `leaves` (32 bytes each; copied, so the caller may reuse its buffer) as batch `index`. */
  add(index: number, leaves: Uint8Array): void {
    const copy = new Uint8Array(leaves);
    this.worker.postMessage({ index, leaves: copy }, [copy.buffer]);
    this.sent++;
  }

  /** Every queued batch's root (hex) by index, once the worker has built them all. */
  roots(): string[] {
    const out: string[] = new Array(this.sent);
    let got = 0;
    let waited = 0;
    while (got < this.sent) {
      const m = receiveMessageOnPort(this.port) as { message: { index: number; root?: string; error?: string } } | undefined;
      if (m !== undefined) {
        if (m.message.error !== undefined) throw new CgnError('internal', `building batch ${m.message.index}'s Merkle tree failed: ${m.message.error}`);
        out[m.message.index] = m.message.root!;
        got++;
        waited = 0;
        continue;
      }
      if (Atomics.wait(this.posted, 0, got, 1000) === 'timed-out' && (waited += 1000) >= STALL_MS) {
        throw new CgnError('internal', `the batch tree worker returned ${got} of ${this.sent} roots and then nothing for ${STALL_MS / 1000} s; closeCycle again to seal the cycle`);
      }
    }
    return out;
  }

  close(): void {
    this.port.close();
    void this.worker.terminate();
  }
}
