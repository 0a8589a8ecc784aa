/**
 * The DService side of the link (see `link-frames.ts`): a unix socket server that runs each
 * request frame through the same handler as HTTP and answers with a response frame.
 *
 * A peer that sends something that is not a link frame is disconnected (it is not a miner); a
 * body over the limit gets the same 413 as over HTTP.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';
import { LINK_REQUEST, LINK_RESPONSE, LinkFrameReader, LinkWriter, MAX_LINK_META_BYTES, type LinkFrame } from './link-frames.js';
import { answered, handleRequest, problem, splitTarget, type DServiceHandler, type HandledResponse } from './dservice.js';

interface RequestMeta {
  m: string;
  u: string;
  h: string[];
}

function parseRequestMeta(meta: string): RequestMeta | null {
  try {
    const v = JSON.parse(meta) as Partial<RequestMeta>;
    if (typeof v.m !== 'string' || typeof v.u !== 'string' || !Array.isArray(v.h) || v.h.length % 2 !== 0) return null;
    for (const x of v.h) if (typeof x !== 'string') return null;
    return v as RequestMeta;
  } catch {
    return null;
  }
}

/** A flat `[name, value, ...]` list as Node's `IncomingMessage.headers` would hold it. */
export function headerRecord(list: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i]!.toLowerCase();
    const value = list[i + 1]!;
    const prev = out[name];
    if (prev === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = `${prev}, ${value}`;
  }
  return out;
}

/** A frame goes at once when nothing went over the link for this long (light load): see `LinkWriter`. */
const WRITE_AT_ONCE_WHEN_QUIET_MS = 1;

function responseMeta(r: HandledResponse): string {
  return JSON.stringify({ s: r.status, h: r.headers, c: r.cpuUs });
}

export interface RunningLink {
  server: Server;
  close(): Promise<void>;
}

export async function serveLink(socketPath: string, handler: DServiceHandler, maxBodyBytes: number): Promise<RunningLink> {
  /** Open connections and the requests each has running. */
  const sockets = new Map<Socket, number>();
  let closing = false;
  const settle = (socket: Socket, delta: number): void => {
    const n = (sockets.get(socket) ?? 0) + delta;
    sockets.set(socket, n);
    if (closing && n === 0) socket.end();
  };
  const server = createServer((socket) => {
    sockets.set(socket, 0);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const writer = new LinkWriter(socket, { writeAtOnceWhenQuietMs: WRITE_AT_ONCE_WHEN_QUIET_MS });
    const onFrame = (f: LinkFrame): void => {
      if (f.kind !== LINK_REQUEST) throw new Error(`unexpected frame kind ${f.kind}`);
      const meta = parseRequestMeta(f.meta);
      if (meta === null) throw new Error('request meta is not {m, u, h}');
      if (f.body.length > maxBodyBytes) {
        const r = answered(problem(413, 'Payload Too Large', `body exceeds ${maxBodyBytes} bytes`), 0);
        writer.write(LINK_RESPONSE, f.id, responseMeta(r), r.body);
        return;
      }
      const { path, query } = splitTarget(meta.u);
      settle(socket, 1);
      void handleRequest(handler, { method: meta.m, path, query, headers: headerRecord(meta.h), body: f.body }).then((r) => {
        writer.write(LINK_RESPONSE, f.id, responseMeta(r), r.body);
        settle(socket, -1);
      });
    };
    // Room for the largest body plus its meta; anything longer is not from a miner.
    const reader = new LinkFrameReader(maxBodyBytes + MAX_LINK_META_BYTES + 64, onFrame);
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        process.stderr.write(`dservice link: closing a connection: ${(err as Error).message}\n`);
        socket.destroy();
      }
    });
  });
  if (existsSync(socketPath)) unlinkSync(socketPath);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  /** Stops accepting; each connection ends once its running requests have been answered. */
  const close = () =>
    new Promise<void>((resolve) => {
      closing = true;
      server.close(() => resolve());
      for (const [s, n] of sockets) if (n === 0) s.end();
    });
  return { server, close };
}
