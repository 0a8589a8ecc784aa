/**
 * The miner's HTTP connections to one DService instance over its unix socket, with node:http.
 *
 * node:http and not undici: undici cost the miner ~11 MB of RSS once loaded plus ~11 MB when its
 * WebAssembly HTTP parser compiled at the first request (the first health check), while
 * node:http's parser is in the binary every process maps anyway. The price is CPU on this path:
 * a 16-byte request costs the miner about twice undici's (34 -> 72 us, same process, alternating
 * rounds); DServices built with @cgn/sdk take the link instead and pay neither.
 */
import { Agent, request } from 'node:http';

export interface DServiceHttpOptions {
  /** Connections at most (the DService's concurrency); requests beyond it wait for one. */
  maxSockets: number;
  /** An idle keep-alive connection is closed after this long (a shorter Keep-Alive hint from the DService wins). */
  idleMs: number;
}

/** Keep-alive connections to one DService's unix socket. */
export class DServiceHttp {
  readonly agent: Agent;

  constructor(
    readonly socketPath: string,
    opts: DServiceHttpOptions,
  ) {
    const n = Math.max(1, opts.maxSockets);
    // lifo: the busiest connections stay warm and the rest idle out.
    this.agent = new Agent({ keepAlive: true, maxSockets: n, maxTotalSockets: n, maxFreeSockets: n, timeout: opts.idleMs, scheduling: 'lifo' });
  }

  /** Closes every connection, idle or busy (requests on them fail). */
  close(): void {
    this.agent.destroy();
  }
}

/** Health bodies are read and dropped up to this size; a longer one fails the check. */
const MAX_HEALTH_BODY_BYTES = 64 * 1024;

/**
 * GET /healthz: true when the DService answers 200 with its whole body (at most 64 KiB) within
 * `timeoutMs`, connection included. Never rejects.
 */
export function checkHealth(http: DServiceHttp, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!ok) req.destroy();
      resolve(ok);
    };
    const req = request({ agent: http.agent, socketPath: http.socketPath, method: 'GET', path: '/healthz', headers: ['host', 'localhost'] });
    const timer = setTimeout(() => finish(false), timeoutMs);
    req.on('error', () => finish(false));
    req.on('response', (res) => {
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_HEALTH_BODY_BYTES) finish(false);
      });
      res.on('end', () => finish(res.statusCode === 200));
      res.on('error', () => finish(false));
      res.on('close', () => finish(false));
    });
    req.end();
  });
}
