import { appendFileSync, cpSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestFiles, digestPackage } from './digest.js';
import { startMiner } from './miner.js';
import { MinerOptionError } from './options.js';
import { NodePeer } from '../test/node-peer.js';
import { ECHO, ensureEchoBuilt, silent, tempDir, writeDService } from '../test/fixtures.js';

const tmp = tempDir();
beforeAll(() => ensureEchoBuilt());
afterAll(() => tmp.cleanup());

describe('digestPackage', () => {
  it('is a sha256 hex digest, stable, and independent of where the package lies', async () => {
    const d = await digestPackage(ECHO);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(await digestPackage(ECHO)).toBe(d);
    const copy = join(tmp.path, 'echo-copy');
    cpSync(ECHO, copy, { recursive: true });
    expect(await digestPackage(copy)).toBe(d);
  });

  it('ignores node_modules, tests, source maps and build info', async () => {
    const pkg = join(tmp.path, 'ignored');
    cpSync(ECHO, pkg, { recursive: true });
    const d = await digestPackage(pkg);
    mkdirSync(join(pkg, 'node_modules/dep'), { recursive: true });
    writeFileSync(join(pkg, 'node_modules/dep/index.js'), 'x');
    writeFileSync(join(pkg, 'src/server.test.ts'), 'test');
    writeFileSync(join(pkg, 'dist/extra.js.map'), '{}');
    writeFileSync(join(pkg, 'tsconfig.tsbuildinfo'), 'changed');
    expect(await digestPackage(pkg)).toBe(d);
    const files = await digestFiles(pkg);
    expect(files).toContain('dservice.json');
    expect(files).toContain('dist/server.js');
    expect(files.some((f) => f.includes('node_modules') || f.endsWith('.map') || f.includes('.test.') || f.endsWith('tsbuildinfo'))).toBe(false);
  });

  it('changes when a file changes, is added, or is renamed', async () => {
    const pkg = join(tmp.path, 'changing');
    cpSync(ECHO, pkg, { recursive: true });
    const d0 = await digestPackage(pkg);
    appendFileSync(join(pkg, 'dist/server.js'), '\n');
    const d1 = await digestPackage(pkg);
    expect(d1).not.toBe(d0);
    writeFileSync(join(pkg, 'dist/empty.js'), '');
    const d2 = await digestPackage(pkg);
    expect(d2).not.toBe(d1);
    renameSync(join(pkg, 'dist/empty.js'), join(pkg, 'dist/empty2.js'));
    expect(await digestPackage(pkg)).not.toBe(d2);
  });
});

describe('expected digests', () => {
  let peer: NodePeer;
  beforeAll(async () => {
    peer = new NodePeer();
    await peer.start();
  });
  afterAll(() => peer.stop());

  it('a DService whose digest does not match is neither run nor advertised; the others are', async () => {
    const other = writeDService(tmp.path, 'other', `return { status: 200, body: 'x' };`);
    const echoDigest = await digestPackage(ECHO);
    const connP = peer.next();
    const miner = await startMiner({
      nodeUrl: peer.url, keyFile: join(tmp.path, 'k1.pem'), dservices: [ECHO, other], sandbox: 'bwrap', logger: silent(),
      expectedDigests: { echo: echoDigest, other: '0'.repeat(64) },
    });
    try {
      const ad = await (await connP).advertised();
      expect(ad.dservices).toEqual([{ name: 'echo', version: '0.1.0', digest: echoDigest, slots: 64 }]);
      const st = miner.status().dservices;
      expect(st.find((d) => d.name === 'other')).toMatchObject({ state: 'rejected', advertised: false, instance: null });
      expect(st.find((d) => d.name === 'echo')).toMatchObject({ state: 'ready', advertised: true });
    } finally {
      await miner.stop();
    }
  });

  it('when no DService passes, the miner does not start', async () => {
    await expect(
      startMiner({ nodeUrl: peer.url, keyFile: join(tmp.path, 'k2.pem'), dservices: [ECHO], sandbox: 'none', logger: silent(), expectedDigests: { echo: 'f'.repeat(64) } }),
    ).rejects.toThrow(/digest/);
  });

  it('a malformed expected digest is an option error naming it', async () => {
    await expect(startMiner({ nodeUrl: peer.url, dservices: [ECHO], expectedDigests: { echo: 'abc' } })).rejects.toThrow(MinerOptionError);
    await expect(startMiner({ nodeUrl: peer.url, dservices: [ECHO], expectedDigests: { echo: 'abc' } })).rejects.toThrow(/expectedDigests\.echo/);
  });
});
