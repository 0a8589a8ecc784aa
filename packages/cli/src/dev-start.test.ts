/**
 * The pure parts of `cgn dev`'s start-up: progress lines, port plans and messages, a child's
 * early exit turned into what to do, and the state a directory keeps across failed starts.
 */
import { describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeProgress, progressLine } from './dev-progress.js';
import { PortInUseError, addrInUsePort, checkPorts, parsePort, plannedPorts, portInUseMessage } from './dev-ports.js';
import { earlyExitError, readableLogLine } from './dev-child.js';
import { centralLoginMismatch, devStateFile, loadDevState, saveDevState } from './dev-state.js';

describe('progress lines', () => {
  it('names the part, its time and what it gave', () => {
    expect(progressLine(true, 'central', 640, 'https://127.0.0.1:7700')).toBe('  ✓ central     0.6 s  https://127.0.0.1:7700\n');
    expect(progressLine(false, 'node', 12_345, '')).toBe('  ✗ node       12.3 s\n');
  });

  it('reports a step once done, a ✗ when it fails, and nothing when quiet', async () => {
    const out: string[] = [];
    let t = 0;
    const p = makeProgress((l) => out.push(l), () => (t += 500));
    expect(await p.step('chain', async () => 42, (n) => `got ${n}`)).toBe(42);
    await expect(p.step('central', async () => { throw new Error('no'); })).rejects.toThrow('no');
    expect(out).toEqual([progressLine(true, 'chain', 500, 'got 42'), progressLine(false, 'central', 500, '')]);
    const quiet = makeProgress(null);
    expect(await quiet.step('x', async () => 1)).toBe(1);
  });
});

describe('ports', () => {
  it('checks only fixed ports and names a busy one with the flag that moves it', async () => {
    expect(plannedPorts([{ role: 'central', port: 0, flag: '--central-port' }, { role: 'node work endpoint', port: 8080, flag: '--work-port' }])).toHaveLength(1);
    expect(portInUseMessage({ role: 'central', port: 7700, flag: '--central-port' })).toMatch(/^port 7700 \(central\) is in use: stop what uses it .* or start with --central-port 0/);
    const srv: Server = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      const err = await checkPorts([{ role: 'central', port, flag: '--central-port' }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PortInUseError);
      expect((err as PortInUseError).code).toBe('PORT_IN_USE');
      expect((err as Error).message).toContain(`port ${port} (central) is in use`);
    } finally {
      await new Promise((r) => srv.close(r));
    }
    await expect(checkPorts([{ role: 'central', port, flag: '--central-port' }])).resolves.toBeUndefined();
  });

  it('parses port flags', () => {
    expect(parsePort('--work-port', '0')).toBe(0);
    expect(parsePort('--work-port', '8080')).toBe(8080);
    expect(() => parsePort('--work-port', '70000')).toThrow(/--work-port must be a port from 0 to 65535/);
    expect(() => parsePort('--work-port', 'abc')).toThrow(/not "abc"/);
  });

  it('finds the port in a child\'s EADDRINUSE line', () => {
    expect(addrInUsePort(['{"level":30,"msg":"starting"}', 'cgn central: listen EADDRINUSE: address already in use 127.0.0.1:7700'])).toBe(7700);
    expect(addrInUsePort(['all good'])).toBeNull();
  });
});

describe("a child's early exit", () => {
  const planned = [{ role: 'central', port: 7700, flag: '--central-port' }];
  it('is a port in use with its fix when the log says EADDRINUSE', () => {
    const err = earlyExitError({ role: 'central', logFile: '/x/central.log' }, 1, ['cgn central: listen EADDRINUSE: address already in use 127.0.0.1:7700'], planned);
    expect(err).toBeInstanceOf(PortInUseError);
    expect(err.message).toContain('start with --central-port 0');
  });

  it('otherwise shows the exit code and the last log lines, readable', () => {
    const err = earlyExitError({ role: 'node', logFile: '/x/node.log' }, 1, ['{"level":50,"msg":"cannot open the ledger","err":{"message":"SQLITE_CANTOPEN"}}', 'cgn node: boom'], planned);
    expect(err.message).toBe('node exited with code 1 before it was ready (log: /x/node.log); its last log lines:\n    error: cannot open the ledger: SQLITE_CANTOPEN\n    cgn node: boom');
    expect(readableLogLine('plain')).toBe('plain');
  });
});

describe('dev state', () => {
  it('is made once, saved 0600 and read back the same; a dev.json from an older start is used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgn-devstate-'));
    try {
      const s = loadDevState(dir);
      expect(s.admin.login).toBe('admin');
      expect(s.chainPort).toBeUndefined();
      saveDevState(dir, { ...s, chainPort: 40123 });
      expect(statSync(devStateFile(dir)).mode & 0o777).toBe(0o600);
      expect(loadDevState(dir)).toEqual({ ...s, chainPort: 40123 });

      rmSync(devStateFile(dir));
      writeFileSync(join(dir, 'dev.json'), JSON.stringify({ admin: { login: 'admin', password: 'Old-Pass-1!' }, demoOwner: { login: 'demo-owner', password: 'Demo-1!' } }));
      const old = loadDevState(dir);
      expect(old.admin.password).toBe('Old-Pass-1!');
      expect(old.demoOwner.password).toBe('Demo-1!');
      expect(JSON.parse(readFileSync(join(dir, 'dev.json'), 'utf8')).admin.password).toBe('Old-Pass-1!');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says how to reset central when it refuses the saved password', () => {
    expect(centralLoginMismatch('/s', '401 unauthorized: wrong login or password')).toMatch(/rm -rf \/s\/central .*rm -rf \/s$/);
  });
});
