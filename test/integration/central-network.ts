/**
 * A network with central for integration tests: central (SQLite store, node link over the dev
 * PKI), one test node linked to it, the network set up as `cgn dev` does (admin, demo account and
 * its API key, the node registered, echo approved), and the node told of the approval. Kept out of
 * harness.ts so tests without central do not load it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDevPki, setupDevNetwork, SqliteCentralStore, startTestCentral, TEST_ADMIN, type DevSetupResult, type TestCentral } from '@cgn/central';
import { digestPackage } from '@cgn/miner';
import type { NodeOptionsInput } from '@cgn/node';
import { ECHO, startTestNode, tempDir, waitFor, type TestNode } from './harness.js';

export interface CentralNetwork {
  central: TestCentral;
  t: TestNode;
  setup: DevSetupResult;
  /** echo's package digest (what a miner advertising echo must carry). */
  echoDigest: string;
  /** A temp directory for the test's own files (miner keys...), removed by `stop`. */
  dir: string;
  /** Stops the node and central and removes the directory; stop the miners first. */
  stop: () => Promise<void>;
}

export async function startCentralNetwork(prefix: string, node: NodeOptionsInput = {}): Promise<CentralNetwork> {
  const tmp = tempDir(prefix);
  const nodeId = 'node-local-1';
  const pki = join(tmp.path, 'pki');
  const p = ensureDevPki(pki, [nodeId]);
  let central: TestCentral | null = null;
  let t: TestNode | null = null;
  const stop = async () => {
    await t?.cleanup();
    await central?.stop().catch(() => undefined);
    tmp.cleanup();
  };
  try {
    central = await startTestCentral({
      store: new SqliteCentralStore({ path: join(tmp.path, 'central.sqlite') }),
      link: { tls: { key: p.central.key, cert: p.central.cert, ca: p.ca }, statusIntervalMs: 200 },
    });
    t = await startTestNode({ ...node, nodeId, central: { port: 0, pkiDir: pki, keyTtlMs: 5000 } });
    const echoDigest = await digestPackage(ECHO);
    const setup = await setupDevNetwork({
      centralUrl: central.url,
      admin: TEST_ADMIN,
      nodes: [{ id: nodeId, urls: { work: t.node.workUrl, miner: t.node.minerUrl, status: t.node.statusUrl, central: t.node.centralLinkUrl! } }],
      dservices: [{ descriptor: JSON.parse(readFileSync(join(ECHO, 'dservice.json'), 'utf8')) as Record<string, unknown>, digest: echoDigest }],
    });
    const running = t;
    await waitFor(() => (running.node.status()['dservices'] as unknown[]).length === 1, 'central to approve echo on the node');
    return { central, t, setup, echoDigest, dir: tmp.path, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
