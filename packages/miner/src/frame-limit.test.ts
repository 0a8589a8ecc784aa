/**
 * The node's frame limit (announced in welcome) bounds the results a miner sends: a DService
 * answer too large for it is an error for that unit, not a message that closes the tunnel.
 * Real echo DService in bubblewrap, a test peer playing the node with its limit.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, type ErrorFrame, type Frame, type ResultFrame, type WorkFrame } from '@cgn/protocol';
import { startMiner, type Miner } from './miner.js';
import { NodePeer, type PeerConn } from '../test/node-peer.js';
import { ECHO, ensureEchoBuilt, silent, tempDir } from '../test/fixtures.js';

const LIMIT = 256 * 1024;
const tmp = tempDir();
let seq = 0;

function work(body: Uint8Array): WorkFrame {
  return frame({ t: 'work', id: `w${++seq}`, dservice: 'echo', method: 'POST', path: '/echo', headers: [], body, timeoutMs: 30_000 }) as WorkFrame;
}
const answerTo = (id: string) => (f: Frame): boolean => (f.t === 'result' || f.t === 'error') && 'id' in f && f.id === id;

async function minerAt(peer: NodePeer, name: string): Promise<{ miner: Miner; conn: PeerConn }> {
  const connP = peer.next();
  const miner = await startMiner({ nodeUrl: peer.url, keyFile: join(tmp.path, `${name}.pem`), dservices: [ECHO], sandbox: 'bwrap', logger: silent(), reconnectBaseMs: 20, reconnectCapMs: 200 });
  const conn = await connP;
  await conn.advertised();
  return { miner, conn };
}

describe("miner: results within the node's frame limit", () => {
  const peers: NodePeer[] = [];
  const miners: Miner[] = [];
  beforeAll(() => ensureEchoBuilt());
  afterAll(async () => {
    await Promise.all(miners.map((m) => m.stop()));
    await Promise.all(peers.map((p) => p.stop()));
    tmp.cleanup();
  });

  /** A node peer of its own (stopped after the tests) and a miner connected to it. */
  const minerOnOwnPeer = async (options: ConstructorParameters<typeof NodePeer>[0], name: string): Promise<{ miner: Miner; conn: PeerConn }> => {
    const peer = new NodePeer(options);
    peers.push(peer);
    await peer.start();
    const at = await minerAt(peer, name);
    miners.push(at.miner);
    return at;
  };

  it('answers a result larger than the announced limit with a payload_too_large error for that unit; the tunnel stays up', async () => {
    const { miner, conn } = await minerOnOwnPeer({ heartbeatMs: 1000, maxFrameBytes: LIMIT }, 'limited');
    const big = work(new Uint8Array(LIMIT).fill(7));
    // The work frame itself fits the miner's own (larger) limit; the echoed result would not fit the node's.
    conn.send(big);
    const e = await conn.waitFrame<ErrorFrame>(answerTo(big.id));
    expect(e).toMatchObject({ t: 'error', code: 'payload_too_large', retryable: false });
    expect(e.message).toMatch(new RegExp(`answer \\(${LIMIT} bytes\\) is larger than the node accepts from a miner \\(${LIMIT}-byte frames`));
    const small = work(new Uint8Array(LIMIT / 2).fill(8));
    conn.send(small);
    const r = await conn.waitFrame<ResultFrame>(answerTo(small.id));
    expect(r).toMatchObject({ t: 'result', status: 200 });
    expect(r.body.length).toBe(LIMIT / 2);
    expect(conn.closeInfo).toBeNull();
    expect(miner.status()).toMatchObject({ connected: true, welcomes: 1 });
  });

  it('sends it as before to a node that announces no limit (an older node)', async () => {
    const { conn } = await minerOnOwnPeer({ heartbeatMs: 1000 }, 'unlimited');
    const big = work(new Uint8Array(LIMIT).fill(7));
    conn.send(big);
    const r = await conn.waitFrame<ResultFrame>(answerTo(big.id));
    expect(r).toMatchObject({ t: 'result', status: 200 });
    expect(r.body.length).toBe(LIMIT);
  });
});
