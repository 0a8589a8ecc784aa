import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { sendParts } from '@cgn/protocol';

// sendParts over a real WebSocket: the parts arrive as one message, and leave in one socket write.

let server: WebSocketServer | null = null;
let client: WebSocket | null = null;

afterEach(async () => {
  client?.terminate();
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  server = null;
  client = null;
});

async function connectedPair(): Promise<{ client: WebSocket; received: Promise<Buffer> }> {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => server!.once('listening', () => r()));
  const received = new Promise<Buffer>((resolve) => {
    server!.once('connection', (ws) => ws.once('message', (data: Buffer) => resolve(data)));
  });
  client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, { perMessageDeflate: false });
  await new Promise<void>((r, j) => {
    client!.once('open', () => r());
    client!.once('error', j);
  });
  return { client, received };
}

/** Counts the writes the socket hands to the OS (one per `_write` or `_writev`). */
function countWrites(socket: Socket): () => number {
  let n = 0;
  const s = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = s._write.bind(socket);
  const writev = s._writev.bind(socket);
  s._write = (...a) => { n++; write(...a); };
  s._writev = (...a) => { n++; writev(...a); };
  return () => n;
}

describe('sendParts', () => {
  it('sends the parts as one message, in order, in one socket write', async () => {
    const { client, received } = await connectedPair();
    const socket = (client as unknown as { _socket: Socket })._socket;
    const writes = countWrites(socket);
    const parts = [Buffer.from('head:'), Buffer.alloc(70_000, 1), Buffer.alloc(65_536, 2), Buffer.from(':tail')];
    sendParts(client, parts);
    expect(Buffer.compare(await received, Buffer.concat(parts))).toBe(0);
    expect(writes()).toBe(1);
  });

  it('sends a single part as a plain message', async () => {
    const { client, received } = await connectedPair();
    sendParts(client, [Buffer.from('only')]);
    expect((await received).toString()).toBe('only');
  });

  it('still sends when the WebSocket exposes no socket to cork', async () => {
    const sent: Array<[string, boolean]> = [];
    sendParts({ send: (d, o) => sent.push([d.toString(), o.fin]) }, [Buffer.from('a'), Buffer.from('b')]);
    expect(sent).toEqual([['a', false], ['b', true]]);
  });

  it('calls written once, after the socket has written the last part', async () => {
    const { client, received } = await connectedPair();
    const socket = (client as unknown as { _socket: Socket })._socket;
    const parts = [Buffer.from('head:'), Buffer.alloc(300_000, 5)];
    let calls = 0;
    let pendingAtCall = -1;
    const written = new Promise<void>((resolve) => {
      sendParts(client, parts, () => {
        calls++;
        pendingAtCall = socket.writableLength;
        resolve();
      });
    });
    expect(calls).toBe(0); // a write's callback never comes synchronously
    await written;
    expect(pendingAtCall).toBe(0);
    expect(Buffer.compare(await received, Buffer.concat(parts))).toBe(0);
    expect(calls).toBe(1);
  });

  it('calls written (with the error swallowed) when the WebSocket is already closed', async () => {
    const { client } = await connectedPair();
    client.terminate();
    await new Promise<void>((r) => client.once('close', () => r()));
    await new Promise<void>((resolve) => sendParts(client, [Buffer.from('late')], resolve));
  });
});
