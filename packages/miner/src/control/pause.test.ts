/**
 * Pause, resume and the CPU ceiling as the node sees them, against a test peer that plays the
 * node with real frames and the real echo DService: pause sends `drain` and refuses new work
 * while the unit in flight finishes; every advertisement while paused (a DService change, a
 * reconnect) is followed by `drain` again; resume advertises without one; a slot cap lowers the
 * advertised slots.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, type AdvertiseFrame, type ErrorFrame, type Frame, type ResultFrame, type WorkFrame } from '@cgn/protocol';
import { startMiner, type Miner } from '../miner.js';
import { NodePeer, type PeerConn } from '../../test/node-peer.js';
import { ECHO, ensureEchoBuilt, silent, tempDir } from '../../test/fixtures.js';

const tmp = tempDir();
let peer: NodePeer;
let miner: Miner;
let conn: PeerConn;

const work = (id: string, path: string): WorkFrame => frame({
  t: 'work', id, dservice: 'echo', method: 'POST', path, headers: [], body: new TextEncoder().encode(id), timeoutMs: 10_000,
}) as WorkFrame;
const after = (from: number, pred: (f: Frame) => boolean): Promise<Frame> => conn.waitFrame(pred, 20_000, from);

beforeAll(async () => {
  ensureEchoBuilt();
  peer = new NodePeer({ heartbeatMs: 1000 });
  await peer.start();
  const next = peer.next();
  miner = await startMiner({ nodeUrl: peer.url, keyFile: join(tmp.path, 'key.pem'), dservices: [ECHO], sandbox: 'none', logger: silent(), reconnectBaseMs: 20, reconnectCapMs: 200 });
  conn = await next;
  await conn.advertised();
});

afterAll(async () => {
  await miner?.stop();
  await peer?.stop();
  tmp.cleanup();
});

describe('miner pause and resume on the wire', () => {
  it('pause: drain to the node, the unit in flight finishes, new work is refused as retryable', async () => {
    conn.send(work('slow-1', '/slow?ms=400'));
    const from = conn.frames.length;
    await conn.waitFrame((f) => f.t === 'ack' || f.t === 'result');
    miner.pause('paused by the owner');
    expect(miner.status().paused).toBe(true);
    const drain = await after(from, (f) => f.t === 'drain');
    expect(drain).toMatchObject({ reason: 'paused by the owner' });
    conn.send(work('late-1', '/'));
    const refused = (await after(from, (f) => f.t === 'error' && f.id === 'late-1')) as ErrorFrame;
    expect(refused).toMatchObject({ code: 'draining', retryable: true });
    const done = (await after(from, (f) => f.t === 'result' && f.id === 'slow-1')) as ResultFrame;
    expect(done.status).toBe(200);
  });

  it('an advertisement while paused is followed by drain; resume advertises without one', async () => {
    const from = conn.frames.length;
    miner.limitSlots({ total: 1, perDService: { echo: 1 } }); // changes nothing on the wire while paused
    expect(conn.frames.slice(from).some((f) => f.t === 'advertise')).toBe(false);

    miner.resume();
    expect(miner.status().paused).toBe(false);
    const ad = (await after(from, (f) => f.t === 'advertise')) as AdvertiseFrame;
    // Resumed with the cap set meanwhile.
    expect(ad.slots).toBe(1);
    expect(ad.dservices).toMatchObject([{ name: 'echo', slots: 1 }]);
    conn.send(work('after-resume', '/'));
    expect(((await after(from, (f) => f.t === 'result' && f.id === 'after-resume')) as ResultFrame).status).toBe(200);
    expect(conn.frames.slice(from).some((f) => f.t === 'drain')).toBe(false);

    // The cap lifted while working: advertised again at once with the full slots.
    const from2 = conn.frames.length;
    miner.limitSlots(null);
    const full = (await after(from2, (f) => f.t === 'advertise')) as AdvertiseFrame;
    expect(full.slots).toBe(miner.status().slots);
  });

  it('a reconnect while paused says drain again after its advertisement', async () => {
    miner.pause('outside its time windows');
    await after(conn.frames.length - 1, (f) => f.t === 'drain');
    const next = peer.next();
    conn.ws.terminate();
    conn = await next;
    const ad = conn.frames.findIndex((f) => f.t === 'advertise');
    const idx = ad >= 0 ? ad : conn.frames.indexOf(await conn.advertised());
    const drain = await conn.waitFrame((f) => f.t === 'drain', 20_000, idx);
    expect(drain).toMatchObject({ reason: 'paused by its owner' });
    miner.resume();
  });
});
