/**
 * A raw HTTP/1.1 exchange over one TCP connection: writes the given bytes as they are (so
 * malformed requests stay malformed), reads the answer, and says how it ended. Never throws.
 */
import { connect } from 'node:net';

export interface Exchange {
  /** Status of the answer, null when the connection closed without one. */
  status: number | null;
  headers: Map<string, string>;
  bodyLength: number;
  /** The connection was still open, with no complete answer, after `timeoutMs`. */
  hung: boolean;
  ms: number;
}

export interface ExchangeOptions {
  /** Pieces written one after another (each in its own write). */
  pieces: readonly Buffer[];
  timeoutMs: number;
  /** Stop writing and close after this many pieces (an abandoned upload). */
  abortAfter?: number;
}

function parseHead(head: string): { status: number | null; headers: Map<string, string> } {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  return { status: m === null ? null : Number(m[1]), headers };
}

export function exchange(port: number, opts: ExchangeOptions): Promise<Exchange> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let head: { status: number | null; headers: Map<string, string> } | null = null;
    let bodyStart = 0;
    let done = false;
    const finish = (hung: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const bodyLength = head === null ? 0 : buf.length - bodyStart;
      resolve({ status: head?.status ?? null, headers: head?.headers ?? new Map(), bodyLength, hung, ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish(true), opts.timeoutMs);
    socket.on('error', () => {
      /* the answer so far, or none, is what counts; 'close' follows */
    });
    socket.on('close', () => finish(false));
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (head === null) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          head = parseHead(buf.subarray(0, end).toString('latin1'));
          bodyStart = end + 4;
          // An interim answer (100 Continue): the final one follows.
          if (head.status !== null && head.status >= 100 && head.status < 200) {
            buf = buf.subarray(bodyStart);
            head = null;
            continue;
          }
        }
        const cl = head.headers.get('content-length');
        if (cl !== undefined && buf.length - bodyStart >= Number(cl)) return finish(false);
        if (cl === undefined && (head.status === 204 || head.status === 304)) return finish(false);
        return;
      }
    });
    socket.once('connect', () => {
      let n = 0;
      for (const p of opts.pieces) {
        if (opts.abortAfter !== undefined && n++ >= opts.abortAfter) {
          socket.destroy();
          return;
        }
        if (socket.destroyed) return;
        socket.write(p);
      }
    });
  });
}
