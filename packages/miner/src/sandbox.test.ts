/**
 * The sandbox: the command line it builds, and what a DService inside bubblewrap can and cannot
 * do (checked by a throwaway DService that probes its surroundings and reports them).
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frame, type ResultFrame, type WorkFrame } from '@cgn/protocol';
import { startMiner, type Miner } from './miner.js';
import { buildSandboxCommand, bwrapProblem, resolveSandbox } from './sandbox.js';
import { CgroupGroup } from './cgroup.js';
import { NodePeer, type PeerConn } from '../test/node-peer.js';
import { ECHO, ROOT, silent, tempDir, writeDService } from '../test/fixtures.js';

const MEDIAGEN = join(ROOT, 'dservices/mediagen');
/** Host paths no DService may read (some may not exist on a machine: then ENOENT outside too). */
const FORBIDDEN = ['/etc/shadow', '/etc/passwd', '/etc/hostname', '/root', '/home', '/var', '/sys', '/run', '/opt', '/srv'];

describe('buildSandboxCommand', () => {
  const dir = tempDir();
  afterAll(() => dir.cleanup());
  const runDir = join(dir.path, 'run');
  const socketDir = join(runDir, 'echo');
  mkdirSync(socketDir, { recursive: true });
  const spec = {
    packageDir: ECHO,
    entryPath: join(ECHO, 'dist/server.js'),
    socketDir,
    socketPath: join(socketDir, 'http.sock'),
    runDir,
    maxBodyBytes: 1234,
    hide: ['/home/m/.cgn/miner-key.pem'],
    nodePath: process.execPath,
  };

  it('with bwrap: an empty read-only root with the package, the runtime, its dependencies and its socket dir; own /tmp; no network', () => {
    const cmd = buildSandboxCommand({ ...spec, mode: 'bwrap' });
    expect(cmd.command).toBe('bwrap');
    const a = cmd.args.join(' ');
    const node = realpathSync(process.execPath);
    for (const part of [
      '--dev /dev', '--proc /proc', '--tmpfs /tmp', '--unshare-all', '--die-with-parent', '--new-session', '--cap-drop ALL',
      `--ro-bind ${ECHO} ${ECHO}`, `--ro-bind ${node} ${node}`, `--bind ${socketDir} ${socketDir}`,
      // echo depends on @cgn/sdk: a workspace link in node_modules, recreated as a link to the package, bound read-only.
      `--symlink ../../packages/sdk ${join(ROOT, 'node_modules/@cgn/sdk')}`, `--ro-bind ${join(ROOT, 'packages/sdk')} ${join(ROOT, 'packages/sdk')}`,
      '--remount-ro /', `--chdir ${ECHO}`, `-- ${process.execPath} ${spec.entryPath}`,
    ]) {
      expect(a).toContain(part);
    }
    // Nothing else of the host: no root bind, not the whole repository nor node_modules, no other package.
    const bound = cmd.args.flatMap((x, i) => (x === '--ro-bind' || x === '--bind' ? [cmd.args[i + 2]!] : []));
    expect(bound).not.toContain('/');
    for (const p of bound) {
      expect([ROOT, join(ROOT, 'node_modules'), join(ROOT, 'packages'), join(ROOT, 'dservices'), '/etc', '/root', '/home', '/usr', '/var', runDir]).not.toContain(p);
      expect(p.startsWith(join(ROOT, 'packages/miner'))).toBe(false);
      expect(p.startsWith(MEDIAGEN)).toBe(false);
    }
    // The key lives outside everything bound: nothing to hide.
    expect(a).not.toContain('/dev/null');
    // Order matters to bwrap: the tmpfs before the socket dir inside it, the root read-only last.
    expect(a.indexOf('--tmpfs /tmp')).toBeLessThan(a.indexOf(`--bind ${socketDir}`));
    expect(a.indexOf('--remount-ro /')).toBeGreaterThan(a.lastIndexOf('--ro-bind'));
    expect(cmd.infoFd).toBe(3);
    expect(a).toContain('--info-fd 3');
  });

  it('covers a hidden file that a bind would show with /dev/null', () => {
    const key = join(ECHO, 'dservice.json');
    const a = buildSandboxCommand({ ...spec, mode: 'bwrap', hide: [key] }).args.join(' ');
    expect(a).toContain(`--ro-bind /dev/null ${key}`);
  });

  it('starts the process inside its cgroup: a shell joins it, then execs bwrap (or node)', () => {
    const fake = join(dir.path, 'cg');
    mkdirSync(join(fake, 'cgn'), { recursive: true });
    const group = CgroupGroup.create({ version: 'v2', parents: { memory: join(fake, 'cgn'), pids: join(fake, 'cgn'), cpu: join(fake, 'cgn') }, missing: [], warning: null }, 'm-echo-1', { cpus: 1, memoryMb: 64, pids: 32 });
    for (const mode of ['bwrap', 'none'] as const) {
      const cmd = buildSandboxCommand({ ...spec, mode, cgroup: group });
      expect(cmd.command).toBe('/bin/sh');
      const dash = cmd.args.indexOf('--');
      expect(cmd.args.slice(3, dash)).toEqual([join(fake, 'cgn', 'm-echo-1', 'cgroup.procs')]);
      expect(cmd.args[dash + 1]).toBe(mode === 'bwrap' ? 'bwrap' : process.execPath);
    }
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
  // The miner's state (its key) lives outside /tmp: not under the sandbox's own /tmp.
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
      const read = (p) => { try { return fs.statSync(p).isDirectory() ? 'listed ' + fs.readdirSync(p).length : 'read ' + fs.readFileSync(p).length; } catch (e) { return e.code; } };
      out.reads = Object.fromEntries(${JSON.stringify(FORBIDDEN)}.concat(${JSON.stringify([join(tmp.path, 'other'), join(tmp.path, 'other', 'server.mjs'), keyDir, keyFile, ECHO, MEDIAGEN, join(ROOT, 'node_modules'), join(ROOT, 'packages/node'), join(ROOT, '.cgn'), join(ROOT, 'package.json')])}).map((p) => [p, read(p)]));
      out.rootEntries = fs.readdirSync('/').sort();
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

  it('cannot open a TCP connection to the outside, sees only its package, runtime and socket (read-only) and its own /tmp: not /etc/shadow, /root, the miner key, other packages', async () => {
    const before = outsideConnections;
    const { miner, report } = await probe('bwrap');
    expect(miner.status().sandbox).toBe('bwrap');
    expect(report['fetch']).toMatch(/^failed: /);
    expect(outsideConnections).toBe(before);
    expect(['ENOENT', 'EROFS']).toContain(report['writeRoot']); // its directory is not there at all, and the root is read-only
    // Every host path outside what it needs is absent: secrets, home directories, the miner's
    // state (its key's directory), the other DServices' packages, the repository around its deps.
    const reads = report['reads'] as Record<string, string>;
    expect(Object.keys(reads).length).toBe(FORBIDDEN.length + 10);
    for (const [path, outcome] of Object.entries(reads)) expect({ path, outcome }).toEqual({ path, outcome: 'ENOENT' });
    // At the top: /dev, /proc, /tmp, and the ways to the runtime, its libraries and the package.
    const allowed = ['dev', 'proc', 'tmp', 'usr', 'etc', 'lib', 'lib64', 'lib32', 'libx32', 'bin', realpathSync(process.execPath).split('/')[1]!];
    for (const e of report['rootEntries'] as string[]) expect(allowed).toContain(e);
    expect(existsSync(join(keyDir, 'written-by-dservice'))).toBe(false);
    expect(report['writePackage']).toBe('EROFS');
    expect(existsSync(join(probePkg, 'written-by-dservice'))).toBe(false);
    expect(report['writeTmp']).toBe('ok');
    expect(existsSync(`/tmp/cgn-sandbox-probe-${String(report['pid'])}`)).toBe(false);
    expect(report['key']).toBe('ENOENT'); // the miner's key is not in the sandbox at all
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
