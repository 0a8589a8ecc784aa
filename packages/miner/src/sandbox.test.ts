/**
 * The sandbox: the command line it builds, and what a DService inside bubblewrap can and cannot
 * do (checked by a throwaway DService that probes its surroundings and reports them).
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, type ResultFrame, type WorkFrame } from '@cgn/protocol';
import { startMiner, type Miner } from './miner.js';
import { buildSandboxCommand, bwrapProblem, resolveSandbox } from './sandbox.js';
import { NodePeer, type PeerConn } from '../test/node-peer.js';
import { silent, tempDir, writeDService } from '../test/fixtures.js';

describe('buildSandboxCommand', () => {
  const spec = {
    packageDir: '/srv/dservices/echo',
    entryPath: '/srv/dservices/echo/dist/server.js',
    socketDir: '/tmp/cgn-miner-abc/echo',
    socketPath: '/tmp/cgn-miner-abc/echo/http.sock',
    runDir: '/tmp/cgn-miner-abc',
    maxBodyBytes: 1234,
    hide: ['/home/m/.cgn/miner-key.pem'],
    nodePath: '/usr/bin/node',
  };

  it('with bwrap: read-only root, own /tmp, no network, own namespaces, the socket dir bound, the key hidden', () => {
    const cmd = buildSandboxCommand({ ...spec, mode: 'bwrap' });
    expect(cmd.command).toBe('bwrap');
    const a = cmd.args.join(' ');
    for (const part of [
      '--ro-bind / /', '--dev /dev', '--proc /proc', '--tmpfs /tmp', '--unshare-all', '--die-with-parent', '--new-session',
      '--cap-drop ALL', `--bind ${spec.socketDir} ${spec.socketDir}`, `--chdir ${spec.packageDir}`,
      `--ro-bind /dev/null ${spec.hide[0]}`, `-- /usr/bin/node ${spec.entryPath}`,
    ]) {
      expect(a).toContain(part);
    }
    // Order matters to bwrap: the tmpfs first, then the socket dir inside it.
    expect(a.indexOf('--tmpfs /tmp')).toBeLessThan(a.indexOf(`--bind ${spec.socketDir}`));
    expect(cmd.infoFd).toBe(3);
    expect(a).toContain('--info-fd 3');
  });

  it('brings back a package that lives below /tmp (read-only), and hides another run dir outside /tmp', () => {
    const a = buildSandboxCommand({ ...spec, mode: 'bwrap', packageDir: '/tmp/pkg', entryPath: '/tmp/pkg/s.js', runDir: '/run/cgn', socketDir: '/run/cgn/x' }).args.join(' ');
    expect(a).toContain('--ro-bind /tmp/pkg /tmp/pkg');
    expect(a).toContain('--tmpfs /run/cgn');
    expect(a.indexOf('--tmpfs /run/cgn')).toBeLessThan(a.indexOf('--bind /run/cgn/x /run/cgn/x'));
  });

  it('without bwrap: plain node in the package dir', () => {
    const cmd = buildSandboxCommand({ ...spec, mode: 'none' });
    expect(cmd).toMatchObject({ command: '/usr/bin/node', args: [spec.entryPath], cwd: spec.packageDir, infoFd: null });
  });

  it('gives the DService only its sockets, body limit, production mode and PATH: nothing of the miner', () => {
    process.env['CGN_TEST_SECRET'] = 'do-not-leak';
    try {
      for (const mode of ['bwrap', 'none'] as const) {
        const { env } = buildSandboxCommand({ ...spec, mode });
        expect(env['CGN_SOCKET']).toBe(spec.socketPath);
        expect(env['CGN_MAX_BODY_BYTES']).toBe('1234');
        expect(env['NODE_ENV']).toBe('production');
        expect(Object.keys(env).sort()).toEqual(mode === 'bwrap' ? ['CGN_LINK_SOCKET', 'CGN_MAX_BODY_BYTES', 'CGN_SOCKET', 'HOME', 'NODE_ENV', 'PATH'] : ['CGN_LINK_SOCKET', 'CGN_MAX_BODY_BYTES', 'CGN_SOCKET', 'NODE_ENV', 'PATH']);
      }
    } finally {
      delete process.env['CGN_TEST_SECRET'];
    }
  });
});

describe('resolveSandbox', () => {
  it('auto picks bwrap where it works; a bwrap that is missing falls back with a warning, or fails when asked for', async () => {
    expect(await bwrapProblem()).toBeNull();
    expect(await resolveSandbox('auto')).toEqual({ mode: 'bwrap', warning: null });
    expect(await resolveSandbox('none')).toEqual({ mode: 'none', warning: null });
    const missing = '/nonexistent/bwrap';
    const auto = await resolveSandbox('auto', missing);
    expect(auto.mode).toBe('none');
    expect(auto.warning).toMatch(/WITHOUT a sandbox/);
    await expect(resolveSandbox('bwrap', missing)).rejects.toThrow(/does not work here/);
  });
});

describe('a DService inside bubblewrap', () => {
  const tmp = tempDir();
  // The key lives outside /tmp, so only the explicit hiding keeps it from the DService.
  const keyDir = mkdtempSync('/var/tmp/cgn-miner-key-');
  const keyFile = join(keyDir, 'miner.pem');
  const runDir = join(tmp.path, 'run');
  let outside: Server;
  let outsideConnections = 0;
  let peer: NodePeer;
  let probePkg: string;
  let otherPkg: string;

  beforeAll(async () => {
    outside = createServer((_req, res) => res.end('reached the outside'));
    outside.on('connection', () => outsideConnections++);
    await new Promise<void>((r) => outside.listen(0, '127.0.0.1', r));
    const port = (outside.address() as AddressInfo).port;
    probePkg = writeDService(
      tmp.path,
      'probe',
      `
      const fs = await import('node:fs');
      const out = {};
      try {
        const r = await fetch('http://127.0.0.1:${port}/', { signal: AbortSignal.timeout(5000) });
        out.fetch = 'ok ' + (await r.text());
      } catch (e) { out.fetch = 'failed: ' + (e.cause?.code ?? e.message); }
      const write = (p) => { try { fs.writeFileSync(p, 'x'); return 'ok'; } catch (e) { return e.code; } };
      out.writeRoot = write(${JSON.stringify(join(keyDir, 'written-by-dservice'))}); // on the root filesystem, outside /tmp
      out.writePackage = write(process.cwd() + '/written-by-dservice');
      out.writeTmp = write('/tmp/cgn-sandbox-probe-' + process.pid);
      out.tmpEntries = fs.readdirSync('/tmp');
      try { out.key = fs.readFileSync(${JSON.stringify(keyFile)}, 'utf8').length; } catch (e) { out.key = e.code; }
      out.otherSocket = fs.existsSync(${JSON.stringify(join(runDir, 'other', 'http.sock'))});
      out.ownSocket = fs.existsSync(process.env.CGN_SOCKET);
      out.env = Object.keys(process.env).sort();
      out.pid = process.pid;
      out.cwd = process.cwd();
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(out) };
      `,
    );
    otherPkg = writeDService(tmp.path, 'other', `return { status: 200, body: 'other' };`);
    peer = new NodePeer();
    await peer.start();
  });

  afterAll(async () => {
    await peer.stop();
    await new Promise<void>((r) => outside.close(() => r()));
    tmp.cleanup();
    rmSync(keyDir, { recursive: true, force: true });
  });

  async function probe(sandbox: 'bwrap' | 'none'): Promise<{ miner: Miner; report: Record<string, unknown> }> {
    const connP = peer.next();
    process.env['CGN_TEST_SECRET'] = 'do-not-leak';
    let miner: Miner;
    try {
      miner = await startMiner({ nodeUrl: peer.url, keyFile, dservices: [probePkg, otherPkg], sandbox, runDir, logger: silent() });
    } finally {
      delete process.env['CGN_TEST_SECRET'];
    }
    try {
      const conn: PeerConn = await connP;
      await conn.advertised();
      const w = frame({ t: 'work', id: `probe-${sandbox}`, dservice: 'probe', method: 'POST', path: '/', headers: [], body: new Uint8Array(0), timeoutMs: 20_000 }) as WorkFrame;
      conn.send(w);
      const r = await conn.waitFrame<ResultFrame>((f) => f.t === 'result' && f.id === w.id);
      expect(r.status).toBe(200);
      return { miner, report: JSON.parse(Buffer.from(r.body).toString()) as Record<string, unknown> };
    } finally {
      await miner.stop();
    }
  }

  it('cannot open a TCP connection to the outside, sees a read-only root and its own /tmp, and not the miner key', async () => {
    const before = outsideConnections;
    const { miner, report } = await probe('bwrap');
    expect(miner.status().sandbox).toBe('bwrap');
    expect(report['fetch']).toMatch(/^failed: /);
    expect(outsideConnections).toBe(before);
    expect(report['writeRoot']).toBe('EROFS');
    expect(existsSync(join(keyDir, 'written-by-dservice'))).toBe(false);
    expect(report['writePackage']).toBe('EROFS');
    expect(existsSync(join(probePkg, 'written-by-dservice'))).toBe(false);
    expect(report['writeTmp']).toBe('ok');
    expect(existsSync(`/tmp/cgn-sandbox-probe-${String(report['pid'])}`)).toBe(false);
    // /dev/null is bound over it (on a nodev mount, so it cannot even be opened); without that it would be readable.
    expect(['EACCES', 0]).toContain(report['key']);
    expect(report['ownSocket']).toBe(true);
    expect(report['otherSocket']).toBe(false); // the other DService's socket is out of reach
    // (bwrap's --chdir sets PWD)
    expect(report['env']).toEqual(['CGN_LINK_SOCKET', 'CGN_MAX_BODY_BYTES', 'CGN_SOCKET', 'HOME', 'NODE_ENV', 'PATH', 'PWD']);
    expect(report['pid']).toBe(1); // its own pid namespace
    expect(report['cwd']).toBe(probePkg);
  });

  it('the same DService without a sandbox does reach the outside (so the check above means something)', async () => {
    const before = outsideConnections;
    const { report } = await probe('none');
    expect(report['fetch']).toBe('ok reached the outside');
    expect(outsideConnections).toBeGreaterThan(before);
    expect(report['env']).toEqual(['CGN_LINK_SOCKET', 'CGN_MAX_BODY_BYTES', 'CGN_SOCKET', 'NODE_ENV', 'PATH']);
    // Unsandboxed, its writes are real: clean them up.
    expect(report['writePackage']).toBe('ok');
    expect(report['writeRoot']).toBe('ok');
    rmSync(join(probePkg, 'written-by-dservice'), { force: true });
    rmSync(`/tmp/cgn-sandbox-probe-${String(report['pid'])}`, { force: true });
  });
});
